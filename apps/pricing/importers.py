"""Readers of price files: LiteLLM's model cost map, CSV, and the default list shipped with the product.

Each reader turns a file into `PriceEntry` values and a list of what it skipped or refused and why;
none of them writes anything.
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

from django.utils.dateparse import parse_date, parse_datetime

from apps.common.money import PER_MILLION, is_currency, parse_decimal

DEFAULT_PRICES_FILE = Path(__file__).resolve().parent / "data" / "default_prices.json"

_LONG_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


@dataclass
class PriceEntry:
    model: str
    input: Decimal
    output: Decimal
    provider: str = ""
    match_pattern: str = ""
    currency: str = "USD"
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    long_context_threshold: int | None = None
    long_input: Decimal | None = None
    long_cached_input: Decimal | None = None
    long_cache_write: Decimal | None = None
    long_output: Decimal | None = None
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    source: str = ""


@dataclass
class ParseResult:
    entries: list[PriceEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not a token price: nothing to import
    errors: list[str] = field(default_factory=list)  # should have been a price but is malformed


def split_provider(name: str) -> tuple[str, str]:
    """`gemini/gemini-2.5-flash` -> ("gemini", "gemini-2.5-flash"); a bare name has no provider."""
    if "/" in name:
        provider, model = name.split("/", 1)
        return provider.strip().lower(), model.strip()
    return "", name.strip()


_UNIT_PRICE_STEP = Decimal("1e-15")  # ModelPrice keeps 15 decimal places


def _per_million(per_token) -> Decimal:
    # LiteLLM's per-token prices are binary floats (1.6000000000000001e-06): keep the 15 significant
    # digits a float really holds, else the noise overflows the unit price column and the import fails.
    amount = parse_decimal(per_token)
    if amount:
        amount = round(amount, 14 - amount.adjusted())
    return (amount * PER_MILLION).quantize(_UNIT_PRICE_STEP).normalize()


def parse_litellm(data: dict) -> ParseResult:
    """LiteLLM's `model_prices_and_context_window.json`: per-token USD prices keyed by model name."""
    result = ParseResult()
    if not isinstance(data, dict):
        result.errors.append("The file is not a JSON object of models.")
        return result
    for name, spec in data.items():
        if name == "sample_spec":
            continue
        if not isinstance(spec, dict):
            result.errors.append(f"{name}: not an object")
            continue
        if "input_cost_per_token" not in spec or "output_cost_per_token" not in spec:
            result.skipped.append(f"{name}: no per-token input and output price ({spec.get('mode', 'unknown mode')})")
            continue
        try:
            entry = _litellm_entry(name, spec)
        except ValueError as exc:
            result.errors.append(f"{name}: {exc}")
            continue
        result.entries.append(entry)
    return result


def _litellm_entry(name: str, spec: dict) -> PriceEntry:
    provider, model = split_provider(name)
    if not model:
        raise ValueError("empty model name")
    entry = PriceEntry(
        provider=provider,
        model=model,
        input=_per_million(spec["input_cost_per_token"]),
        output=_per_million(spec["output_cost_per_token"]),
        source=str(spec.get("source") or "LiteLLM cost map")[:500],
    )
    if spec.get("cache_read_input_token_cost") is not None:
        entry.cached_input = _per_million(spec["cache_read_input_token_cost"])
    if spec.get("cache_creation_input_token_cost") is not None:
        entry.cache_write = _per_million(spec["cache_creation_input_token_cost"])
    thresholds = sorted(int(m.group(1)) for key in spec if (m := _LONG_TIER.match(key)))
    if thresholds:
        k = thresholds[0]  # one tier per price: the first one a request crosses
        suffix = f"_above_{k}k_tokens"
        entry.long_context_threshold = k * 1000
        entry.long_input = _per_million(spec[f"input_cost_per_token{suffix}"])
        long_output = spec.get(f"output_cost_per_token{suffix}")
        entry.long_output = _per_million(long_output) if long_output is not None else entry.output
        if spec.get(f"cache_read_input_token_cost{suffix}") is not None:
            entry.long_cached_input = _per_million(spec[f"cache_read_input_token_cost{suffix}"])
        if spec.get(f"cache_creation_input_token_cost{suffix}") is not None:
            entry.long_cache_write = _per_million(spec[f"cache_creation_input_token_cost{suffix}"])
    prices = (
        entry.input,
        entry.output,
        entry.cached_input,
        entry.cache_write,
        entry.long_input,
        entry.long_output,
        entry.long_cached_input,
        entry.long_cache_write,
    )
    if any(price is not None and price < 0 for price in prices):
        raise ValueError("negative price")
    return entry


