"""Reconciliation: a provider's own usage export against what was ingested, per day and model.

The provider file is a CSV with a header; columns are matched by name, with the common aliases of
OpenAI's and Anthropic's usage exports: day (date, start_time, usage_date), model (model_name),
input_tokens (prompt_tokens, input), output_tokens (completion_tokens, output), requests
(num_model_requests, n_requests), cost (amount, cost_usd) and currency (default USD). Rows of the
same day and model are added together.
"""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils.dateparse import parse_date

from apps.common.money import is_currency, parse_decimal
from apps.integrations.models import ProviderUsageImport, ProviderUsageLine
from apps.tenancy.models import Organization
from apps.usage.models import UsageRecord

ALIASES = {
    "day": ("day", "date", "start_time", "usage_date", "bucket_start"),
    "model": ("model", "model_name", "model_id"),
    "input_tokens": ("input_tokens", "prompt_tokens", "input", "n_context_tokens_total"),
    "output_tokens": ("output_tokens", "completion_tokens", "output", "n_generated_tokens_total"),
    "requests": ("requests", "num_model_requests", "n_requests", "request_count"),
    "cost": ("cost", "amount", "cost_usd", "amount_value"),
    "currency": ("currency", "amount_currency"),
}


def _column(header: list[str], field: str) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    return next((lowered[a] for a in ALIASES[field] if a in lowered), None)


