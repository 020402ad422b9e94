"""Reads of budgets: period windows, spend against the limit, the run-rate forecast, the gateway check."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from apps.budgets.models import Budget, BudgetOverride, Enforcement, PeriodKind
from apps.tenancy.models import CostCenter, Organization
from apps.tenancy.selectors import cost_center_subtrees_of
from apps.usage.filters import RollupQuery
from apps.usage.models import PricingStatus, UsageRecord
from apps.usage.selectors import usage_cost_measures


def period_window(*, period_kind: str, day: date) -> tuple[date, date]:
    """[first day, first day of the next period) of the month, quarter or year holding `day`."""
    if period_kind == PeriodKind.MONTH:
        start = day.replace(day=1)
        months = 1
    elif period_kind == PeriodKind.QUARTER:
        start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        months = 3
    else:
        start = day.replace(month=1, day=1)
        months = 12
    month_index = start.month - 1 + months
    end = start.replace(year=start.year + month_index // 12, month=month_index % 12 + 1)
    return start, end


@dataclass
class BudgetStatus:
    budget: Budget
    currency: str
    period_start: date
    period_end: date
    spent: Decimal
    limit: Decimal
    days_elapsed: Decimal
    days_in_period: int

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.spent

    @property
    def forecast(self) -> Decimal:
        """Run rate: spend so far / days elapsed x days in period (at least one day elapsed)."""
        return (self.spent / max(self.days_elapsed, Decimal(1)) * self.days_in_period).quantize(Decimal("0.0001"))

    @property
    def percent_spent(self) -> Decimal:
        return (self.spent / self.limit * 100).quantize(Decimal("0.1")) if self.limit else Decimal(0)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit


def budget_effective_amount(*, budget: Budget, on: date) -> Decimal:
    """The amount in force on a day: a temporary override from an approved request, else the budget's."""
    override = budget.overrides.filter(starts_on__lte=on, until__gte=on).order_by("-starts_on", "-id").first()
    return override.amount if override is not None else budget.amount


def budget_status(*, budget: Budget, now: datetime | None = None) -> BudgetStatus:
    return budget_statuses(budgets=[budget], now=now)[0]


def budget_statuses(*, budgets: list[Budget], now: datetime | None = None) -> list[BudgetStatus]:
    """Spend, limit and forecast of budgets of one organization, in their order.

    Spend is read once per period window for all the budgets sharing it, by cost center: the days up to
    and including today from the daily rollups (their dirty days from the records), less what is recorded
    for later today than `now` (usually nothing, as ingest refuses timestamps more than 5 minutes ahead,
    but a status asked for a past moment must not count it).
    """
    if not budgets:
        return []
    organization = budgets[0].organization
    if any(budget.organization_id != organization.pk for budget in budgets):
        raise ValueError("Budgets of one organization at a time.")
    tz = organization.tz
    now = now or timezone.now()
    today = now.astimezone(tz).date()
    centers = list(CostCenter.objects.for_org(organization).values_list("id", "parent_id", "code"))
    codes = {pk: code for pk, _, code in centers}
    roots = {budget.cost_center_id for budget in budgets if budget.cost_center_id is not None}
    subtrees = cost_center_subtrees_of([(pk, parent_id) for pk, parent_id, _ in centers], sorted(roots))

    # The override in force today of each budget, if any (ordered newest first).
    overrides: dict[int, Decimal] = {}
    in_force = BudgetOverride.objects.filter(budget__in=budgets, starts_on__lte=today, until__gte=today).order_by(
        "budget_id", "-starts_on", "-id"
    )
    for budget_id, amount in in_force.values_list("budget_id", "amount"):
        overrides.setdefault(budget_id, amount)
    windows = {budget.pk: period_window(period_kind=budget.period_kind, day=today) for budget in budgets}
    spent_by_window = {
        window: _spend_by_cost_center(organization, *window, today, now) for window in set(windows.values())
    }
    statuses = []
    for budget in budgets:
        start, end = windows[budget.pk]
        by_code, later_by_id = spent_by_window[(start, end)]
        scope = subtrees[budget.cost_center_id] if budget.cost_center_id is not None else codes.keys()
        spent = sum((by_code.get(codes[pk], Decimal(0)) - later_by_id.get(pk, Decimal(0)) for pk in scope), Decimal(0))
        start_at = datetime.combine(start, time.min, tzinfo=tz)
        end_at = datetime.combine(end, time.min, tzinfo=tz)
        elapsed = Decimal((min(now, end_at) - start_at).total_seconds()) / Decimal(86400)
        statuses.append(
            BudgetStatus(
                budget=budget,
                currency=organization.billing_currency,
                period_start=start,
                period_end=end - timedelta(days=1),
                spent=spent,
                limit=overrides.get(budget.pk, budget.amount),
                days_elapsed=elapsed.quantize(Decimal("0.001")),
                days_in_period=(end - start).days,
            )
        )
    return statuses


