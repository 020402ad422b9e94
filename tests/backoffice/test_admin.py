"""The back office: every admin page is cut to the member's organization and role."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from apps.billing.models import InvoiceState
from apps.billing.services import invoice_close
from apps.budgets.models import BudgetChangeRequest
from apps.budgets.services import budget_create, budget_request_change
from apps.common.services import audit_record
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.reconciliation import provider_usage_import
from apps.pricing.models import ModelPrice
from apps.tenancy.models import ApiKey, Role
from apps.tenancy.selectors import api_key_get_active
from apps.usage.models import UsageRecord
from apps.usage.services import usage_ingest
from tests.factories import (
    CostCenterFactory,
    MembershipFactory,
    ModelPriceFactory,
    PriceListFactory,
    UserFactory,
    make_api_key,
    usage_payload,
)


def login(organization, role=Role.FINANCE, cost_centers=()):
    user = UserFactory()
    membership = MembershipFactory(organization=organization, user=user, role=role)
    if cost_centers:
        membership.cost_centers.set(cost_centers)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def world(org, other_org):
    """One of everything in organization A (acme); B (globex) exists too."""
    cc = CostCenterFactory(organization=org, code="cc_secret")
    price_list = PriceListFactory(organization=org, name="Acme negotiated")
    price = ModelPriceFactory(price_list=price_list, model="test-model")
    usage_ingest(organization=org, api_key=None,
                 raw_records=[usage_payload("secret-call", cost_center="cc_secret", timestamp="2026-03-02T10:00:00Z")])
    invoice = invoice_close(organization=org, period=date(2026, 3, 1))
    budget = budget_create(organization=org, cost_center=cc, amount=Decimal("100"))
    requester = UserFactory()
    MembershipFactory(organization=org, user=requester, role=Role.FINANCE)
    change = budget_request_change(budget=budget, user=requester, amount=Decimal("200"), reason="launch")
    endpoint = WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/a", secret="s",
                                              events=["invoice.issued"])
    delivery = WebhookDelivery.objects.create(organization=org, event="x", url="https://hooks.example.com/a",
                                              secret="s", payload={})
    source = provider_usage_import(organization=org, provider="openai", filename="u.csv",
                                   text="date,model,input_tokens\n2026-03-02,test-model,10\n", actor="t")
    audit = audit_record(organization=org, actor="t", action="test", object_type="X")
    return {
        "tenancy/costcenter": cc, "tenancy/apikey": make_api_key(org)[0], "tenancy/organization": org,
        "tenancy/membership": org.memberships.first(), "pricing/pricelist": price_list, "pricing/modelprice": price,
        "usage/usagerecord": UsageRecord.objects.for_org(org).get(), "billing/invoice": invoice,
        "budgets/budget": budget, "budgets/budgetchangerequest": change, "integrations/webhookendpoint": endpoint,
        "integrations/webhookdelivery": delivery, "integrations/providerusageimport": source,
        "common/auditentry": audit,
    }


MODELS = [
    "tenancy/costcenter", "tenancy/apikey", "tenancy/organization", "tenancy/membership", "pricing/pricelist",
    "pricing/modelprice", "usage/usagerecord", "billing/invoice", "budgets/budget", "budgets/budgetchangerequest",
    "integrations/webhookendpoint", "integrations/webhookdelivery", "integrations/providerusageimport",
    "common/auditentry",
]


@pytest.mark.parametrize("model", MODELS)
def test_an_admin_of_another_organization_finds_nothing(world, other_org, model):
    client, _ = login(other_org, role=Role.ADMIN)
    obj = world[model]
    app, name = model.split("/")
    changelist = client.get(reverse(f"admin:{app}_{name}_changelist"))
    assert changelist.status_code in (200, 403)
    if changelist.status_code == 200:
        assert obj.pk not in [getattr(o, "pk", None) for o in changelist.context["cl"].result_list]
    assert client.get(reverse(f"admin:{app}_{name}_change", args=[obj.pk])).status_code in (403, 404)
    assert client.get(reverse(f"admin:{app}_{name}_history", args=[obj.pk])).status_code in (403, 404)
    assert client.post(reverse(f"admin:{app}_{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code in (403, 404)
    assert type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", ["tenancy/costcenter", "usage/usagerecord", "billing/invoice", "budgets/budget"])
def test_members_see_their_organizations_rows(world, org, model):
    client, _ = login(org, role=Role.FINANCE)
    app, name = model.split("/")
    response = client.get(reverse(f"admin:{app}_{name}_changelist"))
    assert response.status_code == 200
    assert world[model].pk in [o.pk for o in response.context["cl"].result_list]
    assert client.get(reverse(f"admin:{app}_{name}_change", args=[world[model].pk])).status_code == 200


def test_filters_list_only_this_organizations_cost_centers(world, other_org):
    CostCenterFactory(organization=other_org, code="cc_globex_only")
    client, _ = login(other_org, role=Role.ADMIN)
    response = client.get(reverse("admin:usage_usagerecord_changelist"))
    html = response.content.decode()
    assert "cc_secret" not in html and "secret-call" not in html


def test_the_global_price_list_is_read_only_for_members(world, org):
    client, _ = login(org, role=Role.FINANCE)
    default = ModelPrice.objects.filter(organization__isnull=True).first()
    response = client.get(reverse("admin:pricing_modelprice_change", args=[default.pk]))
    assert response.status_code == 200 and b'name="_save"' not in response.content
    own = world["pricing/modelprice"]
    assert b'name="_save"' in client.get(reverse("admin:pricing_modelprice_change", args=[own.pk])).content


def test_owner_sees_only_their_cost_centers_usage(org, world):
    other = CostCenterFactory(organization=org, code="cc_other")
    usage_ingest(organization=org, api_key=None,
                 raw_records=[usage_payload("other-call", cost_center="cc_other", timestamp="2026-03-03T10:00:00Z")])
    client, _ = login(org, role=Role.OWNER, cost_centers=[other])
    rows = client.get(reverse("admin:usage_usagerecord_changelist")).context["cl"].result_list
    assert [r.request_id for r in rows] == ["other-call"]
    assert client.get(reverse("admin:usage_usagerecord_change", args=[world["usage/usagerecord"].pk])).status_code == 404


def test_viewers_cannot_change_anything(world, org):
    client, _ = login(org, role=Role.VIEWER)
    response = client.post(reverse("admin:tenancy_costcenter_add"), {"code": "cc_new", "name": "New"})
    assert response.status_code == 403
    assert client.get(reverse("admin:tenancy_membership_changelist")).status_code == 403


def test_an_api_key_is_shown_once_when_issued(org):
    client, _ = login(org, role=Role.ADMIN)
    response = client.post(reverse("admin:tenancy_apikey_add"), {"name": "gateway", "scopes": ["ingest"]},
                           follow=True)
    shown = [str(m) for m in response.context["messages"] if str(m).startswith("Copy the new key")]
    assert len(shown) == 1
    raw_key = shown[0].rsplit(" ", 1)[-1]
    api_key = api_key_get_active(raw_key=raw_key)
    assert api_key.organization == org and api_key.scopes == ["ingest"]
    page = client.get(reverse("admin:tenancy_apikey_change", args=[api_key.pk])).content.decode()
    assert raw_key not in page and api_key.last_four in page


def test_revoke_action(org):
    api_key, raw = make_api_key(org)
    client, _ = login(org, role=Role.ADMIN)
    client.post(reverse("admin:tenancy_apikey_changelist"), {"action": "revoke", "_selected_action": [api_key.pk]})
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None


def test_invoice_actions_follow_four_eyes(world, org):
    invoice = world["billing/invoice"]
    client, user = login(org, role=Role.FINANCE)
    invoice.prepared_by = user
    invoice.save(update_fields=["prepared_by"])
    url = reverse("admin:billing_invoice_changelist")
    response = client.post(url, {"action": "approve", "_selected_action": [invoice.pk]}, follow=True)
    assert "Four eyes" in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.DRAFT
    other, _ = login(org, role=Role.FINANCE)
    other.post(url, {"action": "approve", "_selected_action": [invoice.pk]})
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.APPROVED


def test_void_needs_a_reason(world, org):
    invoice = world["billing/invoice"]
    client, _ = login(org, role=Role.FINANCE)
    url = reverse("admin:billing_invoice_void", args=[invoice.pk])
    assert client.post(url, {"reason": ""}).status_code == 200
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.DRAFT
    response = client.post(url, {"reason": "mapped to the wrong cost center"})
    invoice.refresh_from_db()
    assert invoice.state == InvoiceState.VOID and response.status_code == 302


def test_change_requests_are_decided_by_someone_else(world, org):
    change = world["budgets/budgetchangerequest"]
    client, _ = login(org, role=Role.FINANCE)
    client.post(reverse("admin:budgets_budgetchangerequest_changelist"),
                {"action": "approve", "_selected_action": [change.pk]})
    change.refresh_from_db()
    assert change.state == "approved" and change.budget.amount == Decimal("200")
    assert BudgetChangeRequest.objects.get(pk=change.pk).transitions.count() == 2


def test_rerate_preview_shows_the_diff_before_applying(world, org):
    client, _ = login(org, role=Role.FINANCE)
    ModelPrice.objects.filter(pk=world["pricing/modelprice"].pk).update(output_price=Decimal("18"))
    from apps.pricing.services import pricing_revision_bump

    pricing_revision_bump()
    url = reverse("admin:pricing_rerate_preview")
    preview = client.get(url, {"start": "2026-03-01", "end": "2026-03-31"})
    assert preview.status_code == 200 and "Dry run: 1 of 1 record(s) change" in preview.content.decode()
    record = world["usage/usagerecord"]
    assert UsageRecord.objects.get(pk=record.pk).billing_cost == record.billing_cost
    client.post(url, {"start": "2026-03-01", "end": "2026-03-31", "apply": "yes"})
    assert UsageRecord.objects.get(pk=record.pk).billing_cost > record.billing_cost


def test_non_members_cannot_sign_in(db):
    user = UserFactory()
    client = Client()
    response = client.post(reverse("admin:login"), {"username": user.username, "password": "pw"})
    assert response.status_code == 200 and not response.wsgi_request.user.is_authenticated


def test_members_sign_in_without_a_staff_flag(org):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.VIEWER)
    client = Client()
    client.post(reverse("admin:login"), {"username": user.username, "password": "pw"})
    assert client.get(reverse("admin:index")).status_code == 200


def test_switching_to_a_foreign_organization_is_404(org, other_org):
    client, _ = login(org)
    assert client.get(reverse("admin:switch-organization", args=["globex"])).status_code == 404
