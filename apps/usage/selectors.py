"""Reads of usage: cost summaries grouped by time and attribution, for the API and the dashboard alike."""

from decimal import Decimal

from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek

from apps.common.money import format_cost
from apps.tenancy.models import Organization
from apps.usage.models import PricingStatus

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


def _time_expression(dimension: str, tz):
    if dimension == "day":
        return TruncDate("timestamp", tzinfo=tz)
    if dimension == "week":
        return TruncWeek("timestamp", tzinfo=tz)
    return TruncMonth("timestamp", tzinfo=tz)


def _time_label(dimension: str, value) -> str:
    if dimension == "month":
        return value.strftime("%Y-%m")
    return (value.date() if hasattr(value, "date") else value).isoformat()


def usage_cost_summary(*, organization: Organization, records, group_by: tuple[str, ...] = ()) -> dict:
    """Totals of the given (already filtered, organization-scoped) records, grouped by the dimensions.

    Cost is in the organization's billing currency and counts priced records only; records without a
    price or without an FX rate are counted separately, never as zero.
    """
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"Unknown dimension(s) {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}.")
    tz = organization.tz
    records = records.filter(organization=organization)
    aggregates = {
        "cost": Sum("billing_cost", filter=Q(pricing_status=PricingStatus.PRICED)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "requests": Count("id"),
        "unpriced_requests": Count("id", filter=Q(pricing_status=PricingStatus.UNPRICED)),
        "unconverted_requests": Count("id", filter=Q(pricing_status=PricingStatus.NO_FX_RATE)),
    }
    total = records.aggregate(**aggregates, average_latency_ms=Avg("latency_ms"))
    results = []
    if group_by:
        expressions = {}
        for dimension in group_by:
            if dimension in TIME_DIMENSIONS:
                expressions[f"g_{dimension}"] = _time_expression(dimension, tz)
            else:
                expressions[f"g_{dimension}"] = F(ATTRIBUTE_DIMENSIONS[dimension])
        rows = (
            records.annotate(**expressions)
            .values(*expressions)
            .annotate(**aggregates)
            .order_by(
                *(f"g_{d}" for d in group_by if d in TIME_DIMENSIONS), F("cost").desc(nulls_last=True), *expressions
            )
        )
        for row in rows:
            item = {}
            for dimension in group_by:
                value = row[f"g_{dimension}"]
                item[dimension] = _time_label(dimension, value) if dimension in TIME_DIMENSIONS else value
            item.update(_totals(row))
            results.append(item)
    return {
        "currency": organization.billing_currency,
        "group_by": list(group_by),
        "results": results,
        "total": _totals(total),
        "unpriced_requests": total["unpriced_requests"],
        "unconverted_requests": total["unconverted_requests"],
        "average_latency_ms": round(total["average_latency_ms"]) if total["average_latency_ms"] is not None else None,
    }


def _totals(row: dict) -> dict:
    return {
        "cost": format_cost(row["cost"] or Decimal(0)),
        "input_tokens": row["input_tokens"] or 0,
        "output_tokens": row["output_tokens"] or 0,
        "requests": row["requests"],
    }