CSV_COLUMNS = (
    "provider",
    "model",
    "match_pattern",
    "currency",
    "input_per_1m",
    "cached_input_per_1m",
    "cache_write_per_1m",
    "output_per_1m",
    "long_context_threshold",
    "long_input_per_1m",
    "long_cached_input_per_1m",
    "long_cache_write_per_1m",
    "long_output_per_1m",
    "effective_from",
    "effective_to",
    "source",
)


def _csv_moment(value: str, column: str, tz=UTC) -> datetime | None:
    if not value:
        return None
    # The date first: parse_datetime reads "2026-03-01" as a naive midnight. Both raise on an
    # impossible day ("2026-02-30"), which must name its column too.
    try:
        day = parse_date(value)
        moment = None if day is not None else parse_datetime(value)
    except ValueError:
        day = moment = None
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=tz)
    if moment is None:
        raise ValueError(f"{column}: {value!r} is not a date (YYYY-MM-DD) or RFC 3339 time")
    if moment.tzinfo is None:
        raise ValueError(f"{column}: {value!r} needs a UTC offset")
    return moment


def parse_price_csv(text: str, *, tz=UTC) -> ParseResult:
    """A CSV with a header naming at least model, input_per_1m and output_per_1m (see CSV_COLUMNS).

    A plain date in effective_from/effective_to is midnight in `tz`: the time zone of the organization
    whose list the prices go to, UTC for a global list.
    """
    result = ParseResult()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("model", "input_per_1m", "output_per_1m") if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        if missing:
            result.errors.append(f"header: missing column(s) {', '.join(missing)}")
        if unknown:
            result.errors.append(f"header: unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}")
        return result
    for row in reader:
        line_no = reader.line_num  # DictReader skips blank lines: count the lines it read
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            result.entries.append(_csv_entry(row, tz))
        except ValueError as exc:
            result.errors.append(f"line {line_no}: {exc}")
    return result


def _csv_entry(row: dict, tz=UTC) -> PriceEntry:
    def price(column: str, required: bool = False) -> Decimal | None:
        value = row.get(column, "")
        if not value:
            if required:
                raise ValueError(f"{column}: required")
            return None
        try:
            amount = parse_decimal(value)
        except ValueError:
            raise ValueError(f"{column}: {value!r} is not a number") from None
        if amount < 0:
            raise ValueError(f"{column}: must not be negative")
        if amount.as_tuple().exponent < -15:  # else the whole import fails later naming no line
            raise ValueError(f"{column}: {value!r} has more than 15 decimal places")
        return amount

    provider, model = split_provider(row.get("model", ""))
    if row.get("provider"):
        provider, model = row["provider"].lower(), row["model"]
    if not model:
        raise ValueError("model: required")
    currency = row.get("currency") or "USD"
    if not is_currency(currency):
        raise ValueError(f"currency: {currency!r} is not an ISO 4217 code")
    threshold = row.get("long_context_threshold") or None
    if threshold is not None:
        if not threshold.isdigit():
            raise ValueError(f"long_context_threshold: {threshold!r} is not a whole number")
        threshold = int(threshold)
    entry = PriceEntry(
        provider=provider,
        model=model,
        match_pattern=row.get("match_pattern", ""),
        currency=currency,
        input=price("input_per_1m", True),
        output=price("output_per_1m", True),
        cached_input=price("cached_input_per_1m"),
        cache_write=price("cache_write_per_1m"),
        long_context_threshold=threshold,
        long_input=price("long_input_per_1m"),
        long_cached_input=price("long_cached_input_per_1m"),
        long_cache_write=price("long_cache_write_per_1m"),
        long_output=price("long_output_per_1m"),
        effective_from=_csv_moment(row.get("effective_from", ""), "effective_from", tz),
        effective_to=_csv_moment(row.get("effective_to", ""), "effective_to", tz),
        source=row.get("source", ""),
    )
    if threshold is not None and (entry.long_input is None or entry.long_output is None):
        raise ValueError("long_context_threshold needs long_input_per_1m and long_output_per_1m")
    if entry.match_pattern:
        try:
            re.compile(entry.match_pattern)
        except re.error as exc:
            raise ValueError(f"match_pattern: not a regular expression ({exc})") from None
    if entry.effective_from and entry.effective_to and entry.effective_to <= entry.effective_from:
        raise ValueError("effective_to must be after effective_from")
    return entry


