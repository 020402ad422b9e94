"""Budget change requests: an owner asks, a finance member other than the requester decides, all kept in history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.budgets.models import BudgetChangeRequest, BudgetOverride, RequestState
from apps.budgets.services import budget_create
from apps.common.models import AuditEntry
from apps.tenancy.models import Role
from tests.budgets.support import spend


@pytest.fixture
def budgets(org, tree):
    product, search, ops = tree
    return {
        "search": budget_create(organization=org, cost_center=search, amount=Decimal("100")),
        "ops": budget_create(organization=org, cost_center=ops, amount=Decimal("100")),
        "organization": budget_create(organization=org, amount=Decimal("1000")),
    }


@pytest.fixture
def owner(member, tree):
    """The owner of cc_search."""
    return member(Role.OWNER, cost_centers=[tree[1]])


@pytest.fixture
def finance(member):
    return member(Role.FINANCE)


def ask(who, budget, **body):
    body = {"amount": "150.00", "reason": "Launch of semantic search", **body}
    return who.client.post(f"/api/v1/budgets/{budget.pk}/change-requests", body, format="json")


def act(who, request_id, action, note=None):
    body = {} if note is None else {"note": note}
    return who.client.post(f"/api/v1/budget-change-requests/{request_id}/{action}", body, format="json")


def history(request_id):
    change = BudgetChangeRequest.objects.get(pk=request_id)
    return [(t.from_state, t.to_state, t.actor_id, t.note) for t in change.transitions.all()]


class TestAsk:
    def test_an_owner_asks_for_a_change_of_their_cost_centers_budget(self, org, budgets, owner):
        response = ask(owner, budgets["search"])
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["budget"] == budgets["search"].pk
        assert (body["amount"], body["until"], body["state"]) == ("150.0000", None, "pending")
        assert body["requested_by"] == owner.user.username and body["decided_by"] is None
        assert [(t["from_state"], t["to_state"], t["actor_label"], t["note"]) for t in body["transitions"]] == [
            ("", "pending", owner.user.username, "Launch of semantic search")
        ]
        entry = AuditEntry.objects.for_org(org).get(action="budget_request.pending")
        assert entry.object_id == str(body["id"]) and entry.actor == owner.user.username

    def test_an_owner_of_the_parent_asks_for_a_child_budget(self, budgets, member, tree):
        parent_owner = member(Role.OWNER, cost_centers=[tree[0]])
        assert ask(parent_owner, budgets["search"]).status_code == 201

    @pytest.mark.parametrize("budget", ["ops", "organization"])
    def test_an_owner_cannot_ask_for_another_budget_which_answers_404(self, org, budgets, owner, budget):
        response = ask(owner, budgets[budget])
        assert response.status_code == 404
        assert BudgetChangeRequest.objects.for_org(org).count() == 0

    def test_viewers_and_api_keys_cannot_ask(self, org, budgets, member, api):
        assert ask(member(Role.VIEWER), budgets["search"]).status_code == 403
        response = api.post(
            f"/api/v1/budgets/{budgets['search'].pk}/change-requests", {"amount": "1", "reason": "x"}, format="json"
        )
        assert response.status_code == 403
        assert BudgetChangeRequest.objects.for_org(org).count() == 0

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"amount": "-5"}, "amount"),
            ({"amount": "lots"}, "amount"),
            ({"reason": ""}, "reason"),
            ({"reason": "   "}, "reason"),
            ({"until": "tomorrow"}, "until"),
            ({"until": "2020-01-01"}, "until"),
        ],
    )
    def test_bad_input_names_the_field_and_stores_nothing(self, org, budgets, owner, body, field):
        response = ask(owner, budgets["search"], **body)
        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert BudgetChangeRequest.objects.for_org(org).count() == 0
        assert not AuditEntry.objects.for_org(org).filter(action__startswith="budget_request").exists()

    def test_unknown_budget_answers_404(self, budgets, owner):
        response = owner.client.post("/api/v1/budgets/999999/change-requests", {"amount": "1", "reason": "x"})
        assert response.status_code == 404


class TestDecide:
    def test_finance_approves_a_permanent_change(self, org, budgets, owner, finance):
        request_id = ask(owner, budgets["search"]).json()["id"]
        response = act(finance, request_id, "approve", note="Fine for Q2")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["state"] == "approved" and body["decided_by"] == finance.user.username
        assert body["decision_note"] == "Fine for Q2" and body["decided_at"] is not None
        budget = budgets["search"]
        budget.refresh_from_db()
        assert budget.amount == Decimal("150.0000")
        assert not BudgetOverride.objects.filter(budget=budget).exists()
        assert history(request_id) == [
            ("", "pending", owner.user.pk, "Launch of semantic search"),
            ("pending", "approved", finance.user.pk, "Fine for Q2"),
        ]
        assert [t["actor_label"] for t in body["transitions"]] == [owner.user.username, finance.user.username]
        changed = AuditEntry.objects.for_org(org).get(action="budget.amount_changed")
        assert changed.changes == {"from": "100.0000", "to": "150.0000", "request": request_id}
        assert changed.actor == finance.user.username
        assert (
            AuditEntry.objects.for_org(org).filter(action="budget_request.approved", object_id=str(request_id)).exists()
        )

    def test_finance_approves_a_change_until_a_date_as_an_override(self, org, budgets, owner, finance, api):
        today = timezone.now().date()  # the organization is in UTC
        until = today + timedelta(days=5)
        request_id = ask(owner, budgets["search"], amount="40", until=until.isoformat()).json()["id"]
        spend(org, "50.00", cost_center="cc_search")
        assert act(finance, request_id, "approve").status_code == 200

        budget = budgets["search"]
        budget.refresh_from_db()
        assert budget.amount == Decimal("100")
        override = BudgetOverride.objects.get(budget=budget)
        assert (override.amount, override.starts_on, override.until) == (Decimal("40"), today, until)
        assert override.request_id == request_id
        status = api.get(f"/api/v1/budgets/{budget.pk}").json()["status"]
        assert (status["limit"], status["spent"], status["remaining"]) == ("40.0000", "50.0000", "-10.0000")
        assert status["exhausted"] is True

    def test_finance_rejects(self, budgets, owner, finance):
        request_id = ask(owner, budgets["search"]).json()["id"]
        response = act(finance, request_id, "reject", note="Not this quarter")
        assert response.status_code == 200
        assert response.json()["state"] == "rejected"
        budgets["search"].refresh_from_db()
        assert budgets["search"].amount == Decimal("100")
        assert history(request_id)[-1] == ("pending", "rejected", finance.user.pk, "Not this quarter")

    def test_the_requester_cannot_decide_their_own_request(self, org, budgets, finance, member):
        request_id = ask(finance, budgets["ops"]).json()["id"]
        for action in ("approve", "reject"):
            assert act(finance, request_id, action).status_code == 403
        assert BudgetChangeRequest.objects.get(pk=request_id).state == RequestState.PENDING
        assert act(member(Role.ADMIN), request_id, "approve").status_code == 200
        budgets["ops"].refresh_from_db()
        assert budgets["ops"].amount == Decimal("150")

    def test_owners_viewers_and_api_keys_cannot_decide(self, budgets, owner, member, tree, api):
        request_id = ask(owner, budgets["search"]).json()["id"]
        parent_owner = member(Role.OWNER, cost_centers=[tree[0]])
        assert act(parent_owner, request_id, "approve").status_code == 403
        assert act(member(Role.VIEWER), request_id, "approve").status_code == 403
        assert api.post(f"/api/v1/budget-change-requests/{request_id}/approve").status_code == 403
        other_owner = member(Role.OWNER, cost_centers=[tree[2]])
        assert act(other_owner, request_id, "approve").status_code == 404
        assert BudgetChangeRequest.objects.get(pk=request_id).state == RequestState.PENDING
        assert history(request_id) == [("", "pending", owner.user.pk, "Launch of semantic search")]

    def test_a_decided_request_cannot_be_decided_again(self, budgets, owner, finance, member):
        request_id = ask(owner, budgets["search"]).json()["id"]
        assert act(finance, request_id, "approve").status_code == 200
        for who, action in ((finance, "reject"), (member(Role.FINANCE), "approve"), (owner, "cancel")):
            response = act(who, request_id, action)
            assert response.status_code == 400
            assert response.json() == {"state": ["This request is approved already."]}
        assert len(history(request_id)) == 2


class TestCancel:
    def test_the_requester_cancels(self, org, budgets, owner, finance):
        request_id = ask(owner, budgets["search"]).json()["id"]
        assert act(finance, request_id, "cancel").status_code == 403
        response = act(owner, request_id, "cancel", note="Launch postponed")
        assert response.status_code == 200
        assert response.json()["state"] == "cancelled"
        assert response.json()["transitions"][-1]["note"] == "Launch postponed"
        assert act(finance, request_id, "approve").json() == {"state": ["This request is cancelled already."]}
        assert history(request_id) == [
            ("", "pending", owner.user.pk, "Launch of semantic search"),
            ("pending", "cancelled", owner.user.pk, "Launch postponed"),
        ]
        assert (
            AuditEntry.objects.for_org(org)
            .filter(action="budget_request.cancelled", object_id=str(request_id))
            .exists()
        )


class TestList:
    def test_finance_sees_every_request_and_an_owner_theirs(self, budgets, owner, finance, member, tree):
        mine = ask(owner, budgets["search"]).json()["id"]
        ops_owner = member(Role.OWNER, cost_centers=[tree[2]])
        theirs = ask(ops_owner, budgets["ops"]).json()["id"]
        act(finance, mine, "approve", note="ok")

        everything = finance.client.get("/api/v1/budget-change-requests").json()["results"]
        assert sorted(r["id"] for r in everything) == sorted([mine, theirs])
        assert [r["id"] for r in owner.client.get("/api/v1/budget-change-requests").json()["results"]] == [mine]
        per_budget = finance.client.get(f"/api/v1/budgets/{budgets['search'].pk}/change-requests").json()["results"]
        assert [r["id"] for r in per_budget] == [mine]
        (row,) = per_budget
        assert [(t["from_state"], t["to_state"], t["actor_label"], t["note"]) for t in row["transitions"]] == [
            ("", "pending", owner.user.username, "Launch of semantic search"),
            ("pending", "approved", finance.user.username, "ok"),
        ]
        assert owner.client.get(f"/api/v1/budgets/{budgets['ops'].pk}/change-requests").status_code == 404
        response = finance.client.post("/api/v1/budget-change-requests", {"amount": "1", "reason": "x"})
        assert response.status_code == 405

    def test_api_keys_read_the_requests(self, budgets, owner, api):
        mine = ask(owner, budgets["search"]).json()["id"]
        assert [r["id"] for r in api.get("/api/v1/budget-change-requests").json()["results"]] == [mine]
