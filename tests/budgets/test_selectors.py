"""Budget periods, spend and the amount in force (PRODUCT.md section 7; periods cut in the organization's zone)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.budgets.selectors import budget_effective_amount, budget_status, period_window
from apps.budgets.services import budget_create, budget_request_change, budget_request_decide
from apps.tenancy.models import Role
from tests.budgets.support import spend
from tests.factories import CostCenterFactory, FxRateFactory, OrganizationFactory


@pytest.mark.parametrize(
    ("period_kind", "day", "window"),
    [
        ("month", date(2026, 3, 15), (date(2026, 3, 1), date(2026, 4, 1))),
        ("month", date(2026, 12, 31), (date(2026, 12, 1), date(2027, 1, 1))),
        ("month", date(2028, 2, 29), (date(2028, 2, 1), date(2028, 3, 1))),
        ("quarter", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 4, 1))),
        ("quarter", date(2026, 5, 15), (date(2026, 4, 1), date(2026, 7, 1))),
        ("quarter", date(2026, 11, 30), (date(2026, 10, 1), date(2027, 1, 1))),
        ("year", date(2026, 7, 4), (date(2026, 1, 1), date(2027, 1, 1))),
        ("year", date(2026, 12, 31), (date(2026, 1, 1), date(2027, 1, 1))),
    ],
)
def test_period_window_is_the_month_quarter_or_year_holding_the_day(period_kind, day, window):
    assert period_window(period_kind=period_kind, day=day) == window


class TestBudgetStatus:
    @pytest.fixture
    def new_york(self, priced_model):
        """New York: EST (UTC-5) until 8 March 2026, EDT (UTC-4) after."""
        ny = OrganizationFactory(slug="ny", timezone="America/New_York")
        product = CostCenterFactory(organization=ny, code="cc_product")
        CostCenterFactory(organization=ny, code="cc_search", parent=product)
        CostCenterFactory(organization=ny, code="cc_ops")
        spend(ny, "7.00", cost_center="cc_search", at="2026-03-01T04:30:00Z")  # 28 Feb 23:30 EST: February
        spend(ny, "10.00", cost_center="cc_search", at="2026-03-01T05:30:00Z")  # 1 March 00:30 EST
        spend(ny, "2.50", cost_center="cc_product", at="2026-03-15T12:00:00Z")
        spend(ny, "1.25", cost_center="cc_search", at="2026-04-01T02:30:00Z")  # 31 March 22:30 EDT
        spend(ny, "100.00", cost_center="cc_ops", at="2026-03-10T12:00:00Z")
        spend(ny, "0.50", at="2026-03-10T12:00:00Z")  # unallocated
        spend(ny, "3.00", cost_center="cc_search", at="2026-03-10T12:00:00Z", model="model-without-price")
        return ny

    # 31 March 23:00 EDT: still March in New York, already April in UTC.
    NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)

    def test_a_cost_center_budget_counts_itself_and_its_children_in_the_organizations_month(self, new_york):
        product = new_york.cost_centers.get(code="cc_product")
        budget = budget_create(organization=new_york, cost_center=product, amount=Decimal("50"))
        status = budget_status(budget=budget, now=self.NOW)
        assert (status.period_start, status.period_end) == (date(2026, 3, 1), date(2026, 3, 31))
        # 10.00 + 2.50 + 1.25; not February's 7.00, cc_ops' 100.00, unallocated 0.50 or the unpriced call
        assert status.spent == Decimal("13.75")
        assert status.limit == Decimal("50")
        assert status.remaining == Decimal("36.25")
        assert status.percent_spent == Decimal("27.5")
        assert status.exhausted is False
        assert status.currency == "USD"
        assert status.days_in_period == 31
        # 1 March 00:00 EST (05:00Z) to 1 April 03:00Z: 31 days less 2 hours = 30.9167 days
        assert status.days_elapsed == Decimal("30.917")

    def test_a_child_budget_does_not_count_its_parent(self, new_york):
        search = new_york.cost_centers.get(code="cc_search")
        budget = budget_create(organization=new_york, cost_center=search, amount=Decimal("11.25"))
        status = budget_status(budget=budget, now=self.NOW)
        assert status.spent == Decimal("11.25")  # 10.00 + 1.25
        assert status.exhausted is True and status.remaining == Decimal("0")

    def test_an_organization_budget_counts_every_cost_center_and_no_other_organization(self, new_york, other_org):
        spend(other_org, "40.00", at="2026-03-10T12:00:00Z")
        budget = budget_create(organization=new_york, amount=Decimal("200"))
        status = budget_status(budget=budget, now=self.NOW)
        assert status.spent == Decimal("114.25")  # 10.00 + 2.50 + 1.25 + 100.00 + 0.50

    def test_usage_after_now_does_not_count(self, new_york):
        budget = budget_create(organization=new_york, amount=Decimal("200"))
        status = budget_status(budget=budget, now=datetime(2026, 3, 15, 12, 0, tzinfo=UTC))
        # only 10.00 (1 March), 100.00 and 0.50 (10 March); 2.50 at 12:00 is not before now
        assert status.spent == Decimal("110.50")

    def test_quarter_starts_at_midnight_in_tokyo_and_forecasts_over_at_least_one_day(self, priced_model):
        tokyo = OrganizationFactory(slug="tokyo", timezone="Asia/Tokyo")
        spend(tokyo, "9.00", at="2026-06-30T14:50:00Z")  # 30 June 23:50 JST: the second quarter
        spend(tokyo, "4.00", at="2026-06-30T15:10:00Z")  # 1 July 00:10 JST: the third
        budget = budget_create(organization=tokyo, amount=Decimal("300"), period_kind="quarter")
        status = budget_status(budget=budget, now=datetime(2026, 6, 30, 15, 30, tzinfo=UTC))
        assert (status.period_start, status.period_end) == (date(2026, 7, 1), date(2026, 9, 30))
        assert status.spent == Decimal("4.00")
        assert status.days_in_period == 92
        assert status.days_elapsed == Decimal("0.021")  # 30 minutes
        # 4.00 / max(0.021, 1) x 92
        assert status.forecast == Decimal("368.0000")

    def test_year_in_berlin_and_its_run_rate_forecast(self, priced_model):
        berlin = OrganizationFactory(slug="berlin", timezone="Europe/Berlin")
        spend(berlin, "5.00", at="2025-12-31T22:30:00Z")  # 31 December 23:30 CET: 2025
        spend(berlin, "8.20", at="2025-12-31T23:30:00Z")  # 1 January 00:30 CET: 2026
        budget = budget_create(organization=berlin, amount=Decimal("1000"), period_kind="year")
        # 11 February 00:00 CET: 41 days after 1 January 00:00 CET
        status = budget_status(budget=budget, now=datetime(2026, 2, 10, 23, 0, tzinfo=UTC))
        assert (status.period_start, status.period_end) == (date(2026, 1, 1), date(2026, 12, 31))
        assert status.spent == Decimal("8.20")
        assert status.days_in_period == 365
        assert status.days_elapsed == Decimal("41.000")
        assert status.forecast == Decimal("73.0000")  # 8.20 / 41 x 365

    def test_spend_is_in_the_billing_currency_and_usage_waiting_for_an_fx_rate_does_not_count(self, priced_model):
        paris = OrganizationFactory(slug="paris", billing_currency="EUR", timezone="Europe/Paris")
        FxRateFactory(date=date(2026, 3, 5), from_currency="USD", to_currency="EUR", rate=Decimal("0.9"))
        spend(paris, "5.00", at="2026-03-02T10:00:00Z")  # no USD->EUR rate on or before 2 March yet
        spend(paris, "10.00", at="2026-03-10T10:00:00Z")  # 10.00 USD x 0.9
        budget = budget_create(organization=paris, amount=Decimal("20"))
        status = budget_status(budget=budget, now=datetime(2026, 3, 20, tzinfo=UTC))
        assert status.currency == "EUR"
        assert status.spent == Decimal("9.00")
        assert status.percent_spent == Decimal("45.0")


class TestEffectiveAmount:
    @pytest.fixture
    def budget(self, org, tree):
        _, search, _ = tree
        return budget_create(organization=org, cost_center=search, amount=Decimal("100"))

    def _approve(self, org, budget, member, *, amount, until=None):
        owner = member(Role.OWNER, cost_centers=[budget.cost_center])
        finance = member(Role.FINANCE)
        request = budget_request_change(budget=budget, user=owner.user, amount=amount, reason="launch", until=until)
        return budget_request_decide(request=request, user=finance.user, approve=True)

    def test_a_temporary_override_is_in_force_until_its_date_inclusive_then_the_budget_amount(
        self, org, budget, member
    ):
        now = timezone.now()
        today = now.date()  # the organization is in UTC
        until = today + timedelta(days=2)
        spend(org, "120.00", cost_center="cc_search")
        self._approve(org, budget, member, amount=Decimal("150"), until=until)

        status = budget_status(budget=budget, now=now)
        assert status.limit == Decimal("150")
        assert status.exhausted is False
        assert budget_effective_amount(budget=budget, on=until) == Decimal("150")
        assert budget_effective_amount(budget=budget, on=until + timedelta(days=1)) == Decimal("100")
        assert budget_effective_amount(budget=budget, on=today - timedelta(days=1)) == Decimal("100")
        later = budget_status(budget=budget, now=now + timedelta(days=3))
        assert later.limit == Decimal("100")
        budget.refresh_from_db()
        assert budget.amount == Decimal("100")

    def test_a_permanent_change_sets_the_budget_amount(self, org, budget, member):
        self._approve(org, budget, member, amount=Decimal("120"))
        budget.refresh_from_db()
        assert budget.amount == Decimal("120")
        assert budget.overrides.count() == 0
        assert budget_status(budget=budget).limit == Decimal("120")
