"""GET /api/v1/exports/focus.csv: FOCUS 1.2 charges of a billing period, invoices, roles and tenancy (section 8)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.billing.services import invoice_close
from apps.exports.focus import FOCUS_COLUMNS
from apps.tenancy.models import Role
from apps.usage.models import UsageRecord
from tests.conftest import client_with_key
from tests.exports.conftest import body_text, csv_rows, ingest
from tests.factories import OrganizationFactory, make_api_key, usage_payload

pytestmark = pytest.mark.usefixtures("priced_model", "openai_price")

URL = "/api/v1/exports/focus.csv"
MARCH = {"period": "2026-03"}

MANDATORY_FOCUS_1_2 = {
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
}


@pytest.fixture
def march(org, tree):
    """Three charges in March: two records of test-model and one of an OpenAI snapshot on the 2nd, two on the 3rd."""
    ingest(
        org,
        usage_payload(
            "a", cost_center="cc_search", tags={"team": "search", "env": "prod"}, timestamp="2026-03-02T10:00:00Z"
        ),
        usage_payload(
            "b", cost_center="cc_search", tags={"team": "search", "env": "dev"}, timestamp="2026-03-02T11:00:00Z"
        ),
        usage_payload(
            "c",
            cost_center="cc_search",
            provider="openai",
            model="gpt-4.1-2025-04-14",
            cache_read_tokens=400,
            tags={"team": "search"},
            timestamp="2026-03-02T12:00:00Z",
        ),
        usage_payload("d", cost_center="cc_ops", timestamp="2026-03-03T09:00:00Z"),
        usage_payload("e", cost_center="cc_ops", tags={"team": "ops"}, timestamp="2026-03-03T10:00:00Z"),
        usage_payload("unpriced", cost_center="cc_ops", model="unknown-model", timestamp="2026-03-03T11:00:00Z"),
        usage_payload("april", cost_center="cc_ops", timestamp="2026-04-01T00:00:00Z"),
    )


class TestContent:
    def test_header_has_the_mandatory_columns_and_the_sub_account_sku_usage_invoice_and_tag_columns(self, api):
        header = body_text(api.get(URL, MARCH)).splitlines()[0].split(",")
        assert header == list(FOCUS_COLUMNS)
        assert MANDATORY_FOCUS_1_2 <= set(header)
        assert {"SubAccountId", "SubAccountName", "SkuId", "SkuPriceId", "ConsumedQuantity", "ConsumedUnit"} <= set(
            header
        )
        assert {"PricingQuantity", "PricingUnit", "InvoiceId", "Tags"} <= set(header)

    def test_one_usage_charge_per_day_cost_center_provider_and_model(self, api, march, priced_model, openai_price):
        response = api.get(URL, MARCH)
        assert response.status_code == 200
        rows = csv_rows(response)
        assert [(r["ChargePeriodStart"], r["SubAccountId"], r["x_Model"], r["x_Requests"]) for r in rows] == [
            ("2026-03-02T00:00:00Z", "cc_search", "test-model", "2"),
            ("2026-03-02T00:00:00Z", "cc_search", "gpt-4.1-2025-04-14", "1"),
            ("2026-03-03T00:00:00Z", "cc_ops", "test-model", "2"),
        ]
        bare, openai, ops = rows
        # 1,000 in x 2.00 + 100 out x 8.00 per 1M = 0.0028 a record
        assert bare == {
            **bare,
            "BilledCost": "0.005600000000",
            "EffectiveCost": "0.005600000000",
            "ListCost": "0.005600000000",
            "ContractedCost": "0.005600000000",
            "BillingCurrency": "USD",
            "BillingAccountId": "acme",
            "BillingAccountName": "Acme",
            "BillingPeriodStart": "2026-03-01T00:00:00Z",
            "BillingPeriodEnd": "2026-04-01T00:00:00Z",
            "ChargePeriodEnd": "2026-03-03T00:00:00Z",
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeFrequency": "Usage-Based",
            "ChargeDescription": "test-model: 2 requests, 2000 input and 200 output tokens",
            "ConsumedQuantity": "2200.0",
            "ConsumedUnit": "Tokens",
            "PricingQuantity": "0.002200",
            "PricingUnit": "1000000 Tokens",
            "PricingCurrency": "USD",
            "PricingCurrencyEffectiveCost": "0.005600000000",
            "ProviderName": "Acme",
            "InvoiceIssuerName": "Acme",
            "PublisherName": "Unknown",
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": "LLM API",
            "ServiceSubcategory": "Generative AI",
            "SkuId": "test-model",
            "SkuPriceId": f"price-{priced_model.pk}",
            "SkuPriceDetails": '{"x_InputPrice":2,"x_CachedInputPrice":0.5,"x_CacheWritePrice":3,"x_OutputPrice":8}',
            "SubAccountName": "Search",
            "InvoiceId": "",
            "Tags": '{"team":"search"}',
            "x_InputTokens": "2000",
            "x_OutputTokens": "200",
        }
        # 600 uncached x 2.00 + 400 cached x 0.50 + 100 out x 8.00 per 1M = 0.0022
        assert openai["BilledCost"] == "0.002200000000" and openai["x_CacheReadTokens"] == "400"
        assert (openai["PublisherName"], openai["ServiceName"], openai["ProviderName"]) == (
            "OpenAI",
            "OpenAI API",
            "Acme",
        )
        assert (openai["SkuId"], openai["SkuPriceId"]) == ("openai/gpt-4.1", f"price-{openai_price.pk}")
        assert openai["Tags"] == '{"team":"search"}'
        assert ops["Tags"] == ""  # record d carries no tags, so the charge has none in common

    def test_unpriced_usage_is_left_out_and_counted_in_a_header(self, api, march):
        response = api.get(URL, MARCH)
        assert response["X-Unpriced-Requests"] == "1"
        assert "unknown-model" not in body_text(response)

    def test_billed_cost_adds_up_to_the_cost_summary(self, api, march):
        rows = csv_rows(api.get(URL, MARCH))
        total = api.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31"}).json()["total"]["cost"]
        assert sum(Decimal(r["BilledCost"]) for r in rows) == Decimal(total) == Decimal("0.0134")

    def test_periods_are_cut_in_the_organizations_time_zone_and_written_in_utc(self, priced_model):
        berlin = OrganizationFactory(slug="berlin", name="Berlin GmbH", timezone="Europe/Berlin")
        ingest(
            berlin,
            usage_payload("dst-day", timestamp="2026-03-29T00:30:00Z"),  # 01:30 CET on the day clocks go forward
            usage_payload("next-day", timestamp="2026-03-29T22:30:00Z"),  # 00:30 CEST on the 30th
            usage_payload("february", timestamp="2026-02-28T22:59:00Z"),
        )
        client = client_with_key(make_api_key(berlin, scopes=("read",))[1])
        rows = csv_rows(client.get(URL, MARCH))
        assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {
            ("2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
        }
        assert [(r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in rows] == [
            ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
            ("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"),
        ]

    def test_billing_currency_differs_from_the_pricing_currency_without_an_fx_rate_nothing_is_billed(self, db):
        eur = OrganizationFactory(slug="eu", billing_currency="EUR")
        ingest(eur, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        client = client_with_key(make_api_key(eur, scopes=("read",))[1])
        response = client.get(URL, MARCH)
        assert csv_rows(response) == [] and response["X-Unpriced-Requests"] == "1"


def arrive_late(org, invoice, *request_ids):
    """Usage that reached the portal after the invoice was closed."""
    UsageRecord.objects.for_org(org).filter(request_id__in=request_ids).update(
        received_at=invoice.cutoff_at + timedelta(minutes=1)
    )


def close_later(org, period):
    """Close as if ten minutes from now, so that usage that arrived after an earlier close is billed."""
    return invoice_close(organization=org, period=period, now=timezone.now() + timedelta(minutes=10))


class TestInvoice:
    def test_invoice_id_is_the_number_of_the_closed_months_invoice(self, api, org, march):
        invoice = invoice_close(organization=org, period=date(2026, 3, 1))
        rows = csv_rows(api.get(URL, MARCH))
        assert invoice.number == f"ACME-202603-{invoice.pk}"
        assert [(r["InvoiceId"], r["ChargeClass"]) for r in rows] == [(invoice.number, "")] * 3

    def test_an_open_month_has_no_invoice_id(self, api, march):
        assert {r["InvoiceId"] for r in csv_rows(api.get(URL, MARCH))} == {""}

    def test_late_usage_is_a_correction_in_the_period_whose_invoice_bills_it(self, api, org, march):
        march_invoice = invoice_close(organization=org, period=date(2026, 3, 1))
        ingest(org, usage_payload("late", cost_center="cc_ops", tags={"team": "ops"}, timestamp="2026-03-03T12:00:00Z"))
        arrive_late(org, march_invoice, "late")
        # Not on March's invoice, so not in March's file; April, still open, will bill it.
        assert [r["x_Requests"] for r in csv_rows(api.get(URL, MARCH)) if r["SubAccountId"] == "cc_ops"] == ["2"]
        [pending] = [r for r in csv_rows(api.get(URL, {"period": "2026-04"})) if r["ChargeClass"]]
        assert (pending["ChargeClass"], pending["InvoiceId"], pending["x_Requests"]) == ("Correction", "", "1")
        assert pending["ChargePeriodStart"] == "2026-03-03T00:00:00Z"
        assert pending["BillingPeriodStart"] == "2026-04-01T00:00:00Z" and pending["BilledCost"] == "0.002800000000"

        UsageRecord.objects.for_org(org).filter(request_id="april").update(received_at=march_invoice.cutoff_at)
        april_invoice = close_later(org, date(2026, 4, 1))
        april = csv_rows(api.get(URL, {"period": "2026-04"}))
        assert [(r["ChargeClass"], r["InvoiceId"], r["ChargePeriodStart"]) for r in april] == [
            ("", april_invoice.number, "2026-04-01T00:00:00Z"),
            ("Correction", april_invoice.number, "2026-03-03T00:00:00Z"),
        ]
        assert april[1]["Tags"] == '{"team":"ops"}'
        # Once billed it leaves the open month's file: every record is in exactly one file.
        assert [r for r in csv_rows(api.get(URL, {"period": "2026-05"})) if r["ChargeClass"]] == []

    def test_billed_cost_per_invoice_adds_up_to_its_usage_and_late_usage_lines(self, api, org, march):
        from apps.billing.models import InvoiceLine

        march_invoice = invoice_close(organization=org, period=date(2026, 3, 1))
        ingest(org, usage_payload("late", cost_center="cc_ops", timestamp="2026-03-31T12:00:00Z"))
        arrive_late(org, march_invoice, "late")
        april_invoice = close_later(org, date(2026, 4, 1))
        for invoice, period in ((march_invoice, "2026-03"), (april_invoice, "2026-04")):
            rows = csv_rows(api.get(URL, {"period": period}))
            lines = InvoiceLine.objects.filter(invoice=invoice).values_list("exact_amount", flat=True)
            assert sum(Decimal(r["BilledCost"]) for r in rows) == sum(lines)


class TestPeriod:
    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"period": ""},
            {"period": "2026-3"},
            {"period": "2026-13"},
            {"period": "2026-03-01"},
            {"period": "0000-01"},
            {"period": "9999-12"},
        ],
    )
    def test_a_missing_or_bad_period_is_400_naming_it(self, api, params):
        response = api.get(URL, params)
        assert response.status_code == 400 and "period" in response.json(), response.content

    def test_a_month_without_usage_is_the_header_alone(self, api):
        assert body_text(api.get(URL, {"period": "2025-01"})) == ",".join(FOCUS_COLUMNS) + "\r\n"

    def test_response_streams_an_attachment(self, api, march):
        response = api.get(URL, MARCH)
        assert isinstance(response, StreamingHttpResponse)
        assert response["Content-Disposition"] == 'attachment; filename="acme-focus-2026-03.csv"'


class TestAccess:
    def test_an_ingest_only_key_is_403(self, org, ingest_key):
        assert client_with_key(ingest_key).get(URL, MARCH).status_code == 403

    def test_owner_gets_only_their_cost_centers(self, org, tree, march, member_client):
        product, _search, _ops = tree
        owner = member_client(role=Role.OWNER, cost_centers=[product])
        response = owner.get(URL, MARCH)
        assert {r["SubAccountId"] for r in csv_rows(response)} == {"cc_search"}
        assert response["X-Unpriced-Requests"] == "0"  # the unpriced record is cc_ops'
        assert owner.get(URL, {**MARCH, "cost_center": "cc_ops"}).status_code == 400

    def test_cost_center_filter(self, api, march):
        assert {r["SubAccountId"] for r in csv_rows(api.get(URL, {**MARCH, "cost_center": "cc_ops"}))} == {"cc_ops"}


class TestCrossTenant:
    def test_another_organizations_key_gets_none_of_its_charges(self, march, other_api):
        response = other_api.get(URL, MARCH)
        assert csv_rows(response) == [] and response["X-Unpriced-Requests"] == "0"

    def test_a_member_of_b_naming_a_gets_404(self, org, other_org, march, member_client):
        client = member_client(role=Role.FINANCE, organization=other_org)
        assert client.get(URL, MARCH, HTTP_X_ORGANIZATION="acme").status_code == 404