def _day(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    if value.isdigit():  # epoch seconds, as the OpenAI usage API returns bucket starts
        return datetime.fromtimestamp(int(value), tz=UTC).date()
    try:
        return parse_date(value[:10]) if len(value) >= 10 else None
    except ValueError:
        return None


def parse_provider_usage(text: str) -> tuple[list[dict], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    columns = {field: _column(header, field) for field in ALIASES}
    missing = [f for f in ("day", "model") if columns[f] is None]
    if missing or not any(columns[f] for f in ("input_tokens", "output_tokens", "cost")):
        return [], [
            "header: needs day and model columns and at least one of input_tokens, output_tokens, cost "
            f"(found {', '.join(header) or 'none'})"
        ]
    totals: dict[tuple, dict] = defaultdict(
        lambda: {"input_tokens": 0, "output_tokens": 0, "requests": None, "cost": None, "currency": ""}
    )
    errors = []
    for row in reader:
        line = reader.line_num
        day = _day(row.get(columns["day"]) or "")
        model = (row.get(columns["model"]) or "").strip()
        problems = []
        if day is None:
            problems.append("day: expected a date (YYYY-MM-DD), an RFC 3339 time or epoch seconds")
        if not model:
            problems.append("model: required")
        item = {}
        for field in ("input_tokens", "output_tokens", "requests"):
            raw = (row.get(columns[field]) or "").strip() if columns[field] else ""
            if raw:
                if not raw.isdigit():
                    problems.append(f"{field}: {raw!r} is not a whole number")
                else:
                    item[field] = int(raw)
        if columns["cost"] and (raw := (row.get(columns["cost"]) or "").strip()):
            try:
                item["cost"] = parse_decimal(raw)
            except ValueError:
                problems.append(f"cost: {raw!r} is not a number")
        currency = ((row.get(columns["currency"]) or "") if columns["currency"] else "").strip().upper() or "USD"
        if not is_currency(currency):
            problems.append(f"currency: {currency!r} is not an ISO 4217 code")
        if problems:
            errors.append(f"line {line}: " + "; ".join(problems))
            continue
        total = totals[(day, model)]
        if total["currency"] and total["currency"] != currency:
            errors.append(f"line {line}: currency {currency} differs from {total['currency']} for {day} {model}")
            continue
        total["currency"] = currency
        total["input_tokens"] += item.get("input_tokens", 0)
        total["output_tokens"] += item.get("output_tokens", 0)
        if "requests" in item:
            total["requests"] = (total["requests"] or 0) + item["requests"]
        if "cost" in item:
            total["cost"] = (total["cost"] or Decimal(0)) + item["cost"]
    rows = [{"day": day, "model": model, **values} for (day, model), values in sorted(totals.items())]
    return rows, errors


@transaction.atomic
def provider_usage_import(
    *, organization: Organization, provider: str, filename: str, text: str, actor
) -> ProviderUsageImport:
    """Store a provider's export; a malformed file stores nothing and names every bad line."""
    if not provider or len(provider) > 64:
        raise ValidationError({"provider": ["Name the provider the file comes from, e.g. openai."]})
    rows, errors = parse_provider_usage(text)
    if errors:
        raise ValidationError({"file": errors[:50]})
    if not rows:
        raise ValidationError({"file": ["The file has no usage rows."]})
    source = ProviderUsageImport.objects.create(
        organization=organization, provider=provider.lower(), filename=filename[:255], imported_by=str(actor)
    )
    ProviderUsageLine.objects.bulk_create(
        ProviderUsageLine(organization=organization, source=source, **row) for row in rows
    )
    return source


@dataclass
class VarianceRow:
    day: date
    model: str
    provider_input_tokens: int
    provider_output_tokens: int
    provider_cost: Decimal | None
    ingested_input_tokens: int
    ingested_output_tokens: int
    ingested_requests: int
    ingested_cost: Decimal
    currency: str

    @property
    def token_variance(self) -> int:
        return (self.ingested_input_tokens + self.ingested_output_tokens) - (
            self.provider_input_tokens + self.provider_output_tokens
        )

    @property
    def cost_variance(self) -> Decimal | None:
        return None if self.provider_cost is None else self.ingested_cost - self.provider_cost


def reconciliation_variance(*, source: ProviderUsageImport) -> list[VarianceRow]:
    """Per day and model of the provider's file: what it says against what was ingested for that provider.

    Days are UTC days, as providers bill; ingested cost is in the price's currency (before conversion
    to the billing currency), so that it compares with the provider's invoice.
    """
    organization = source.organization
    lines = list(source.lines.all())
    if not lines:
        return []
    start = min(line.day for line in lines)
    end = max(line.day for line in lines) + timedelta(days=1)
    records = UsageRecord.objects.for_org(organization).filter(
        provider=source.provider,
        timestamp__gte=datetime.combine(start, time.min, tzinfo=UTC),
        timestamp__lt=datetime.combine(end, time.min, tzinfo=UTC),
    )
    ingested: dict[tuple, dict] = {}
    for row in (
        records.annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day", "model", "cost_currency")
        .annotate(
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            n=Count("id"),
            cost=Sum("cost", filter=Q(cost__isnull=False)),
        )
    ):
        key = (row["day"], row["model"])
        item = ingested.setdefault(key, {"inp": 0, "out": 0, "n": 0, "cost": {}})
        item["inp"] += row["inp"] or 0
        item["out"] += row["out"] or 0
        item["n"] += row["n"]
        if row["cost"] is not None:
            item["cost"][row["cost_currency"]] = item["cost"].get(row["cost_currency"], Decimal(0)) + row["cost"]
    result = []
    seen = set()
    for line in lines:
        key = (line.day, line.model)
        seen.add(key)
        mine = ingested.get(key, {"inp": 0, "out": 0, "n": 0, "cost": {}})
        result.append(
            VarianceRow(
                day=line.day,
                model=line.model,
                provider_input_tokens=line.input_tokens,
                provider_output_tokens=line.output_tokens,
                provider_cost=line.cost,
                ingested_input_tokens=mine["inp"],
                ingested_output_tokens=mine["out"],
                ingested_requests=mine["n"],
                ingested_cost=mine["cost"].get(line.currency or "USD", Decimal(0)),
                currency=line.currency or "USD",
            )
        )
    for key, mine in sorted(ingested.items()):
        if key not in seen:  # ingested usage the provider does not list
            result.append(
                VarianceRow(
                    day=key[0],
                    model=key[1],
                    provider_input_tokens=0,
                    provider_output_tokens=0,
                    provider_cost=None,
                    ingested_input_tokens=mine["inp"],
                    ingested_output_tokens=mine["out"],
                    ingested_requests=mine["n"],
                    ingested_cost=mine["cost"].get("USD", Decimal(0)),
                    currency="USD",
                )
            )
    return sorted(result, key=lambda r: (r.day, r.model))
