"""A budget's spend is the same whether its days were rolled up or not."""

from datetime import UTC, datetime
from decimal import Decimal

from apps.budgets.selectors import budget_status
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
