"""seed_demo and rerate_usage."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.pricing.models import ModelPrice
from apps.tenancy.models import CostCenter, Membership, Organization
from apps.usage.models import PricingStatus, UsageRecord
from apps.usage.services import usage_ingest
from tests.factories import usage_payload


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_seed_demo_creates_a_priced_organization_and_is_idempotent(db):
    out = run("seed_demo", "--days", "3", "--scale", "0.1")
    organization = Organization.objects.get(slug="acme")
    records = UsageRecord.objects.for_org(organization)
    count = records.count()
    assert count > 100
    assert CostCenter.objects.for_org(organization).filter(code="cc_search", parent__code="cc_product").exists()
    assert Membership.objects.for_org(organization).count() == 6
    assert records.filter(pricing_status=PricingStatus.PRICED).count() > 0.8 * count
    # one demo model has no price on purpose: finance sees unpriced usage
    assert set(records.filter(pricing_status=PricingStatus.UNPRICED).values_list("model", flat=True)) == {
        "llama-3.3-70b-internal"
    }
    assert out.strip().splitlines()[-1].startswith("API key (ingest, read): cpk_")
    again = run("seed_demo", "--days", "3", "--scale", "0.1")
    assert records.count() == count and "0 new usage record(s)" in again
    from apps.budgets.models import Budget

    assert Budget.objects.for_org(organization).filter(active=True).count() == 4


def test_rerate_usage_shows_the_diff_then_applies_it(org, priced_model):
    usage_ingest(organization=org, api_key=None, raw_records=[usage_payload("a", timestamp="2026-03-02T10:00:00Z")])
    ModelPrice.objects.filter(pk=priced_model.pk).update(output_price="18.00")
    from apps.pricing.services import pricing_revision_bump

    pricing_revision_bump()
    dry = run("rerate_usage", "acme", "--start", "2026-03-01", "--end", "2026-03-31")
    assert "1 change" in dry and "0.0028 -> 0.0038 USD" in dry and "Nothing was written" in dry
    assert str(UsageRecord.objects.for_org(org).get().billing_cost) == "0.002800000000"
    applied = run("rerate_usage", "acme", "--start", "2026-03-01", "--end", "2026-03-31", "--apply")
    assert "Re-rated" in applied
    assert str(UsageRecord.objects.for_org(org).get().billing_cost) == "0.003800000000"


def test_rerate_usage_refuses_a_bad_date(org):
    with pytest.raises(CommandError, match="date"):
        run("rerate_usage", "acme", "--start", "March")


def test_seed_demo_closes_the_months_that_ended_into_draft_invoices(db):
    from apps.billing.models import Invoice

    run("seed_demo", "--days", "40", "--scale", "0.05")
    invoices = Invoice.objects.filter(organization__slug="acme")
    assert invoices.count() >= 1
    assert all(invoice.state == "draft" and invoice.total > 0 for invoice in invoices)
