"""A budget's spend is the same whether its days were rolled up or not."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.budgets.selectors import budget_status, budget_statuses
from apps.budgets.services import budget_create
from apps.usage import rollups
from tests.budgets.support import spend


def test_spent_is_the_same_before_and_after_the_rollup(org, tree):
    product, _, _ = tree
    budget = budget_create(organization=org, cost_center=product, amount=Decimal("100"))
    spend(org, "10.00", cost_center="cc_search", at="2026-04-02T10:00:00Z")
    spend(org, "5.00", cost_center="cc_product", at="2026-04-10T08:00:00Z")
    spend(org, "7.00", cost_center="cc_product", at="2026-04-10T11:00:00Z")  # after "now" below: not yet spent
    spend(org, "3.00", cost_center="cc_ops", at="2026-04-05T10:00:00Z")  # another scope
    now = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    before = budget_status(budget=budget, now=now)
    assert before.spent == Decimal("15.00")
    rollups.rollup_dirty_days()
    after = budget_status(budget=budget, now=now)
    assert after.spent == before.spent and after.forecast == before.forecast


def test_statuses_read_together_equal_each_read_alone(org, tree):
    product, search, ops = tree
    budgets = [
        budget_create(organization=org, amount=Decimal("1000")),
        budget_create(organization=org, cost_center=product, amount=Decimal("100")),
        budget_create(organization=org, cost_center=search, amount=Decimal("50")),
        budget_create(organization=org, cost_center=ops, amount=Decimal("20"), period_kind="quarter"),
    ]
    spend(org, "10.00", cost_center="cc_search", at="2026-04-02T10:00:00Z")
    spend(org, "5.00", cost_center="cc_product", at="2026-04-10T08:00:00Z")
    spend(org, "7.00", cost_center="cc_product", at="2026-04-10T11:00:00Z")  # after "now"
    spend(org, "3.00", cost_center="cc_ops", at="2026-03-05T10:00:00Z")  # last quarter
    spend(org, "4.00", cost_center="cc_ops", at="2026-04-05T10:00:00Z")
    spend(org, "2.00", at="2026-04-06T10:00:00Z")  # unallocated: the organization's budget only
    now = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    rollups.rollups_refresh()
    together = budget_statuses(budgets=budgets, now=now)
    assert [s.spent for s in together] == [Decimal("21.00"), Decimal("15.00"), Decimal("10.00"), Decimal("4.00")]
    alone = [budget_status(budget=b, now=now) for b in budgets]
    assert [(s.spent, s.forecast, s.period_start) for s in together] == [
        (s.spent, s.forecast, s.period_start) for s in alone
    ]
    assert together[3].period_start.isoformat() == "2026-04-01" and together[3].period_end.isoformat() == "2026-06-30"


def test_statuses_of_two_organizations_are_refused_together(org, tree, priced_model):
    from tests.factories import OrganizationFactory

    other = OrganizationFactory(slug="other-budgets")
    budgets = [
        budget_create(organization=org, amount=Decimal("10")),
        budget_create(organization=other, amount=Decimal("10")),
    ]
    with pytest.raises(ValueError):
        budget_statuses(budgets=budgets)