def _spend_by_cost_center(organization, start: date, end: date, today: date, now: datetime):
    """Priced spend in [start, end) up to today by cost center code, and by cost center id what of it is
    recorded after `now`."""
    tz = organization.tz
    through = min(end, today + timedelta(days=1))
    through_at = datetime.combine(through, time.min, tzinfo=tz)
    records = UsageRecord.objects.for_org(organization)
    by_code: dict[str, Decimal] = {}
    if through > start:
        measures = usage_cost_measures(
            organization=organization,
            records=records.filter(
                timestamp__gte=datetime.combine(start, time.min, tzinfo=tz), timestamp__lt=through_at
            ),
            group_by=("cost_center",),
            rollup=RollupQuery(first_day=start, end_day=through, cost_center_ids=None, equals={}),
        )
        by_code = {code: Decimal(item["cost"]) for (code,), item in measures.items()}
    later_by_id: dict[int, Decimal] = {}
    later_from = max(now, datetime.combine(start, time.min, tzinfo=tz))
    if later_from < through_at:
        later = (
            records.filter(timestamp__gte=later_from, timestamp__lt=through_at, pricing_status=PricingStatus.PRICED)
            .values("cost_center_id")
            .annotate(total=Sum("billing_cost"))
            .order_by()
        )
        later_by_id = {row["cost_center_id"]: row["total"] for row in later}
    return by_code, later_by_id


def budgets_covering(*, organization: Organization, cost_center: CostCenter):
    """Active budgets that count this cost center's usage: its own, its ancestors' and the organization's."""
    ancestors, node = [], cost_center
    while node is not None:
        ancestors.append(node.pk)
        node = node.parent
    return (
        Budget.objects.for_org(organization)
        .filter(active=True)
        .filter(Q(cost_center_id__in=ancestors) | Q(cost_center__isnull=True))
        .select_related("organization", "cost_center")
    )


@dataclass
class BudgetCheck:
    cost_center: str
    allowed: bool
    statuses: list[BudgetStatus]

    @property
    def binding(self) -> BudgetStatus | None:
        """The budget with the least room left: hard ones first, since they decide `allowed`."""
        if not self.statuses:
            return None
        return min(self.statuses, key=lambda s: (s.budget.enforcement != Enforcement.HARD, s.remaining))


def budget_check(*, organization: Organization, cost_center: CostCenter, now: datetime | None = None) -> BudgetCheck:
    """May this cost center spend more? No once any hard budget over it is exhausted."""
    statuses = budget_statuses(
        budgets=list(budgets_covering(organization=organization, cost_center=cost_center)), now=now
    )
    allowed = not any(s.exhausted for s in statuses if s.budget.enforcement == Enforcement.HARD)
    return BudgetCheck(cost_center=cost_center.code, allowed=allowed, statuses=statuses)
