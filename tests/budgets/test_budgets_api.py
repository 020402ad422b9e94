"""GET/POST /api/v1/budgets, GET /api/v1/budgets/check and GET /api/v1/alerts (PRODUCT.md section 7)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.budgets.models import Budget
from apps.budgets.services import budget_create, budget_evaluate
from apps.common.models import AuditEntry
from apps.tenancy.models import Role
from tests.budgets.support import spend
from tests.conftest import client_with_key


def budget_row(body, budget_id):
    (row,) = [b for b in body["results"] if b["id"] == budget_id]
    return row


class TestList:
    def test_lists_budgets_with_their_status_in_the_current_period(self, api, org, tree):
        product, search, _ = tree
        budget = budget_create(organization=org, cost_center=product, amount=Decimal("100"))
        whole = budget_create(organization=org, amount=Decimal("1000"), period_kind="quarter")
        retired = budget_create(organization=org, cost_center=search, amount=Decimal("5"))
        Budget.objects.filter(pk=retired.pk).update(active=False)
        spend(org, "30.00", cost_center="cc_search")
        spend(org, "4.50", cost_center="cc_ops")

        response = api.get("/api/v1/budgets")
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) == 3
        row = budget_row(body, budget.pk)
        assert row["cost_center"] == "cc_product" and row["amount"] == "100.0000"
        assert row["thresholds"] == [50, 80, 100] and row["forecast_threshold"] == 100
        assert "webhook_secret" not in row
        status = row["status"]
        assert status["scope"] == "cc_product" and status["currency"] == "USD"
        assert (status["spent"], status["limit"], status["remaining"]) == ("30.0000", "100.0000", "70.0000")
        assert status["exhausted"] is False
        whole_status = budget_row(body, whole.pk)["status"]
        assert whole_status["scope"] == "organization"
        assert (whole_status["spent"], whole_status["remaining"]) == ("34.5000", "965.5000")  # 30.00 + 4.50
        assert budget_row(body, retired.pk)["status"] is None

        detail = api.get(f"/api/v1/budgets/{budget.pk}")
        assert detail.status_code == 200
        assert detail.json()["status"]["spent"] == "30.0000"

    def test_an_owner_sees_only_the_budgets_of_their_cost_centers(self, org, tree, member):
        product, search, ops = tree
        mine = budget_create(organization=org, cost_center=search, amount=Decimal("10"))
        theirs = budget_create(organization=org, cost_center=ops, amount=Decimal("10"))
        budget_create(organization=org, amount=Decimal("10"))
        owner = member(Role.OWNER, cost_centers=[search])
        body = owner.client.get("/api/v1/budgets").json()
        assert [b["id"] for b in body["results"]] == [mine.pk]
        assert owner.client.get(f"/api/v1/budgets/{theirs.pk}").status_code == 404


class TestCreate:
    def test_finance_creates_a_budget(self, org, tree, member):
        finance = member(Role.FINANCE)
        response = finance.client.post(
            "/api/v1/budgets",
            {
                "cost_center": "cc_product",
                "period_kind": "quarter",
                "amount": "2500.50",
                "thresholds": [80, 50],
                "forecast_threshold": 120,
                "enforcement": "hard",
                "recipients": ["cfo@example.com"],
                "webhook_url": "https://hooks.example.com/services/T0/B0/x",
                "webhook_secret": "whsec",
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["cost_center"] == "cc_product" and body["period_kind"] == "quarter"
        assert body["amount"] == "2500.5000" and body["thresholds"] == [50, 80]
        assert body["forecast_threshold"] == 120 and body["enforcement"] == "hard"
        assert body["recipients"] == ["cfo@example.com"] and "webhook_secret" not in body
        budget = Budget.objects.for_org(org).get(pk=body["id"])
        assert budget.webhook_secret == "whsec" and budget.amount == Decimal("2500.5")
        entry = AuditEntry.objects.for_org(org).get(action="budget.created")
        assert entry.object_id == str(budget.pk) and entry.actor == finance.user.username

    def test_an_admin_creates_an_organization_budget_with_the_defaults(self, org, tree, member):
        response = member(Role.ADMIN).client.post("/api/v1/budgets", {"amount": "10"}, format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["cost_center"] is None and body["period_kind"] == "month" and body["enforcement"] == "soft"
        assert body["thresholds"] == [50, 80, 100] and body["forecast_threshold"] == 100

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"cost_center": "cc_nowhere", "amount": "10"}, "cost_center"),
            ({"cost_center": "cc_ops", "amount": "-1"}, "amount"),
            ({"cost_center": "cc_ops", "amount": "ten"}, "amount"),
            ({"cost_center": "cc_ops"}, "amount"),
            ({"cost_center": "cc_ops", "amount": "10", "period_kind": "week"}, "period_kind"),
            ({"cost_center": "cc_ops", "amount": "10", "enforcement": "strict"}, "enforcement"),
            ({"cost_center": "cc_ops", "amount": "10", "thresholds": [0, 50]}, "thresholds"),
            ({"cost_center": "cc_ops", "amount": "10", "thresholds": [1001]}, "thresholds"),
            ({"cost_center": "cc_ops", "amount": "10", "thresholds": ["half"]}, "thresholds"),
            ({"cost_center": "cc_ops", "amount": "10", "thresholds": 50}, "thresholds"),
            ({"cost_center": "cc_ops", "amount": "10", "forecast_threshold": 0}, "forecast_threshold"),
            ({"cost_center": "cc_ops", "amount": "10", "recipients": ["not-an-email"]}, "recipients"),
            ({"cost_center": "cc_ops", "amount": "10", "webhook_url": "https://hooks.example.com/x"}, "webhook_secret"),
            (
                {"cost_center": "cc_ops", "amount": "10", "webhook_url": "not a url", "webhook_secret": "s"},
                "webhook_url",
            ),
        ],
    )
    def test_bad_input_names_the_field_and_stores_nothing(self, org, tree, member, payload, field):
        response = member(Role.FINANCE).client.post("/api/v1/budgets", payload, format="json")
        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert Budget.objects.for_org(org).count() == 0
        assert not AuditEntry.objects.for_org(org).filter(action="budget.created").exists()

    def test_unknown_cost_center_says_which(self, org, tree, member):
        response = member(Role.FINANCE).client.post(
            "/api/v1/budgets", {"cost_center": "cc_nowhere", "amount": "10"}, format="json"
        )
        assert response.json() == {"cost_center": ["Unknown cost center 'cc_nowhere'."]}

    @pytest.mark.parametrize("cost_center", ["cc_product", None])
    def test_one_active_budget_per_scope_and_period(self, org, tree, member, cost_center):
        client = member(Role.FINANCE).client
        first = client.post("/api/v1/budgets", {"cost_center": cost_center, "amount": "10"}, format="json")
        assert first.status_code == 201
        again = client.post("/api/v1/budgets", {"cost_center": cost_center, "amount": "20"}, format="json")
        assert again.status_code == 400
        assert again.json() == {"cost_center": ["An active budget for this scope and period already exists."]}
        assert Budget.objects.for_org(org).count() == 1
        yearly = {"cost_center": cost_center, "amount": "120", "period_kind": "year"}
        assert client.post("/api/v1/budgets", yearly, format="json").status_code == 201
        Budget.objects.for_org(org).update(active=False)
        assert (
            client.post("/api/v1/budgets", {"cost_center": cost_center, "amount": "30"}, format="json").status_code
            == 201
        )

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.OWNER])
    def test_viewers_and_owners_cannot_create(self, org, tree, member, role):
        client = member(role, cost_centers=[tree[0]] if role == Role.OWNER else ()).client
        response = client.post("/api/v1/budgets", {"cost_center": "cc_product", "amount": "10"}, format="json")
        assert response.status_code == 403
        assert Budget.objects.for_org(org).count() == 0

    def test_api_keys_read_but_do_not_write(self, org, tree, api, read_key):
        budget_create(organization=org, amount=Decimal("10"))
        for client in (api, client_with_key(read_key)):
            assert client.get("/api/v1/budgets").status_code == 200
            response = client.post("/api/v1/budgets", {"cost_center": "cc_ops", "amount": "10"}, format="json")
            assert response.status_code == 403
        assert Budget.objects.for_org(org).count() == 1


class TestCheck:
    @pytest.fixture
    def check(self, org, tree, read_key):
        client = client_with_key(read_key)

        def get(code):
            response = client.get("/api/v1/budgets/check", {"cost_center": code})
            assert response.status_code == 200, response.json()
            return response.json()

        return get

    def test_a_soft_budget_allows_calls_even_when_exhausted(self, org, check):
        budget_create(organization=org, cost_center=org.cost_centers.get(code="cc_ops"), amount=Decimal("10"))
        spend(org, "12.00", cost_center="cc_ops")
        body = check("cc_ops")
        assert body["allowed"] is True
        assert (body["spent"], body["limit"], body["remaining"]) == ("12.0000", "10.0000", "-2.0000")
        assert body["cost_center"] == "cc_ops" and body["currency"] == "USD"
        assert [b["exhausted"] for b in body["budgets"]] == [True]

    def test_an_exhausted_hard_budget_refuses_calls(self, org, check):
        search = org.cost_centers.get(code="cc_search")
        budget_create(organization=org, cost_center=search, amount=Decimal("20"), enforcement="hard")
        spend(org, "19.99", cost_center="cc_search")
        body = check("cc_search")
        assert body["allowed"] is True
        assert (body["spent"], body["limit"], body["remaining"]) == ("19.9900", "20.0000", "0.0100")
        spend(org, "0.01", cost_center="cc_search")
        body = check("cc_search")
        assert body["allowed"] is False
        assert (body["spent"], body["limit"], body["remaining"]) == ("20.0000", "20.0000", "0.0000")

    def test_a_hard_budget_of_the_parent_refuses_calls_of_its_children(self, org, check):
        product = org.cost_centers.get(code="cc_product")
        budget_create(organization=org, cost_center=product, amount=Decimal("50"), enforcement="hard")
        spend(org, "30.00", cost_center="cc_search")
        spend(org, "20.00", cost_center="cc_product")
        body = check("cc_search")
        assert body["allowed"] is False
        assert (body["spent"], body["limit"], body["remaining"]) == ("50.0000", "50.0000", "0.0000")
        assert check("cc_ops")["allowed"] is True

    def test_a_hard_organization_budget_refuses_every_cost_center(self, org, check):
        budget_create(organization=org, amount=Decimal("25"), enforcement="hard")
        spend(org, "25.00", cost_center="cc_ops")
        body = check("cc_search")
        assert body["allowed"] is False
        assert (body["spent"], body["limit"], body["remaining"]) == ("25.0000", "25.0000", "0.0000")
        assert [b["scope"] for b in body["budgets"]] == ["organization"]

    def test_the_hard_budget_binds_before_an_exhausted_soft_one(self, org, check):
        ops = org.cost_centers.get(code="cc_ops")
        budget_create(organization=org, cost_center=ops, amount=Decimal("10"))
        budget_create(organization=org, amount=Decimal("100"), enforcement="hard")
        spend(org, "15.00", cost_center="cc_ops")
        body = check("cc_ops")
        assert body["allowed"] is True
        assert (body["spent"], body["limit"], body["remaining"]) == ("15.0000", "100.0000", "85.0000")
        assert len(body["budgets"]) == 2

    def test_without_budgets_calls_are_allowed(self, check):
        body = check("cc_ops")
        assert body["allowed"] is True
        assert (body["spent"], body["limit"], body["remaining"], body["budgets"]) == (None, None, None, [])

    def test_missing_or_unknown_cost_center(self, org, tree, api, member):
        response = api.get("/api/v1/budgets/check")
        assert response.status_code == 400
        assert response.json() == {"cost_center": ["This parameter is required."]}
        response = api.get("/api/v1/budgets/check", {"cost_center": "cc_nowhere"})
        assert response.status_code == 404
        owner = member(Role.OWNER, cost_centers=[tree[1]])
        assert owner.client.get("/api/v1/budgets/check", {"cost_center": "cc_ops"}).status_code == 404
        assert owner.client.get("/api/v1/budgets/check", {"cost_center": "cc_search"}).status_code == 200

    def test_an_ingest_only_key_cannot_check(self, org, tree, ingest_key):
        response = client_with_key(ingest_key).get("/api/v1/budgets/check", {"cost_center": "cc_ops"})
        assert response.status_code == 403


class TestAlerts:
    def test_lists_the_organizations_alerts_and_an_owner_only_theirs(self, org, tree, api, member):
        product, _, ops = tree
        product_budget = budget_create(organization=org, cost_center=product, amount=Decimal("100"))
        ops_budget = budget_create(organization=org, cost_center=ops, amount=Decimal("10"), forecast_threshold=None)
        spend(org, "60.00", cost_center="cc_search", at="2026-04-05T10:00:00Z")
        spend(org, "9.00", cost_center="cc_ops", at="2026-04-05T10:00:00Z")
        moment = datetime(2026, 4, 21, tzinfo=UTC)  # 20 days: 60.00 / 20 x 30 = 90.00, below the forecast threshold
        budget_evaluate(budget=product_budget, now=moment)
        budget_evaluate(budget=ops_budget, now=moment)

        response = api.get("/api/v1/alerts")
        assert response.status_code == 200
        rows = sorted(
            (a["cost_center"], a["kind"], a["threshold"], a["spent"], a["limit"]) for a in response.json()["results"]
        )
        assert rows == [
            ("cc_ops", "actual", 50, "9.0000", "10.0000"),
            ("cc_ops", "actual", 80, "9.0000", "10.0000"),
            ("cc_product", "actual", 50, "60.0000", "100.0000"),
        ]
        owner = member(Role.OWNER, cost_centers=[product])
        mine = owner.client.get("/api/v1/alerts").json()["results"]
        assert [(a["budget"], a["period_start"], a["forecast"]) for a in mine] == [
            (product_budget.pk, "2026-04-01", "90.0000")
        ]
