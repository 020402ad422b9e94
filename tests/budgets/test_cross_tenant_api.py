"""Nothing of one organization's budgets, alerts or change requests is visible or changeable from another."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.budgets.models import Budget, BudgetChangeRequest, RequestState
from apps.budgets.services import budget_create, budget_evaluate, budget_request_change
from apps.tenancy.models import Role
from tests.budgets.support import spend


@pytest.fixture
def acme(org, tree, member):
    """Acme's budget on cc_search with an alert and a pending change request."""
    product, search, _ = tree
    budget = budget_create(organization=org, cost_center=search, amount=Decimal("10"))
    whole = budget_create(organization=org, amount=Decimal("100"))
    spend(org, "6.00", cost_center="cc_search", at="2026-04-05T10:00:00Z")
    assert budget_evaluate(budget=budget, now=datetime(2026, 4, 6, tzinfo=UTC))
    owner = member(Role.OWNER, cost_centers=[search])
    change = budget_request_change(budget=budget, user=owner.user, amount=Decimal("20"), reason="more")
    return {"budget": budget, "whole": whole, "request": change}


@pytest.fixture
def globex_clients(other_org, other_api, member):
    """Globex's API key and its finance member: each may do anything within Globex."""
    budget_create(organization=other_org, amount=Decimal("5"))
    return {"key": other_api, "finance": member(Role.FINANCE, organization=other_org).client}


@pytest.mark.parametrize("who", ["key", "finance"])
def test_another_organization_sees_none_of_the_budgets_alerts_or_requests(acme, globex_clients, who):
    client = globex_clients[who]
    for path in (f"/api/v1/budgets/{acme['budget'].pk}", f"/api/v1/budgets/{acme['whole'].pk}"):
        assert client.get(path).status_code == 404
    assert client.get(f"/api/v1/budgets/{acme['budget'].pk}/change-requests").status_code == 404
    budgets = client.get("/api/v1/budgets").json()["results"]
    assert len(budgets) == 1 and acme["budget"].pk not in [b["id"] for b in budgets]
    assert client.get("/api/v1/alerts").json()["results"] == []
    assert client.get("/api/v1/budget-change-requests").json()["results"] == []
    assert client.get("/api/v1/budgets/check", {"cost_center": "cc_search"}).status_code == 404


def test_another_organizations_finance_cannot_touch_a_request_or_ask_for_a_change(acme, globex_clients):
    client = globex_clients["finance"]
    request_id = acme["request"].pk
    for action in ("approve", "reject", "cancel"):
        assert client.post(f"/api/v1/budget-change-requests/{request_id}/{action}").status_code == 404
    response = client.post(
        f"/api/v1/budgets/{acme['budget'].pk}/change-requests", {"amount": "1", "reason": "x"}, format="json"
    )
    assert response.status_code == 404
    assert BudgetChangeRequest.objects.get(pk=request_id).state == RequestState.PENDING
    assert BudgetChangeRequest.objects.filter(budget=acme["budget"]).count() == 1


def test_another_organization_cannot_budget_a_cost_center_code_it_does_not_have(org, acme, other_org, globex_clients):
    response = globex_clients["finance"].post(
        "/api/v1/budgets", {"cost_center": "cc_search", "amount": "1", "period_kind": "year"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"cost_center": ["Unknown cost center 'cc_search'."]}
    assert Budget.objects.for_org(other_org).count() == 1
    assert Budget.objects.for_org(org).count() == 2


def test_a_member_naming_an_organization_they_do_not_belong_to_gets_404(acme, globex_clients):
    client = globex_clients["finance"]
    assert client.get("/api/v1/budgets", HTTP_X_ORGANIZATION="acme").status_code == 404
    assert client.get(f"/api/v1/budgets/{acme['budget'].pk}", HTTP_X_ORGANIZATION="acme").status_code == 404
