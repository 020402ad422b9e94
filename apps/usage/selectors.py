"""Reads of usage: cost summaries grouped by time and attribution, for the API and the dashboard alike."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek

from apps.common.money import format_cost
from apps.tenancy.models import Organization
from apps.usage import rollups
from apps.usage.filters import RollupQuery
from apps.usage.models import PricingStatus, UsageDirtyDay

TIME_DIMENSIONS = ("day", "week", "month")
ATTRIBUTE_DIMENSIONS = {
    "cost_center": "cost_center__code",
    "model": "model",
    "provider": "provider",
    "user_id": "user_id",
    "feature": "feature",
    "environment": "environment",
}
DIMENSIONS = (*TIME_DIMENSIONS, *ATTRIBUTE_DIMENSIONS)
MEASURES = (
    "cost",
    "input_tokens",
    "output_tokens",
    "requests",
    "unpriced",
    "unconverted",
    "latency_sum",
    "latency_count",
)


def _time_label(dimension: str, value) -> str:
    if dimension == "month":
        return value.strftime("%Y-%m")
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _raw_rows(records, group_by, tz):
    """Grouped measures straight from the usage records."""
    expressions = {}
    for dimension in group_by:
        if dimension == "day":
            expressions[f"g_{dimension}"] = TruncDate("timestamp", tzinfo=tz)
        elif dimension == "week":
            expressions[f"g_{dimension}"] = TruncWeek("timestamp", tzinfo=tz)
        elif dimension == "month":
            expressions[f"g_{dimension}"] = TruncMonth("timestamp", tzinfo=tz)
        else:
            expressions[f"g_{dimension}"] = F(ATTRIBUTE_DIMENSIONS[dimension])
    aggregates = {
        "cost": Sum("billing_cost", filter=Q(pricing_status=PricingStatus.PRICED)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "requests": Count("id"),
        "unpriced": Count("id", filter=Q(pricing_status=PricingStatus.UNPRICED)),
        "unconverted": Count("id", filter=Q(pricing_status=PricingStatus.NO_FX_RATE)),
        "latency_sum": Sum("latency_ms"),
        "latency_count": Count("latency_ms"),
    }
    if not group_by:
        return [records.aggregate(**aggregates)]
    return list(records.annotate(**expressions).values(*expressions).annotate(**aggregates).order_by())


def _rollup_rows(model, query: RollupQuery, clean_days_filter, organization, group_by):
    """The same grouped measures from a daily rollup, for the days that are clean."""
    rows = model.objects.for_org(organization).filter(day__gte=query.first_day, day__lt=query.end_day)
    rows = rows.filter(clean_days_filter)
    if query.cost_center_ids is not None:
        rows = rows.filter(cost_center_id__in=query.cost_center_ids)
    rows = rows.filter(**query.equals)
    expressions = {}
    for dimension in group_by:
        if dimension == "day":
            expressions["g_day"] = F("day")
        elif dimension == "week":
            expressions["g_week"] = TruncWeek("day")
        elif dimension == "month":
            expressions["g_month"] = TruncMonth("day")
        else:
            expressions[f"g_{dimension}"] = F(ATTRIBUTE_DIMENSIONS[dimension])
    aggregates = {
        "cost": Sum("cost"),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "requests": Sum("requests"),
        "unpriced": Sum("unpriced_requests"),
        "unconverted": Sum("unconverted_requests"),
        "latency_sum": Sum("latency_sum"),
        "latency_count": Sum("latency_count"),
    }
    if not group_by:
        return [rows.aggregate(**aggregates)]
    return list(rows.annotate(**expressions).values(*expressions).annotate(**aggregates).order_by())


def _rollup_model(group_by, query: RollupQuery | None):
    """The rollup that holds every dimension the question needs, if any."""
    if query is None or not rollups.enabled():
        return None
    needed = {d for d in group_by if d not in TIME_DIMENSIONS and d != "cost_center"} | set(query.equals)
    for model, dimensions in rollups.ROLLUPS.items():
        if needed <= set(dimensions):
            return model
    return None


def usage_cost_summary(
    *, organization: Organization, records, group_by: tuple[str, ...] = (), rollup: RollupQuery | None = None
) -> dict:
    """Totals of the given (already filtered, organization-scoped) records, grouped by the dimensions.

    Cost is in the organization's billing currency and counts priced records only; records without a
    price or without an FX rate are counted separately, never as zero. With `rollup` (the same filters
    in whole days) clean days are read from the daily rollups and dirty days from the records, so the
    answer is the same, only faster.
    """
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"Unknown dimension(s) {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}.")
    tz = organization.tz
    records = records.filter(organization=organization)
    model = _rollup_model(group_by, rollup)
    if model is None:
        parts = [_raw_rows(records, group_by, tz)]
    else:
        dirty = sorted(
            UsageDirtyDay.objects.for_org(organization)
            .filter(day__gte=rollup.first_day, day__lt=rollup.end_day)
            .values_list("day", flat=True)
        )
        parts = [_rollup_rows(model, rollup, ~Q(day__in=dirty), organization, group_by)]
        if dirty:
            moments = Q()
            for day in dirty:
                start = datetime.combine(day, time.min, tzinfo=tz)
                moments |= Q(
                    timestamp__gte=start, timestamp__lt=datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
                )
            parts.append(_raw_rows(records.filter(moments), group_by, tz))
    merged: dict[tuple, dict] = {}
    for rows in parts:
        for row in rows:
            key = (
                tuple(_time_label(d, row[f"g_{d}"]) if d in TIME_DIMENSIONS else row[f"g_{d}"] for d in group_by)
                if group_by
                else ()
            )
            if group_by and row["requests"] in (None, 0):
                continue
            item = merged.setdefault(key, dict.fromkeys(MEASURES, 0))
            for measure in MEASURES:
                item[measure] += row[measure] or 0
    total = dict.fromkeys(MEASURES, 0)
    for item in merged.values():
        for measure in MEASURES:
            total[measure] += item[measure]
    time_positions = [i for i, d in enumerate(group_by) if d in TIME_DIMENSIONS]
    ordered = sorted(
        merged.items(),
        key=lambda kv: (tuple(kv[0][i] for i in time_positions), -Decimal(kv[1]["cost"]), kv[0]),
    )
    results = []
    if group_by:
        for key, item in ordered:
            results.append({**dict(zip(group_by, key, strict=True)), **_totals(item)})
    return {
        "currency": organization.billing_currency,
        "group_by": list(group_by),
        "results": results,
        "total": _totals(total),
        "unpriced_requests": total["unpriced"],
        "unconverted_requests": total["unconverted"],
        "average_latency_ms": round(total["latency_sum"] / total["latency_count"]) if total["latency_count"] else None,
    }


def _totals(row: dict) -> dict:
    return {
        "cost": format_cost(Decimal(row["cost"] or 0)),
        "input_tokens": row["input_tokens"] or 0,
        "output_tokens": row["output_tokens"] or 0,
        "requests": row["requests"],
    }
