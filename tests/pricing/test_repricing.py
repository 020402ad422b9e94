"""End to end from ingest: unpriced usage waits for its price, re-rating, and conversion to the billing currency."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from apps.pricing.importers import PriceEntry
from apps.pricing.models import ModelPrice
from apps.pricing.services import fx_rates_import, prices_import
from apps.usage.models import PricingStatus, UsageRecord
from apps.usage.services import usage_ingest, usage_reconvert, usage_rerate
from tests.factories import FxRateFactory, PriceListFactory


def ingest(
    organization,
    request_id,
    *,
    model="test-model-x",
    timestamp="2026-03-10T12:00:00Z",
    input_tokens=1000,
    output_tokens=500,
    **fields,
):
    result = usage_ingest(
        organization=organization,
        api_key=None,
        raw_records=[
            {
                "request_id": request_id,
                "model": model,
                "timestamp": timestamp,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                **fields,
            }
        ],
    )
    assert (result.accepted, result.errors) == (1, [])
    return UsageRecord.objects.for_org(organization).get(request_id=request_id)


def entry(model="test-model-x", input="2.00", output="8.00", **fields) -> PriceEntry:
    return PriceEntry(model=model, input=Decimal(input), output=Decimal(output), **fields)


def fx(day, rate):
    return {"date": day, "from_currency": "USD", "to_currency": "EUR", "rate": Decimal(rate), "source": "ECB"}


class TestUnpricedUsage:
    def test_usage_of_a_model_without_price_is_stored_unpriced_never_at_zero(self, org):
        record = ingest(org, "r-1")
        assert record.pricing_status == PricingStatus.UNPRICED
        assert (record.price_id, record.cost, record.billing_cost, record.fx_rate, record.priced_at) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert (record.input_tokens, record.output_tokens) == (1000, 500)

    def test_a_price_imported_into_the_organizations_list_prices_its_waiting_usage(
        self, org, org_list, django_capture_on_commit_callbacks
    ):
        waiting = ingest(org, "r-1")
        with django_capture_on_commit_callbacks(execute=True):
            prices_import(price_list=org_list, entries=[entry()])
        waiting.refresh_from_db()
        # 1,000 x 2.00 + 500 x 8.00 = 6,000 per 1M tokens
        assert waiting.pricing_status == PricingStatus.PRICED
        assert waiting.price_id == ModelPrice.objects.get(price_list=org_list, model="test-model-x").pk
        assert (waiting.cost, waiting.cost_currency, waiting.fx_rate, waiting.billing_cost) == (
            Decimal("0.006"),
            "USD",
            Decimal("1"),
            Decimal("0.006"),
        )
        assert waiting.priced_at is not None

    def test_a_global_price_prices_the_waiting_usage_of_every_organization(
        self, org, other_org, global_list, django_capture_on_commit_callbacks
    ):
        acme = ingest(org, "r-1")
        globex = ingest(other_org, "r-1", input_tokens=2000, output_tokens=0)
        with django_capture_on_commit_callbacks(execute=True):
            prices_import(price_list=global_list, entries=[entry()])
        acme.refresh_from_db()
        globex.refresh_from_db()
        assert (acme.pricing_status, acme.billing_cost) == (PricingStatus.PRICED, Decimal("0.006"))
        assert (globex.pricing_status, globex.billing_cost) == (PricingStatus.PRICED, Decimal("0.004"))  # 2,000 x 2.00

    def test_another_organizations_price_leaves_the_usage_waiting(
        self, org, other_org, django_capture_on_commit_callbacks
    ):
        waiting = ingest(org, "r-1")
        with django_capture_on_commit_callbacks(execute=True):
            prices_import(price_list=PriceListFactory(organization=other_org), entries=[entry()])
        waiting.refresh_from_db()
        assert (waiting.pricing_status, waiting.billing_cost) == (PricingStatus.UNPRICED, None)

    def test_usage_stays_unpriced_until_the_price_import_commits(
        self, org, org_list, django_capture_on_commit_callbacks
    ):
        waiting = ingest(org, "r-1")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            prices_import(price_list=org_list, entries=[entry()])
        waiting.refresh_from_db()
        assert waiting.pricing_status == PricingStatus.UNPRICED
        assert len(callbacks) == 1

    def test_usage_of_a_priced_model_is_priced_at_ingest(self, org, org_list):
        prices_import(price_list=org_list, entries=[entry(cached_input=Decimal("0.50"), cache_write=Decimal("2.50"))])
        record = ingest(
            org, "r-1", input_tokens=10_000, output_tokens=1000, cache_read_tokens=4000, cache_write_tokens=2000
        )
        # 4,000 x 2.00 + 4,000 x 0.50 + 2,000 x 2.50 + 1,000 x 8.00 = 23,000 per 1M
        assert (record.pricing_status, record.cost, record.billing_cost) == (
            PricingStatus.PRICED,
            Decimal("0.023"),
            Decimal("0.023"),
        )


class TestRerate:
    """A price corrected for a past date: finance sees the diff first, then applies it."""

    @pytest.fixture
    def priced_usage(self, org, org_list):
        prices_import(
            price_list=org_list, entries=[entry("test-model-x", "2.00", "8.00"), entry("test-model-y", "1.00", "1.00")]
        )
        return {
            "march-x": ingest(org, "march-x", timestamp="2026-03-10T12:00:00Z"),  # 0.006
            "april-x": ingest(
                org, "april-x", timestamp="2026-04-10T12:00:00Z", input_tokens=2000, output_tokens=0
            ),  # 0.004
            "april-y": ingest(
                org,
                "april-y",
                model="test-model-y",
                timestamp="2026-04-10T12:00:00Z",
                input_tokens=1000,
                output_tokens=1000,
            ),  # 0.002
        }

    @pytest.fixture
    def april_price(self, org_list, priced_usage):
        prices_import(
            price_list=org_list,
            entries=[entry("test-model-x", "3.00", "8.00")],
            effective_from=datetime(2026, 4, 1, tzinfo=UTC),
        )
        return ModelPrice.objects.get(price_list=org_list, model="test-model-x", effective_from__year=2026)

    def stored(self, org):
        return {r.request_id: (r.price_id, r.billing_cost) for r in UsageRecord.objects.for_org(org)}

    def test_a_new_price_does_not_change_usage_already_priced(self, org, priced_usage, april_price):
        assert self.stored(org)["april-x"] == (priced_usage["april-x"].price_id, Decimal("0.004"))

    def test_the_dry_run_returns_the_diff_per_model_and_writes_nothing(self, org, priced_usage, april_price):
        before = self.stored(org)
        report = usage_rerate(organization=org, dry_run=True)
        assert report.dry_run is True and report.currency == "USD"
        assert (report.examined, report.changed, report.newly_priced, report.still_unpriced) == (3, 1, 0, 0)
        # april-x: 2,000 x 3.00 per 1M = 0.006 instead of 0.004
        assert (report.old_total, report.new_total, report.delta) == (
            Decimal("0.004"),
            Decimal("0.006"),
            Decimal("0.002"),
        )
        [line] = report.lines.values()
        assert (line.provider, line.model, line.records) == ("", "test-model-x", 1)
        assert (line.old_cost, line.new_cost, line.delta) == (Decimal("0.004"), Decimal("0.006"), Decimal("0.002"))
        assert self.stored(org) == before

    def test_applying_writes_the_new_prices_and_a_second_run_finds_nothing(self, org, priced_usage, april_price):
        march_price = priced_usage["march-x"].price_id
        report = usage_rerate(organization=org, dry_run=False)
        assert (report.changed, report.old_total, report.new_total) == (1, Decimal("0.004"), Decimal("0.006"))
        stored = self.stored(org)
        assert stored["april-x"] == (april_price.pk, Decimal("0.006"))
        assert stored["march-x"] == (march_price, Decimal("0.006"))  # before the new version: unchanged
        assert stored["april-y"] == (priced_usage["april-y"].price_id, Decimal("0.002"))
        again = usage_rerate(organization=org, dry_run=False)
        assert (again.examined, again.changed, again.lines) == (3, 0, {})

    def test_a_range_re_rates_only_the_usage_inside_it(self, org, priced_usage, april_price):
        report = usage_rerate(
            organization=org,
            start=datetime(2026, 3, 1, tzinfo=UTC),
            end=datetime(2026, 4, 10, 12, 0, tzinfo=UTC),
            dry_run=False,
        )
        assert (report.examined, report.changed) == (1, 0)  # the end is exclusive: only march-x
        assert self.stored(org)["april-x"][1] == Decimal("0.004")

    def test_unpriced_usage_shows_as_newly_priced_in_the_diff(self, org, org_list, priced_usage):
        ingest(org, "r-new", model="test-model-z")
        prices_import(price_list=org_list, entries=[entry("test-model-z", "4.00", "0")])
        report = usage_rerate(organization=org, dry_run=True)
        # 1,000 x 4.00 per 1M
        assert (report.changed, report.newly_priced, report.old_total, report.new_total) == (
            1,
            1,
            Decimal("0"),
            Decimal("0.004"),
        )
        assert UsageRecord.objects.get(request_id="r-new").pricing_status == PricingStatus.UNPRICED


class TestBillingCurrency:
    """Berlin bills in EUR; prices are in USD; days are cut in Europe/Berlin (UTC+1 in March)."""

    @pytest.fixture(autouse=True)
    def usd_price(self, global_list):
        prices_import(price_list=global_list, entries=[entry()])  # 1,000 in + 500 out = 0.006 USD

    @pytest.fixture
    def rates(self, db):
        FxRateFactory(date=date(2026, 3, 1), rate=Decimal("0.90"))
        FxRateFactory(date=date(2026, 3, 2), rate=Decimal("0.95"))

    def test_the_cost_is_converted_at_the_rate_of_its_day(self, berlin_org, rates):
        # 22:30 UTC is 23:30 on 1 March in Berlin: 0.006 x 0.90
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T22:30:00Z")
        assert (record.pricing_status, record.cost, record.cost_currency) == (
            PricingStatus.PRICED,
            Decimal("0.006"),
            "USD",
        )
        assert (record.fx_rate, record.billing_cost) == (Decimal("0.90"), Decimal("0.0054"))

    def test_a_record_already_on_the_next_day_in_the_organizations_time_zone_takes_that_days_rate(
        self, berlin_org, rates
    ):
        # 23:30 UTC on 1 March is 00:30 on 2 March in Berlin: 0.006 x 0.95
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T23:30:00Z")
        assert (record.fx_rate, record.billing_cost) == (Decimal("0.95"), Decimal("0.0057"))

    def test_a_day_without_its_own_rate_takes_the_latest_one_before(self, berlin_org, rates):
        record = ingest(berlin_org, "r-1", timestamp="2026-03-20T12:00:00Z")
        assert (record.fx_rate, record.billing_cost) == (Decimal("0.95"), Decimal("0.0057"))

    def test_a_price_in_the_billing_currency_needs_no_rate(self, berlin_org):
        prices_import(price_list=PriceListFactory(organization=berlin_org), entries=[entry(currency="EUR")])
        record = ingest(berlin_org, "r-1")
        assert (record.pricing_status, record.cost_currency, record.fx_rate, record.billing_cost) == (
            PricingStatus.PRICED,
            "EUR",
            Decimal("1"),
            Decimal("0.006"),
        )

    def test_a_missing_rate_is_shown_not_guessed(self, berlin_org):
        FxRateFactory(date=date(2026, 3, 5), rate=Decimal("0.95"))  # only after the record's day
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T12:00:00Z")
        assert record.pricing_status == PricingStatus.NO_FX_RATE
        assert (record.cost, record.cost_currency) == (Decimal("0.006"), "USD")
        assert (record.fx_rate, record.billing_cost) == (None, None)

    def test_importing_the_missing_rate_converts_the_waiting_record(
        self, berlin_org, django_capture_on_commit_callbacks
    ):
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T23:30:00Z")
        assert record.pricing_status == PricingStatus.NO_FX_RATE
        with django_capture_on_commit_callbacks(execute=True):
            # the rate of 1 March does not apply: in Berlin the record is on 2 March
            fx_rates_import(rows=[fx(date(2026, 3, 1), "0.90"), fx(date(2026, 3, 2), "0.95")])
        record.refresh_from_db()
        assert (record.pricing_status, record.fx_rate, record.billing_cost) == (
            PricingStatus.PRICED,
            Decimal("0.95"),
            Decimal("0.0057"),
        )
        assert record.cost == Decimal("0.006")

    def test_a_corrected_rate_converts_the_usage_of_its_day_again(
        self, berlin_org, rates, django_capture_on_commit_callbacks
    ):
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T22:30:00Z")
        usd_elsewhere = ingest(berlin_org, "r-2", timestamp="2026-03-03T12:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            fx_rates_import(rows=[fx(date(2026, 3, 1), "0.92")])
        record.refresh_from_db()
        usd_elsewhere.refresh_from_db()
        # 0.006 x 0.92; the record of 3 March keeps the rate of 2 March
        assert (record.fx_rate, record.billing_cost) == (Decimal("0.92"), Decimal("0.00552"))
        assert (usd_elsewhere.fx_rate, usd_elsewhere.billing_cost) == (Decimal("0.95"), Decimal("0.0057"))

    def test_reconverting_without_a_new_rate_leaves_the_record_waiting(self, berlin_org):
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T12:00:00Z")
        assert usage_reconvert(organization=berlin_org) == 0
        record.refresh_from_db()
        assert (record.pricing_status, record.billing_cost) == (PricingStatus.NO_FX_RATE, None)

    def test_reconverting_after_the_rate_arrives_prices_the_waiting_record(self, berlin_org):
        record = ingest(berlin_org, "r-1", timestamp="2026-03-01T12:00:00Z")
        FxRateFactory(date=date(2026, 3, 1), rate=Decimal("0.90"))  # a row written without the import service
        assert usage_reconvert(organization=berlin_org) == 1
        record.refresh_from_db()
        assert (record.pricing_status, record.fx_rate, record.billing_cost) == (
            PricingStatus.PRICED,
            Decimal("0.90"),
            Decimal("0.0054"),
        )
        assert usage_reconvert(organization=berlin_org) == 0
