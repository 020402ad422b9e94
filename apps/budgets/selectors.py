"""Reads of budgets: period windows, spend against the limit, the run-rate forecast, the gateway check."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from apps.budgets.models import Budget, Enforcement, PeriodKind
from apps.tenancy.models import CostCenter, Organization
from apps.tenancy.selectors import cost_center_descendant_ids
from apps.usage.filters import RollupQuery
from apps.usage.models import PricingStatus, UsageRecord
from apps.usage.selectors import usage_cost_summary


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


def budget_scope_ids(*, budget: Budget) -> set[int] | None:
    """The cost centers whose usage counts against the budget; None for the whole organization."""
    if budget.cost_center_id is None:
        return None
    return cost_center_descendant_ids(organization=budget.organization, roots=[budget.cost_center_id])


def budget_status(*, budget: Budget, now: datetime | None = None) -> BudgetStatus:
    organization = budget.organization
    tz = organization.tz
    now = now or timezone.now()
    today = now.astimezone(tz).date()
    start, end = period_window(period_kind=budget.period_kind, day=today)
    start_at = datetime.combine(start, time.min, tzinfo=tz)
    end_at = datetime.combine(end, time.min, tzinfo=tz)
    scope = budget_scope_ids(budget=budget)
    records = UsageRecord.objects.for_org(organization)
    if scope is not None:
        records = records.filter(cost_center_id__in=scope)
    # Whole days before today from the daily rollups (their dirty days from the records), today up to now raw.
    today_at = datetime.combine(today, time.min, tzinfo=tz)
    spent = Decimal(0)
    if min(end, today) > start:
        summary = usage_cost_summary(
            organization=organization,
            records=records.filter(timestamp__gte=start_at, timestamp__lt=min(end_at, today_at)),
            rollup=RollupQuery(first_day=start, end_day=min(end, today), cost_center_ids=scope, equals={}),
        )
        spent += Decimal(summary["total"]["cost"])
    if today_at < min(end_at, now):
        today_records = records.filter(
            timestamp__gte=max(start_at, today_at), timestamp__lt=min(end_at, now), pricing_status=PricingStatus.PRICED
        )
        spent += today_records.aggregate(total=Sum("billing_cost"))["total"] or Decimal(0)
    elapsed = Decimal((min(now, end_at) - start_at).total_seconds()) / Decimal(86400)
    return BudgetStatus(
        budget=budget,
        currency=organization.billing_currency,
        period_start=start,
        period_end=end - timedelta(days=1),
        spent=spent,
        limit=budget_effective_amount(budget=budget, on=today),
        days_elapsed=elapsed.quantize(Decimal("0.001")),
        days_in_period=(end - start).days,
    )


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
    statuses = [
        budget_status(budget=b, now=now) for b in budgets_covering(organization=organization, cost_center=cost_center)
    ]
    allowed = not any(s.exhausted for s in statuses if s.budget.enforcement == Enforcement.HARD)
    return BudgetCheck(cost_center=cost_center.code, allowed=allowed, statuses=statuses)
