"""Chargeback emails on issue, and the invoice API with its roles and tenancy."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from apps.billing.chargeback import chargeback_resend, chargebacks_send
from apps.billing.models import ChargebackEmail, InvoiceState
from apps.billing.services import invoice_approve, invoice_issue
from apps.budgets.services import budget_create
from apps.tenancy.models import Role
from tests.billing.conftest import close, ingest
from tests.conftest import client_with_key
from tests.factories import CostCenterFactory, MembershipFactory, UserFactory, make_api_key, usage_payload

MARCH = date(2026, 3, 1)


@pytest.fixture
def issued(org, price, finance_users, django_capture_on_commit_callbacks, mailoutbox):
    """March issued with usage on cc_product > cc_search (owned by search@) and cc_ops (no owner)."""
    product = CostCenterFactory(organization=org, code="cc_product")
    search = CostCenterFactory(organization=org, code="cc_search", parent=product)
    CostCenterFactory(organization=org, code="cc_ops")
    owner = UserFactory(username="search@example.com", email="search@example.com")
    MembershipFactory(organization=org, user=owner, role=Role.OWNER).cost_centers.set([search])
    budget_create(organization=org, cost_center=search, amount=Decimal("0.02"))
    ingest(
        org,
        usage_payload(
            "a", cost_center="cc_search", user_id="alice", feature="answer", timestamp="2026-03-02T10:00:00Z"
        ),
        usage_payload(
            "b",
            cost_center="cc_search",
            user_id="bob",
            feature="answer",
            timestamp="2026-03-03T10:00:00Z",
            output_tokens=1000,
        ),
        usage_payload("c", cost_center="cc_ops", timestamp="2026-03-03T10:00:00Z"),
    )
    invoice = invoice_approve(invoice=close(org, MARCH), user=finance_users[0])
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(invoice=invoice, user=finance_users[1])
    return invoice


class TestChargeback:
    def test_each_owner_gets_one_email_with_numbers_chart_and_csv(self, issued, mailoutbox):
        assert issued.state == InvoiceState.ISSUED
        [email] = mailoutbox
        assert email.to == ["search@example.com"]
        # a: 0.0028 ; b: 1000 x 2 + 1000 x 8 per 1M = 0.01 -> one line 0.0128 -> 0.01
        assert "cc_search: 0.0100 USD for March 2026" in email.subject
        html = email.alternatives[0][0]
        assert "0.0200 USD" in html and "50.0% used" in html and "cid:daily-cost" in html
        names = {part.get_filename() for part in email.message().walk() if part.get_filename()}
        assert names == {"daily-cost.png", "acme-cc_search-2026-03.csv"}
        [attachment] = [
            a for a in email.attachments if isinstance(a, tuple) or getattr(a, "filename", "").endswith(".csv")
        ]
        content = attachment[1] if isinstance(attachment, tuple) else attachment.content
        rows = list(csv.reader(io.StringIO(content)))
        assert rows[0] == [
            "date",
            "cost_center",
            "provider",
            "model",
            "user_id",
            "feature",
            "requests",
            "input_tokens",
            "output_tokens",
            "cost",
            "currency",
        ]
        assert [r[0] for r in rows[1:]] == ["2026-03-02", "2026-03-03"]
        assert sum(Decimal(r[9]) for r in rows[1:]) == Decimal("0.0128")
        assert "alice" in email.body and "bob" in email.body

    def test_sending_again_sends_nothing_new(self, issued, mailoutbox):
        assert chargebacks_send(invoice_id=issued.pk) == 0
        assert len(mailoutbox) == 1 and ChargebackEmail.objects.count() == 1

    def test_resend_is_explicit_and_logged(self, issued, mailoutbox, finance_users):
        search = issued.lines.get(cost_center__code="cc_search").cost_center
        assert chargeback_resend(invoice=issued, cost_center=search, user=finance_users[0]) == 1
        assert len(mailoutbox) == 2
        assert ChargebackEmail.objects.filter(resend=True, sent_by=str(finance_users[0])).count() == 1

    def test_the_parent_owner_gets_the_rolled_up_report(self, org, issued, mailoutbox):
        product = issued.lines.get(cost_center__code="cc_search").cost_center.parent
        lead = UserFactory(username="lead@example.com", email="lead@example.com")
        MembershipFactory(organization=org, user=lead, role=Role.OWNER).cost_centers.set([product])
        assert chargebacks_send(invoice_id=issued.pk) == 1
        assert mailoutbox[-1].to == ["lead@example.com"] and "cc_product: 0.0100 USD" in mailoutbox[-1].subject


class TestInvoiceApi:
    def test_list_by_period_with_lines_and_subtotals(self, org, issued, api):
        body = api.get("/api/v1/invoices", {"period": "2026-03"}).json()
        [invoice] = body["results"]
        assert (invoice["period"], invoice["state"], invoice["currency"], invoice["total"]) == (
            "2026-03",
            "issued",
            "USD",
            "0.0100",
        )
        assert {(s["cost_center"], s["amount"]) for s in invoice["subtotals"]} == {
            ("cc_ops", "0.0000"),
            ("cc_search", "0.0100"),
        }
        assert [t["to_state"] for t in invoice["transitions"]] == ["draft", "approved", "issued"]
        assert api.get("/api/v1/invoices", {"period": "2026-04"}).json() == {"results": []}

    def test_bad_period_is_400(self, api):
        response = api.get("/api/v1/invoices", {"period": "March"})
        assert response.status_code == 400 and "period" in response.json()

    def test_detail_and_csv(self, issued, api):
        detail = api.get(f"/api/v1/invoices/{issued.pk}").json()
        assert detail["number"] == issued.number
        response = api.get(f"/api/v1/invoices/{issued.pk}/lines.csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0][:3] == ["invoice", "period", "kind"] and len(rows) == 3

    def test_finance_approves_through_the_api_with_four_eyes(self, org, price, finance_users):
        from rest_framework.test import APIClient

        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        invoice = close(org, MARCH, actor=finance_users[0])
        preparer, approver = APIClient(), APIClient()
        preparer.force_login(finance_users[0])
        approver.force_login(finance_users[1])
        refused = preparer.post(f"/api/v1/invoices/{invoice.pk}/approve")
        assert refused.status_code == 403 and "Four eyes" in refused.json()["detail"]
        assert approver.post(f"/api/v1/invoices/{invoice.pk}/approve").json()["state"] == "approved"
        void = approver.post(f"/api/v1/invoices/{invoice.pk}/void", {}, format="json")
        assert void.status_code == 400 and "reason" in void.json()

    def test_keys_and_viewers_cannot_approve(self, org, price, full_key, member_client):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        invoice = close(org, MARCH)
        assert client_with_key(full_key).post(f"/api/v1/invoices/{invoice.pk}/approve").status_code == 403
        assert member_client(role=Role.VIEWER).post(f"/api/v1/invoices/{invoice.pk}/approve").status_code == 403
        invoice.refresh_from_db()
        assert invoice.state == InvoiceState.DRAFT

    def test_owners_are_sent_to_their_reports(self, member_client):
        response = member_client(role=Role.OWNER).get("/api/v1/invoices")
        assert response.status_code == 403

    def test_ingest_only_key_cannot_read_invoices(self, ingest_key):
        assert client_with_key(ingest_key).get("/api/v1/invoices").status_code == 403

    def test_another_organization_sees_no_invoice(self, issued, other_api, other_org, member_client):
        assert other_api.get("/api/v1/invoices").json() == {"results": []}
        for path in ("", "/lines.csv"):
            assert other_api.get(f"/api/v1/invoices/{issued.pk}{path}").status_code == 404
        finance_b = member_client(role=Role.FINANCE, organization=other_org)
        for action in ("approve", "issue"):
            assert finance_b.post(f"/api/v1/invoices/{issued.pk}/{action}").status_code == 404
        assert finance_b.post(f"/api/v1/invoices/{issued.pk}/void", {"reason": "x"}, format="json").status_code == 404
        resend = finance_b.post(
            f"/api/v1/invoices/{issued.pk}/chargebacks/resend", {"cost_center": "cc_search"}, format="json"
        )
        assert resend.status_code == 404
        assert finance_b.get(f"/api/v1/invoices/{issued.pk}", HTTP_X_ORGANIZATION="acme").status_code == 404

    def test_resend_through_the_api(self, org, issued, finance_users, mailoutbox):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_login(finance_users[0])
        response = client.post(
            f"/api/v1/invoices/{issued.pk}/chargebacks/resend", {"cost_center": "cc_search"}, format="json"
        )
        assert response.json() == {"sent": 1} and len(mailoutbox) == 2
        unknown = client.post(
            f"/api/v1/invoices/{issued.pk}/chargebacks/resend", {"cost_center": "nope"}, format="json"
        )
        assert unknown.status_code == 400 and "cost_center" in unknown.json()


def test_close_period_command(org, price):
    from io import StringIO

    from django.core.management import CommandError, call_command

    ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
    out = StringIO()
    call_command("close_period", "acme", "2026-03", stdout=out)
    assert "(draft): 1 lines" in out.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("close_period", "acme", "2026-3")
    with pytest.raises(CommandError, match="No organization"):
        call_command("close_period", "nope", "2026-03")


def test_api_key_read_scope_lists_invoices(org, issued):
    assert client_with_key(make_api_key(org, scopes=("read",))[1]).get("/api/v1/invoices").status_code == 200
