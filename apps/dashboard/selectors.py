"""The dashboard's numbers, from the same filters and cost summary as GET /api/v1/costs."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.http import QueryDict
from django.utils import timezone

from apps.budgets.models import Budget, PeriodKind
from apps.budgets.selectors import budget_statuses
from apps.dashboard.charts import OTHER
from apps.tenancy.models import UNALLOCATED, Organization
from apps.usage.filters import UsageFilter
from apps.usage.models import UsageRecord
from apps.usage.selectors import usage_cost_summaries

PRESETS = (7, 30, 90)
STACKS = ("cost_center", "model")
MAX_SERIES = 8
TOP = 10


def range_params(*, organization: Organization, params: QueryDict) -> tuple[QueryDict, int | None]:
    """Turn a preset (range=7|30|90, default 30) into start and end dates; custom start/end win."""
    params = params.copy()
    preset = None
    if not params.get("start") and not params.get("end"):
        try:
            preset = int(params.get("range", 30))
        except ValueError:
            preset = 30
        preset = preset if preset in PRESETS else 30
        today = timezone.now().astimezone(organization.tz).date()
        params["start"] = (today - timedelta(days=preset - 1)).isoformat()
        params["end"] = today.isoformat()
    return params, preset


def _decimal(value: str) -> Decimal:
    return Decimal(value)


@dataclass
class Dashboard:
    organization: Organization
    filterset: UsageFilter
    preset: int | None
    stack: str
    totals: dict = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    series: list[tuple[str, dict[date, Decimal]]] = field(default_factory=list)
    cost_centers: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    features: list[dict] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    unallocated_cost: Decimal = Decimal(0)


def dashboard_build(*, organization: Organization, params: QueryDict, visible_cost_center_ids=None) -> Dashboard:
    params, preset = range_params(organization=organization, params=params)
    stack = params.get("stack") if params.get("stack") in STACKS else "cost_center"
    filterset = UsageFilter(
        params,
        queryset=UsageRecord.objects.for_org(organization),
        organization=organization,
        visible_cost_center_ids=visible_cost_center_ids,
    )
    board = Dashboard(organization=organization, filterset=filterset, preset=preset, stack=stack)
    if not filterset.is_valid():
        return board

    # Every panel's numbers in one call: each daily rollup (or the records) is read once for all of them.
    overall, by_cost_center, by_model, by_user, by_feature, by_day = usage_cost_summaries(
        organization=organization,
        records=filterset.qs,
        groupings=[(), ("cost_center",), ("model",), ("user_id",), ("feature",), ("day", stack)],
        rollup=filterset.rollup_query(),
    )
    board.totals = {
        **overall["total"],
        "cost": _decimal(overall["total"]["cost"]),
        "unpriced_requests": overall["unpriced_requests"],
        "unconverted_requests": overall["unconverted_requests"],
        "average_latency_ms": overall["average_latency_ms"],
    }
    total_cost = board.totals["cost"]

    board.cost_centers = [{**row, "cost": _decimal(row["cost"])} for row in by_cost_center["results"]]
    board.unallocated_cost = sum((r["cost"] for r in board.cost_centers if r["cost_center"] == UNALLOCATED), Decimal(0))
    board.models = [
        {
            **row,
            "cost": _decimal(row["cost"]),
            "share": (_decimal(row["cost"]) / total_cost * 100).quantize(Decimal("0.1")) if total_cost else Decimal(0),
        }
        for row in by_model["results"]
    ]
    board.users = [{**row, "cost": _decimal(row["cost"])} for row in by_user["results"][:TOP]]
    board.features = [{**row, "cost": _decimal(row["cost"])} for row in by_feature["results"][:TOP]]

    start = filterset.start_at.astimezone(organization.tz).date()
    end = (filterset.end_at - timedelta(microseconds=1)).astimezone(organization.tz).date()
    board.days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    ranked = [row[stack] for row in (board.cost_centers if stack == "cost_center" else board.models)]
    keep = ranked[:MAX_SERIES]
    values: dict[str, dict[date, Decimal]] = {name: {} for name in keep}
    for row in by_day["results"]:
        name = row[stack] if row[stack] in values else OTHER
        day = date.fromisoformat(row["day"])
        bucket = values.setdefault(name, {})
        bucket[day] = bucket.get(day, Decimal(0)) + _decimal(row["cost"])
    board.series = [(name, values[name]) for name in [*keep, OTHER] if name in values]
    board.budgets = _budget_burn(organization, visible_cost_center_ids)
    return board


def _budget_burn(organization, visible_cost_center_ids) -> list[dict]:
    budgets = (
        Budget.objects.for_org(organization)
        .filter(active=True, period_kind=PeriodKind.MONTH)
        .select_related("cost_center", "organization")
    )
    if visible_cost_center_ids is not None:
        budgets = budgets.filter(cost_center_id__in=visible_cost_center_ids)
    rows = []
    for status in budget_statuses(budgets=list(budgets)):
        budget = status.budget
        rows.append(
            {
                "scope": budget.cost_center.code if budget.cost_center_id else "organization",
                "status": status,
                "percent": min(status.percent_spent, Decimal(100)),
                "over": status.percent_spent > 100,
                "forecast_percent": (status.forecast / status.limit * 100).quantize(Decimal("0.1"))
                if status.limit
                else 0,
                "markers": [t for t in budget.thresholds if t <= 100],
            }
        )
    return sorted(rows, key=lambda r: r["status"].percent_spent, reverse=True)
