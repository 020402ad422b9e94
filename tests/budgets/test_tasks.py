"""Celery tasks of budgets: evaluation shortly after ingest and the periodic sweep (run eagerly)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.budgets.models import Alert, Budget
from apps.budgets.services import budget_create
from apps.budgets.tasks import evaluate, evaluate_all, evaluate_recent
from apps.usage.models import UsageRecord
from tests.budgets.support import spend
from tests.factories import CostCenterFactory


def alerted_at_50():
    return set(Alert.objects.filter(kind="actual", threshold=50).values_list("budget_id", flat=True))


def test_evaluate_recent_takes_the_budgets_over_cost_centers_that_received_usage_lately(org, other_org, tree):
    product, _, ops = tree
    product_budget = budget_create(organization=org, cost_center=product, amount=Decimal("100"))
    ops_budget = budget_create(organization=org, cost_center=ops, amount=Decimal("100"))
    whole_budget = budget_create(organization=org, amount=Decimal("200"))
    other_cc = CostCenterFactory(organization=other_org, code="cc_search")
    other_budget = budget_create(organization=other_org, cost_center=other_cc, amount=Decimal("10"))

    # received ten minutes ago: outside the two-minute window
    spend(org, "60.00", cost_center="cc_ops")
    spend(other_org, "60.00", cost_center="cc_search")
    UsageRecord.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    # received now, by the child of cc_product
    spend(org, "60.00", cost_center="cc_search")

    # cc_product's budget (60.00 of 100.00) through its child, and the organization's (120.00 of 200.00)
    assert evaluate_recent() == 2
    assert alerted_at_50() == {product_budget.pk, whole_budget.pk}
    assert ops_budget.pk not in alerted_at_50() and other_budget.pk not in alerted_at_50()

    assert evaluate_recent(window_seconds=3600) == 4
    assert alerted_at_50() == {product_budget.pk, whole_budget.pk, ops_budget.pk, other_budget.pk}


def test_evaluate_recent_with_no_new_usage_evaluates_nothing(org, tree):
    budget_create(organization=org, amount=Decimal("1"))
    assert evaluate_recent() == 0


def test_evaluate_all_takes_every_active_budget_and_evaluate_skips_an_inactive_one(org, tree):
    active = budget_create(organization=org, cost_center=tree[2], amount=Decimal("10"))
    retired = budget_create(organization=org, amount=Decimal("10"))
    Budget.objects.filter(pk=retired.pk).update(active=False)
    spend(org, "9.00", cost_center="cc_ops")
    assert evaluate_all() == 1
    assert alerted_at_50() == {active.pk}
    assert evaluate(retired.pk) == 0
    assert evaluate(active.pk) == 0  # raised already
    assert Alert.objects.filter(budget=retired).count() == 0