def parse_default_prices(path: Path = DEFAULT_PRICES_FILE) -> tuple[dict, ParseResult]:
    document = json.loads(path.read_text())
    result = ParseResult()
    for item in document["prices"]:
        result.entries.append(
            PriceEntry(
                provider=item.get("provider", ""),
                model=item["model"],
                match_pattern=item.get("match_pattern", ""),
                currency=document.get("currency", "USD"),
                input=Decimal(item["input"]),
                output=Decimal(item["output"]),
                cached_input=Decimal(item["cached_input"]) if "cached_input" in item else None,
                cache_write=Decimal(item["cache_write"]) if "cache_write" in item else None,
                long_context_threshold=item.get("long_context_threshold"),
                long_input=Decimal(item["long_input"]) if "long_input" in item else None,
                long_cached_input=Decimal(item["long_cached_input"]) if "long_cached_input" in item else None,
                long_cache_write=Decimal(item["long_cache_write"]) if "long_cache_write" in item else None,
                long_output=Decimal(item["long_output"]) if "long_output" in item else None,
                source=item["source"],
            )
        )
    return document, result


def parse_fx_csv(text: str) -> tuple[list[dict], list[str]]:
    """FX rates: columns date, from, to, rate, source; every malformed line is reported."""
    rows, errors = [], []
    reader = csv.DictReader(text.splitlines())
    required = ("date", "from", "to", "rate")
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"header: missing column(s) {', '.join(missing)}; expected date, from, to, rate, source"]
    for row in reader:
        line_no = reader.line_num  # DictReader skips blank lines: count the lines it read
        try:
            day = parse_date((row.get("date") or "").strip())
        except ValueError:  # well formed but impossible, such as 2026-02-30
            day = None
        from_currency, to_currency = (row.get("from") or "").strip().upper(), (row.get("to") or "").strip().upper()
        problems = []
        if day is None:
            problems.append("date: expected YYYY-MM-DD")
        if not is_currency(from_currency):
            problems.append(f"from: {from_currency!r} is not an ISO 4217 code")
        if not is_currency(to_currency):
            problems.append(f"to: {to_currency!r} is not an ISO 4217 code")
        try:
            rate = parse_decimal((row.get("rate") or "").strip())
            if rate <= 0:
                raise ValueError
        except ValueError:
            problems.append("rate: expected a positive number")
            rate = None
        if problems:
            errors.append(f"line {line_no}: " + "; ".join(problems))
            continue
        rows.append(
            {
                "date": day,
                "from_currency": from_currency,
                "to_currency": to_currency,
                "rate": rate,
                "source": (row.get("source") or "").strip()[:200],
            }
        )
    return rows, errors
