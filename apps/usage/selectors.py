"""Reads of usage: cost summaries grouped by time and attribution, for the API and the dashboard alike."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek

from apps.common.money import format_cost
from apps.tenancy.models import CostCenter, Organization
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


# How a rollup's row gives each dimension (the cost center by id, named after the query).
_ROLLUP_EXPRESSIONS = {
    "day": "day",
    "week": "date_trunc('week', day::timestamp)::date",
    "month": "date_trunc('month', day::timestamp)::date",
    "cost_center": "cost_center_id",
}
# In MEASURES order; counts back to bigint (a sum of bigint is numeric in PostgreSQL).
_ROLLUP_MEASURES = (
    "sum(cost), sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(requests)::bigint, "
    "sum(unpriced_requests)::bigint, sum(unconverted_requests)::bigint, sum(latency_sum)::bigint, "
    "sum(latency_count)::bigint"
)


def _rollup_rows(model, query: RollupQuery, dirty, organization, groupings) -> list[list[dict]]:
    """The grouped measures of the clean days from a daily rollup, for every grouping at once.

    One statement with GROUPING SETS reads the rollup once for all the groupings; each row is told
    to its grouping by GROUPING().
    """
    dimensions = list(dict.fromkeys(d for group_by in groupings for d in group_by))
    expressions = [_ROLLUP_EXPRESSIONS.get(d, d) for d in dimensions]
    where = ["organization_id = %s", "day >= %s", "day < %s"]
    params: list = [organization.pk, query.first_day, query.end_day]
    if dirty:
        where.append("day <> ALL(%s)")
        params.append(list(dirty))
    if query.cost_center_ids is not None:
        where.append("cost_center_id = ANY(%s)")
        params.append(sorted(query.cost_center_ids))
    for column, value in sorted(query.equals.items()):
        where.append(f"{column} = %s")
        params.append(value)
    sets = ", ".join(
        "(" + ", ".join(expressions[dimensions.index(d)] for d in group_by) + ")" for group_by in groupings
    )
    selected = "".join(f"{expression}, " for expression in expressions)
    grouping = f"GROUPING({', '.join(expressions)})" if expressions else "0"
    sql = (
        f"SELECT {grouping}, {selected}{_ROLLUP_MEASURES} FROM {model._meta.db_table} "
        f"WHERE {' AND '.join(where)} GROUP BY GROUPING SETS ({sets})"
    )
    codes = {}
    if "cost_center" in dimensions:
        codes = dict(CostCenter.objects.for_org(organization).values_list("id", "code"))
    by_mask: dict[int, list[dict]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            item = dict(zip(MEASURES, row[1 + len(dimensions) :], strict=True))
            for position, dimension in enumerate(dimensions):
                value = row[1 + position]
                item[f"g_{dimension}"] = codes.get(value) if dimension == "cost_center" else value
            by_mask.setdefault(row[0], []).append(item)
    # GROUPING() sets a bit, leftmost dimension highest, for each dimension the row is not grouped by.
    width = len(dimensions)
    masks = [
        sum(1 << (width - 1 - position) for position, d in enumerate(dimensions) if d not in group_by)
        for group_by in groupings
    ]
    return [by_mask.get(mask, []) for mask in masks]


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
    return usage_cost_summaries(organization=organization, records=records, groupings=[group_by], rollup=rollup)[0]


def usage_cost_summaries(
    *, organization: Organization, records, groupings: list[tuple[str, ...]], rollup: RollupQuery | None = None
) -> list[dict]:
    """`usage_cost_summary` of the same records for several groupings at once, in their order.

    Each daily rollup needed is read once for all the groupings it answers (GROUPING SETS), and the
    dirty days are looked up once.
    """
    merged = _merged(organization=organization, records=records, groupings=groupings, rollup=rollup)
    return [_summary(organization, group_by, items) for group_by, items in zip(groupings, merged, strict=True)]


def usage_cost_measures(
    *, organization: Organization, records, group_by: tuple[str, ...], rollup: RollupQuery | None = None
) -> dict[tuple, dict]:
    """The unrounded measures (MEASURES; cost a Decimal of the billing currency) per group, keyed by the
    group's values in `group_by` order: for callers that add groups up themselves."""
    return _merged(organization=organization, records=records, groupings=[group_by], rollup=rollup)[0]


def _merged(*, organization: Organization, records, groupings, rollup) -> list[dict[tuple, dict]]:
    for group_by in groupings:
        unknown = [d for d in group_by if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"Unknown dimension(s) {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}.")
    tz = organization.tz
    records = records.filter(organization=organization)
    by_source: dict = {}
    for index, group_by in enumerate(groupings):
        by_source.setdefault(_rollup_model(group_by, rollup), []).append(index)
    merged: list[dict[tuple, dict]] = [{} for _ in groupings]
    dirty = None
    for model, indexes in by_source.items():
        if model is None:
            for index in indexes:
                _fold(_raw_rows(records, groupings[index], tz), groupings[index], merged[index])
            continue
        if dirty is None:
            dirty = sorted(
                UsageDirtyDay.objects.for_org(organization)
                .filter(day__gte=rollup.first_day, day__lt=rollup.end_day)
                .values_list("day", flat=True)
            )
        # Groupings by the same dimensions in another order are one grouping set.
        wanted = list({frozenset(groupings[index]): groupings[index] for index in indexes}.values())
        parts = [_rollup_rows(model, rollup, dirty, organization, wanted)]
        if dirty:
            moments = Q()
            for day in dirty:
                start = datetime.combine(day, time.min, tzinfo=tz)
                end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
                moments |= Q(timestamp__gte=start, timestamp__lt=end)
            parts.append([_raw_rows(records.filter(moments), group_by, tz) for group_by in wanted])
        for part in parts:
            for group_by, rows in zip(wanted, part, strict=True):
                for index in indexes:
                    if set(groupings[index]) == set(group_by):
                        _fold(rows, groupings[index], merged[index])
    return merged


def _fold(rows, group_by: tuple[str, ...], merged: dict[tuple, dict]) -> None:
    """Add rows read by the grouping's dimensions into its totals (a group's rollup and dirty-day rows add up)."""
    for row in rows:
        if group_by and row["requests"] in (None, 0):
            continue
        key = tuple(_time_label(d, row[f"g_{d}"]) if d in TIME_DIMENSIONS else row[f"g_{d}"] for d in group_by)
        item = merged.get(key)
        if item is None:
            item = merged[key] = dict.fromkeys(MEASURES, 0)
        for measure in MEASURES:
            value = row[measure]
            if value:
                item[measure] += value


def _summary(organization: Organization, group_by: tuple[str, ...], merged: dict[tuple, dict]) -> dict:
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
