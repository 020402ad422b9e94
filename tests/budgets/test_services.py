"""Budget evaluation: alerts once per budget, threshold, kind and period; the email and the webhooks they send."""

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from apps.budgets.models import Alert, Budget
from apps.budgets.services import budget_create, budget_evaluate
from apps.integrations.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from apps.integrations.webhooks import verify
from apps.tenancy.models import Role
from tests.budgets.support import spend
from tests.factories import CostCenterFactory, ModelPriceFactory, OrganizationFactory, PriceListFactory


def at(day: int, month: int = 4, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def alerts_of(budget):
    return sorted(
        (a.period_start.isoformat(), a.kind, a.threshold, a.spent, a.limit, a.forecast)
        for a in Alert.objects.filter(budget=budget)
    )


@pytest.fixture
def product_budget(org, tree, member, webhook_receiver):
    """100.00 USD a month for cc_product (and cc_search below it); April 2026 has 30 days."""
    product, _, ops = tree
    member(Role.OWNER, cost_centers=[product], email="owner@example.com")
    member(Role.OWNER, cost_centers=[ops], email="ops-owner@example.com")
    member(Role.FINANCE, email="finance@example.com")
    return budget_create(
        organization=org,
        cost_center=product,
        amount=Decimal("100"),
        recipients=["cfo@example.com"],
        webhook_url=webhook_receiver.url("/budget"),
        webhook_secret="budget-secret",
    )


class TestThresholds:
    def test_forecast_alerts_before_actual_and_each_threshold_alerts_once_per_period(
        self, org, product_budget, mailoutbox, django_capture_on_commit_callbacks
    ):
        spend(org, "25.00", cost_center="cc_search", at="2026-04-03T10:00:00Z")
        spend(org, "15.00", cost_center="cc_product", at="2026-04-08T09:00:00Z")

        # 11 April 00:00: 10 days elapsed, 40.00 spent (40 %): forecast 40.00 / 10 x 30 = 120.00 >= 100 %
        with django_capture_on_commit_callbacks(execute=True):
            raised = budget_evaluate(budget=product_budget, now=at(11))
        assert [(a.kind, a.threshold) for a in raised] == [("forecast", 100)]
        assert alerts_of(product_budget) == [
            ("2026-04-01", "forecast", 100, Decimal("40.0000"), Decimal("100.0000"), Decimal("120.0000")),
        ]
        assert len(mailoutbox) == 1

        # evaluating again raises nothing and sends nothing
        with django_capture_on_commit_callbacks(execute=True):
            assert budget_evaluate(budget=product_budget, now=at(11)) == []
        assert len(mailoutbox) == 1

        # 16 April: 85.00 spent crosses 50 % and 80 %, not 100 %; forecast 85.00 / 15 x 30 = 170.00 alerted already
        spend(org, "45.00", cost_center="cc_search", at="2026-04-15T10:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            raised = budget_evaluate(budget=product_budget, now=at(16))
        assert sorted((a.kind, a.threshold) for a in raised) == [("actual", 50), ("actual", 80)]
        assert len(mailoutbox) == 3

        # 21 April: exactly 100.00 spent reaches 100 %; forecast 100.00 / 20 x 30 = 150.00
        spend(org, "15.00", cost_center="cc_product", at="2026-04-20T10:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            raised = budget_evaluate(budget=product_budget, now=at(21))
            assert budget_evaluate(budget=product_budget, now=at(22)) == []
        assert [(a.kind, a.threshold) for a in raised] == [("actual", 100)]
        assert len(mailoutbox) == 4

        # a new period alerts again: 2 days of May, 60.00 spent; forecast 60.00 / 2 x 31 = 930.00
        spend(org, "60.00", cost_center="cc_search", at="2026-05-02T10:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            raised = budget_evaluate(budget=product_budget, now=at(3, month=5))
        assert sorted((a.kind, a.threshold) for a in raised) == [("actual", 50), ("forecast", 100)]
        assert alerts_of(product_budget) == [
            ("2026-04-01", "actual", 50, Decimal("85.0000"), Decimal("100.0000"), Decimal("170.0000")),
            ("2026-04-01", "actual", 80, Decimal("85.0000"), Decimal("100.0000"), Decimal("170.0000")),
            ("2026-04-01", "actual", 100, Decimal("100.0000"), Decimal("100.0000"), Decimal("150.0000")),
            ("2026-04-01", "forecast", 100, Decimal("40.0000"), Decimal("100.0000"), Decimal("120.0000")),
            ("2026-05-01", "actual", 50, Decimal("60.0000"), Decimal("100.0000"), Decimal("930.0000")),
            ("2026-05-01", "forecast", 100, Decimal("60.0000"), Decimal("100.0000"), Decimal("930.0000")),
        ]
        assert len(mailoutbox) == 6
        assert WebhookDelivery.objects.filter(url__endswith="/budget").count() == 6

    def test_custom_thresholds_and_no_forecast(self, org, tree):
        budget = budget_create(
            organization=org,
            cost_center=tree[2],
            amount=Decimal("200"),
            thresholds=[90, 25, 25],
            forecast_threshold=None,
        )
        assert budget.thresholds == [25, 90]
        spend(org, "60.00", cost_center="cc_ops", at="2026-04-01T10:00:00Z")
        # 60.00 is 30 % (>= 25 %, < 90 %); its forecast 60.00 / 1 x 30 = 1,800.00 alerts nothing without a threshold
        raised = budget_evaluate(budget=budget, now=at(1, hour=12))
        assert [(a.kind, a.threshold) for a in raised] == [("actual", 25)]

    def test_a_zero_budget_raises_nothing(self, org, tree):
        budget = budget_create(organization=org, cost_center=tree[2], amount=Decimal("0"))
        spend(org, "1.00", cost_center="cc_ops", at="2026-04-01T10:00:00Z")
        assert budget_evaluate(budget=budget, now=at(2)) == []


class TestAlertEmail:
    def test_goes_to_recipients_and_owners_and_explains_the_forecast_with_its_figures(
        self, org, product_budget, mailoutbox, django_capture_on_commit_callbacks
    ):
        spend(org, "25.00", cost_center="cc_search", at="2026-04-03T10:00:00Z")
        spend(org, "15.00", cost_center="cc_product", at="2026-04-08T09:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            budget_evaluate(budget=product_budget, now=at(11))
        (email,) = mailoutbox
        # the budget's recipients and the owners of cc_product; not cc_ops' owner, not finance
        assert sorted(email.to) == ["cfo@example.com", "owner@example.com"]
        assert email.subject == "[costportal] cc_product: forecast reached 100% of its month budget"
        formula = "forecast = spent so far / days elapsed x days in period = 40.00 / 10.00 x 30 = 120.00"
        assert formula in email.body
        assert "Budget: 100.00 USD for month 2026-04-01 to 2026-04-30 (Soft: alert only)." in email.body
        assert "Spent so far: 40.00 USD (40.0%), 60.00 USD remaining." in email.body
        assert "at the current run rate the period will end at 120.00 USD, 100% or more of the budget" in email.body
        assert "organization's time zone (UTC), at least one day" in email.body
        html, mimetype = email.alternatives[0]
        assert mimetype == "text/html"
        assert formula in html and "<strong>40.00 USD</strong> (40.0%)" in html

    def test_forecast_on_the_first_day_counts_one_day_elapsed(
        self, org, product_budget, mailoutbox, django_capture_on_commit_callbacks
    ):
        spend(org, "5.00", cost_center="cc_product", at="2026-04-01T06:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            budget_evaluate(budget=product_budget, now=at(1, hour=12))
        # 0.5 days elapsed count as 1: 5.00 / 1.00 x 30 = 150.00
        (email,) = mailoutbox
        assert "= 5.00 / 1.00 x 30 = 150.00" in email.body

    def test_an_actual_alert_of_an_organization_budget_goes_to_finance_and_admins(
        self, priced_model, member, mailoutbox, django_capture_on_commit_callbacks
    ):
        firm = OrganizationFactory(slug="smith-jones", name="Smith & Jones")
        member(Role.FINANCE, organization=firm, email="finance@sj.example")
        member(Role.ADMIN, organization=firm, email="admin@sj.example")
        member(Role.VIEWER, organization=firm, email="viewer@sj.example")
        budget = budget_create(organization=firm, amount=Decimal("10"), forecast_threshold=None)
        spend(firm, "6.00", at="2026-04-05T10:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            budget_evaluate(budget=budget, now=at(6))
        (email,) = mailoutbox
        assert email.to == ["admin@sj.example", "finance@sj.example"]
        assert email.subject == "[costportal] Smith & Jones: spend reached 50% of its month budget"
        # a plain-text email is not HTML-escaped
        assert email.body.startswith("Smith & Jones: spend reached 50% of its month budget\n")
        assert "This is an actual-spend alert: spending has reached 50% of the budget." in email.body
        assert "Spent so far: 6.00 USD (60.0%), 4.00 USD remaining." in email.body
        # 5 days elapsed: 6.00 / 5 x 30 = 36.00
        assert "= 6.00 / 5.00 x 30 = 36.00" in email.body
        assert "Smith &amp; Jones" in email.alternatives[0][0]


class TestAlertWebhooks:
    def test_the_budget_webhook_and_subscribed_endpoints_get_a_signed_slack_compatible_delivery(
        self, org, other_org, product_budget, webhook_receiver, django_capture_on_commit_callbacks
    ):
        url = webhook_receiver.url
        WebhookEndpoint.objects.create(
            organization=org, url=url("/alerts"), secret="ep-secret", events=["budget.alert"]
        )
        WebhookEndpoint.objects.create(organization=org, url=url("/invoices"), secret="x", events=["invoice.issued"])
        WebhookEndpoint.objects.create(
            organization=org, url=url("/inactive"), secret="x", events=["budget.alert"], active=False
        )
        WebhookEndpoint.objects.create(organization=other_org, url=url("/other"), secret="x", events=["budget.alert"])
        spend(org, "55.00", cost_center="cc_search", at="2026-04-10T10:00:00Z")

        # 21 April: 55.00 spent over 20 days: 50 % reached, forecast 55.00 / 20 x 30 = 82.50 below 100 %
        with django_capture_on_commit_callbacks(execute=True):
            (alert,) = budget_evaluate(budget=product_budget, now=at(21))

        assert sorted(r.path for r in webhook_receiver.requests) == ["/alerts", "/budget"]
        (to_budget,) = webhook_receiver.to("/budget")
        (to_endpoint,) = webhook_receiver.to("/alerts")
        assert verify(secret="budget-secret", body=to_budget.body, header=to_budget.signature)
        assert verify(secret="ep-secret", body=to_endpoint.body, header=to_endpoint.signature)
        assert not verify(secret="ep-secret", body=to_budget.body, header=to_budget.signature)
        assert to_budget.headers["X-Costportal-Event"] == "budget.alert"
        assert to_budget.headers["Content-Type"] == "application/json"
        payload = json.loads(to_budget.body)
        assert payload == json.loads(to_endpoint.body)
        assert payload["text"] == (
            "cc_product: spend reached 50% of its month budget: 55.00 of 100.00 USD spent; "
            "forecast = spent so far / days elapsed x days in period = 55.00 / 20.00 x 30 = 82.50."
        )
        assert payload["event"] == "budget.alert"
        assert payload["alert"] == {
            "budget_id": product_budget.pk,
            "cost_center": "cc_product",
            "kind": "actual",
            "threshold": 50,
            "period_start": "2026-04-01",
            "spent": "55.0000",
            "limit": "100.0000",
            "forecast": "82.5000",
            "currency": "USD",
        }
        deliveries = WebhookDelivery.objects.for_org(org)
        assert sorted((d.url.rsplit("/", 1)[1], d.state, d.attempts, d.last_status) for d in deliveries) == [
            ("alerts", DeliveryState.DELIVERED, 1, 200),
            ("budget", DeliveryState.DELIVERED, 1, 200),
        ]
        assert WebhookDelivery.objects.for_org(other_org).count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_raise_each_alert_once(mailoutbox, webhook_receiver):
    org = OrganizationFactory(slug="race")
    ModelPriceFactory(price_list=PriceListFactory(), model="test-model", input_price="2.00", output_price="8.00")
    product = CostCenterFactory(organization=org, code="cc_product")
    CostCenterFactory(organization=org, code="cc_search", parent=product)
    WebhookEndpoint.objects.create(
        organization=org, url=webhook_receiver.url("/alerts"), secret="s", events=["budget.alert"]
    )
    budget = budget_create(
        organization=org,
        cost_center=product,
        amount=Decimal("100"),
        recipients=["cfo@example.com"],
        webhook_url=webhook_receiver.url("/budget"),
        webhook_secret="budget-secret",
    )
    spend(org, "90.00", cost_center="cc_search", at="2026-04-08T10:00:00Z")
    # 11 April: 90.00 crosses 50 % and 80 %; forecast 90.00 / 10 x 30 = 270.00 crosses 100 %: 3 alerts

    threads_count = 8
    barrier = threading.Barrier(threads_count)
    raised, errors = [], []

    def evaluate():
        try:
            barrier.wait(timeout=10)
            raised.extend(budget_evaluate(budget=Budget.objects.get(pk=budget.pk), now=at(11)))
        except Exception as exc:  # reported below: an exception in a thread would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted((a.kind, a.threshold) for a in raised) == [("actual", 50), ("actual", 80), ("forecast", 100)]
    assert Alert.objects.filter(budget=budget).count() == 3
    assert len(mailoutbox) == 3
    assert WebhookDelivery.objects.filter(organization=org).count() == 6
    assert len(webhook_receiver.to("/budget")) == 3
    assert len(webhook_receiver.to("/alerts")) == 3
