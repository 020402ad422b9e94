"""Month close: one invoice per month, lines per cost center x model, adjustments instead of edits."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from apps.billing import services
from apps.billing.models import Invoice, InvoiceLine, InvoiceState, LineKind
from apps.billing.services import invoice_approve, invoice_close, invoice_issue, invoice_void, periods_due
from apps.pricing.models import ModelPrice
from apps.pricing.services import pricing_revision_bump
from apps.tenancy.models import Role
from apps.usage.models import UsageRecord
from apps.usage.services import usage_price_unpriced, usage_rerate
from tests.billing.conftest import arrive_late, close, ingest
from tests.factories import (
    FxRateFactory,
    MembershipFactory,
    ModelPriceFactory,
    OrganizationFactory,
    UserFactory,
    usage_payload,
)

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)


def lines(invoice, kind=LineKind.USAGE):
    return [
        (line.cost_center.code, line.model, line.requests, line.input_tokens, line.output_tokens, line.amount)
        for line in invoice.lines.filter(kind=kind).select_related("cost_center").order_by("cost_center__code", "model")
    ]


class TestClose:
    def test_one_line_per_cost_center_and_model_rounded_once(self, org, price, search):
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_search", timestamp="2026-03-20T10:00:00Z"),
            usage_payload("c", timestamp="2026-03-21T10:00:00Z", input_tokens=1_000_000, output_tokens=0),
            usage_payload("d", model="unpriced-model", timestamp="2026-03-21T10:00:00Z"),
            usage_payload("april", timestamp="2026-04-01T00:00:00Z"),
        )
        invoice = close(org, MARCH)
        assert invoice.state == InvoiceState.DRAFT and invoice.currency == "USD"
        # 2 x 0.0028 = 0.0056 -> 0.01 ; 1M input x 2.00 = 2.00
        assert lines(invoice) == [
            ("cc_search", "test-model", 2, 2000, 200, Decimal("0.0100")),
            ("unallocated", "test-model", 1, 1_000_000, 0, Decimal("2.0000")),
        ]
        search_line = invoice.lines.get(cost_center__code="cc_search")
        assert search_line.exact_amount == Decimal("0.0056")
        assert (invoice.usage_total, invoice.adjustments_total, invoice.total) == (
            Decimal("2.01"),
            Decimal(0),
            Decimal("2.01"),
        )
        assert invoice.unpriced_requests == 1
        assert [t.to_state for t in invoice.transitions.all()] == ["draft"]

    def test_totals_equal_the_priced_records_with_fx_and_a_price_change_inside_the_month(self, db):
        berlin = OrganizationFactory(slug="eu", billing_currency="EUR", timezone="Europe/Berlin")
        first = ModelPriceFactory(
            model="fx-model", input_price=Decimal("3.00"), cached_input_price=None, output_price=Decimal("15.00")
        )
        ModelPriceFactory(
            price_list=first.price_list,
            model="fx-model",
            input_price=Decimal("2.50"),
            cached_input_price=None,
            output_price=Decimal("10.00"),
            effective_from=timezone.datetime(2026, 3, 15, tzinfo=berlin.tz),
        )
        FxRateFactory(date=date(2026, 2, 27), from_currency="USD", to_currency="EUR", rate=Decimal("0.92"))
        FxRateFactory(date=date(2026, 3, 16), from_currency="USD", to_currency="EUR", rate=Decimal("0.90"))
        ingest(
            berlin,
            # 10k in x 3.00 + 2k out x 15.00 = 0.06 USD x 0.92 = 0.0552 EUR
            usage_payload(
                "early",
                model="fx-model",
                input_tokens=10_000,
                output_tokens=2_000,
                timestamp="2026-03-01T00:30:00+01:00",
            ),
            # new price, old rate: 10k x 2.50 + 2k x 10.00 = 0.045 USD x 0.92 = 0.0414 EUR
            usage_payload(
                "mid", model="fx-model", input_tokens=10_000, output_tokens=2_000, timestamp="2026-03-15T12:00:00+01:00"
            ),
            # new price, new rate: 0.045 x 0.90 = 0.0405 EUR; 23:30 on the 31st in Berlin is still March
            usage_payload(
                "last",
                model="fx-model",
                input_tokens=10_000,
                output_tokens=2_000,
                timestamp="2026-03-31T23:30:00+02:00",
            ),
            # 00:30 on April 1st in Berlin is the previous day in UTC, but April's
            usage_payload(
                "next", model="fx-model", input_tokens=10_000, output_tokens=2_000, timestamp="2026-03-31T22:30:00Z"
            ),
        )
        invoice = close(berlin, MARCH)
        assert invoice.currency == "EUR"
        [line] = invoice.lines.all()
        assert line.requests == 3 and line.exact_amount == Decimal("0.1371")
        assert line.amount == Decimal("0.14") and invoice.total == Decimal("0.14")
        march_records = UsageRecord.objects.for_org(berlin).exclude(request_id="next")
        assert sum(r.billing_cost for r in march_records) == line.exact_amount

    def test_rounding_is_half_even_per_line(self, org, price, search):
        # 0.0025 exactly: 1250 input tokens x 2.00 per 1M -> rounds to 0.00 (half to even)
        ingest(org, usage_payload("a", input_tokens=1250, output_tokens=0, timestamp="2026-03-02T10:00:00Z"))
        ingest(
            org,
            usage_payload(
                "b", input_tokens=3750, output_tokens=0, cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"
            ),
        )
        invoice = close(org, MARCH)
        assert {line.exact_amount: line.amount for line in invoice.lines.all()} == {
            Decimal("0.0025"): Decimal("0.00"),
            Decimal("0.0075"): Decimal("0.01"),
        }

    def test_closing_twice_returns_the_same_invoice(self, org, price):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        first = close(org, MARCH)
        ingest(org, usage_payload("b", timestamp="2026-03-03T10:00:00Z"))
        again = close(org, MARCH)
        assert again.pk == first.pk and lines(again) == lines(first)
        assert Invoice.objects.for_org(org).count() == 1

    def test_a_month_that_has_not_ended_cannot_be_closed(self, org):
        with pytest.raises(ValidationError, match="has not ended"):
            invoice_close(organization=org, period=timezone.now().date())
        assert not Invoice.objects.exists()

    def test_a_crash_midway_leaves_no_invoice(self, org, price, monkeypatch):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))

        def crash(invoice):
            raise RuntimeError("worker killed")

        monkeypatch.setattr(services, "_set_totals", crash)
        with pytest.raises(RuntimeError):
            close(org, MARCH)
        assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()

    def test_months_are_due_after_the_grace_days_in_the_organizations_time_zone(self, org, price):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        org.grace_days = 3
        assert periods_due(organization=org, now=timezone.datetime(2026, 4, 3, 12, tzinfo=org.tz)) == []
        assert periods_due(organization=org, now=timezone.datetime(2026, 4, 4, 0, 1, tzinfo=org.tz)) == [MARCH]
        close(org, MARCH)
        assert periods_due(organization=org, now=timezone.datetime(2026, 4, 4, 0, 1, tzinfo=org.tz)) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_closes_make_one_invoice(org, price):
    ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
    results, barrier = [], threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            results.append(close(org, MARCH).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert Invoice.objects.count() == 1


class TestAdjustments:
    def test_late_usage_becomes_an_adjustment_on_the_next_invoice_linked_to_its_records(self, org, price, search):
        ingest(org, usage_payload("on-time", cost_center="cc_search", timestamp="2026-03-10T10:00:00Z"))
        march = close(org, MARCH)
        march_lines = lines(march)
        ingest(
            org,
            usage_payload("late-1", cost_center="cc_search", timestamp="2026-03-30T10:00:00Z"),
            usage_payload("late-2", cost_center="cc_search", timestamp="2026-03-31T10:00:00Z"),
            usage_payload("april", timestamp="2026-04-02T10:00:00Z"),
        )
        arrive_late(march, request_id__startswith="late")
        april = close(org, APRIL, minutes_ahead=10)
        assert lines(march) == march_lines  # the closed month is never edited
        [late] = april.lines.filter(kind=LineKind.LATE_USAGE)
        assert (late.cost_center.code, late.usage_period, late.requests, late.exact_amount) == (
            "cc_search",
            MARCH,
            2,
            Decimal("0.0056"),
        )
        linked = set(late.record_links.values_list("record__request_id", flat=True))
        assert linked == {"late-1", "late-2"}
        assert april.adjustments_total == Decimal("0.01") and april.usage_total == Decimal("0.00")

    def test_late_usage_is_billed_once(self, org, price):
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        march = close(org, MARCH)
        ingest(org, usage_payload("late", timestamp="2026-03-30T10:00:00Z"))
        arrive_late(march, request_id="late")
        april = close(org, APRIL, minutes_ahead=10)
        may = close(org, date(2026, 5, 1), minutes_ahead=20)
        assert april.lines.filter(kind=LineKind.LATE_USAGE).count() == 1
        assert not may.lines.exclude(kind=LineKind.USAGE).exists()

    def test_re_rating_an_invoiced_month_becomes_an_adjustment_not_an_edit(self, org, price):
        ingest(
            org,
            usage_payload("a", timestamp="2026-03-10T10:00:00Z"),
            usage_payload("b", timestamp="2026-03-11T10:00:00Z"),
        )
        march = close(org, MARCH)
        ModelPrice.objects.filter(pk=price.pk).update(output_price=Decimal("18.00"))  # a correction for March
        pricing_revision_bump()
        report = usage_rerate(organization=org, start=timezone.datetime(2026, 3, 1, tzinfo=org.tz), dry_run=False)
        assert report.changed == 2
        march.refresh_from_db()
        assert march.total == Decimal("0.01")  # 2 x 0.0028, untouched
        april = close(org, APRIL, minutes_ahead=10)
        [repricing] = april.lines.filter(kind=LineKind.REPRICING)
        # each record: 100 output x (18 - 8) per 1M = 0.001
        assert (repricing.usage_period, repricing.requests, repricing.exact_amount) == (MARCH, 2, Decimal("0.002"))
        assert repricing.change_links.count() == 2
        assert close(org, date(2026, 5, 1), minutes_ahead=20).lines.filter(kind=LineKind.REPRICING).count() == 0

    def test_usage_priced_after_the_close_is_an_adjustment(self, org, price):
        ingest(org, usage_payload("a", model="later-model", timestamp="2026-03-10T10:00:00Z"))
        march = close(org, MARCH)
        assert march.unpriced_requests == 1 and march.total == 0
        ModelPriceFactory(
            price_list=price.price_list,
            model="later-model",
            input_price=Decimal("1000"),
            cached_input_price=None,
            output_price=Decimal("0"),
        )
        usage_price_unpriced(organization=org)
        april = close(org, APRIL, minutes_ahead=10)
        [line] = april.lines.filter(kind=LineKind.REPRICING)
        assert line.amount == Decimal("1.00") and line.usage_period == MARCH


class TestApprovals:
    def test_four_eyes_the_preparer_cannot_approve(self, org, price, finance_users):
        preparer, approver = finance_users
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        invoice = close(org, MARCH, actor=preparer)
        with pytest.raises(PermissionDenied, match="Four eyes"):
            invoice_approve(invoice=invoice, user=preparer)
        invoice = invoice_approve(invoice=invoice, user=approver)
        assert invoice.state == InvoiceState.APPROVED and invoice.approved_by == approver

    def test_only_finance_approves_and_only_approved_invoices_are_issued(self, org, price, finance_users):
        viewer = UserFactory()
        MembershipFactory(organization=org, user=viewer, role=Role.VIEWER)
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        invoice = close(org, MARCH)
        with pytest.raises(PermissionDenied):
            invoice_approve(invoice=invoice, user=viewer)
        with pytest.raises(ValidationError, match="Only an approved invoice"):
            invoice_issue(invoice=invoice, user=finance_users[0])
        invoice_approve(invoice=invoice, user=finance_users[0])
        with pytest.raises(ValidationError, match="Only a draft"):
            invoice_approve(invoice=invoice, user=finance_users[1])
        issued = invoice_issue(invoice=invoice, user=finance_users[1])
        assert issued.state == InvoiceState.ISSUED
        assert [(t.from_state, t.to_state) for t in issued.transitions.all()] == [
            ("", "draft"),
            ("draft", "approved"),
            ("approved", "issued"),
        ]

    def test_a_member_of_another_organization_cannot_approve(self, org, other_org, price):
        outsider = UserFactory()
        MembershipFactory(organization=other_org, user=outsider, role=Role.FINANCE)
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        with pytest.raises(PermissionDenied):
            invoice_approve(invoice=close(org, MARCH), user=outsider)

    def test_void_needs_a_reason_and_makes_a_new_draft(self, org, price, finance_users):
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        invoice = close(org, MARCH)
        with pytest.raises(ValidationError, match="Say why"):
            invoice_void(invoice=invoice, user=finance_users[0], reason=" ")
        result = invoice_void(invoice=invoice, user=finance_users[0], reason="wrong cost center mapping")
        assert result.voided.state == InvoiceState.VOID and result.voided.void_reason == "wrong cost center mapping"
        assert result.new_draft.pk != invoice.pk and result.new_draft.state == InvoiceState.DRAFT
        assert lines(result.new_draft) == lines(invoice)
        assert close(org, MARCH).pk == result.new_draft.pk

    def test_an_earlier_month_cannot_be_voided_once_a_later_one_is_invoiced(self, org, price, finance_users):
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        march = close(org, MARCH)
        close(org, APRIL)
        with pytest.raises(ValidationError, match="void the later invoices first"):
            invoice_void(invoice=march, user=finance_users[0], reason="oops")
        march.refresh_from_db()
        assert march.state == InvoiceState.DRAFT

    def test_approved_invoices_do_not_change_when_usage_changes(self, org, price, finance_users):
        ingest(org, usage_payload("a", timestamp="2026-03-10T10:00:00Z"))
        invoice = invoice_approve(invoice=close(org, MARCH), user=finance_users[0])
        before = lines(invoice)
        ingest(org, usage_payload("b", timestamp="2026-03-11T10:00:00Z"))
        assert close(org, MARCH).pk == invoice.pk and lines(invoice) == before
