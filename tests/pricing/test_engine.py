"""The cost formula, the price book's lookup order and the FX table (PRODUCT.md section 3)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.pricing.engine import UnitPrices, compute_cost
from apps.pricing.models import ModelPrice
from apps.pricing.selectors import fx_table, price_book_for
from apps.pricing.services import pricing_revision_bump
from tests.factories import FxRateFactory, ModelPriceFactory, PriceListFactory

# Claude-Sonnet-like prices per 1M tokens: every token class has its own price.
SONNET = UnitPrices(
    id=1,
    currency="USD",
    input=Decimal("3.00"),
    cached_input=Decimal("0.30"),
    cache_write=Decimal("3.75"),
    output=Decimal("15.00"),
)
# Gemini-2.5-Pro-like prices with a long-context tier above 200k input tokens.
LONG = UnitPrices(
    id=2,
    currency="USD",
    input=Decimal("1.25"),
    cached_input=Decimal("0.125"),
    cache_write=None,
    output=Decimal("10.00"),
    long_context_threshold=200_000,
    long_input=Decimal("2.50"),
    long_cached_input=Decimal("0.25"),
    long_cache_write=None,
    long_output=Decimal("15.00"),
)

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class TestComputeCost:
    def test_uncached_input_tokens_are_priced_at_the_input_price(self):
        # 1,000 x 3.00 / 1M
        assert compute_cost(SONNET, input_tokens=1000, output_tokens=0) == Decimal("0.003")

    def test_cache_reads_are_priced_at_the_cached_input_price(self):
        # input counts the cache reads: 1,000 read x 0.30 / 1M, nothing uncached
        assert compute_cost(SONNET, input_tokens=1000, output_tokens=0, cache_read_tokens=1000) == Decimal("0.0003")

    def test_cache_writes_are_priced_at_the_cache_write_price(self):
        # 1,000 written x 3.75 / 1M
        assert compute_cost(SONNET, input_tokens=1000, output_tokens=0, cache_write_tokens=1000) == Decimal("0.00375")

    def test_output_tokens_are_priced_at_the_output_price(self):
        # 2,000 x 15.00 / 1M
        assert compute_cost(SONNET, input_tokens=0, output_tokens=2000) == Decimal("0.03")

    def test_cache_reads_and_writes_are_taken_out_of_the_input_before_pricing_it(self):
        # uncached 10,000 - 6,000 - 1,000 = 3,000 x 3.00 = 9,000
        # read 6,000 x 0.30 = 1,800; write 1,000 x 3.75 = 3,750; output 500 x 15.00 = 7,500
        # (9,000 + 1,800 + 3,750 + 7,500) / 1M = 0.02205
        cost = compute_cost(
            SONNET, input_tokens=10_000, output_tokens=500, cache_read_tokens=6000, cache_write_tokens=1000
        )
        assert cost == Decimal("0.02205")

    def test_cache_reads_without_a_cached_price_cost_the_input_price(self):
        prices = UnitPrices(
            id=1,
            currency="USD",
            input=Decimal("3.00"),
            cached_input=None,
            cache_write=Decimal("3.75"),
            output=Decimal("15.00"),
        )
        # 600 uncached + 400 read, all at 3.00: 1,000 x 3.00 / 1M
        assert compute_cost(prices, input_tokens=1000, output_tokens=0, cache_read_tokens=400) == Decimal("0.003")

    def test_cache_writes_without_a_cache_write_price_cost_the_input_price(self):
        prices = UnitPrices(
            id=1,
            currency="USD",
            input=Decimal("3.00"),
            cached_input=Decimal("0.30"),
            cache_write=None,
            output=Decimal("15.00"),
        )
        # 600 uncached + 400 written, all at 3.00: 1,000 x 3.00 / 1M
        assert compute_cost(prices, input_tokens=1000, output_tokens=0, cache_write_tokens=400) == Decimal("0.003")

    def test_a_cost_keeps_twelve_decimal_places(self):
        prices = UnitPrices(
            id=1, currency="USD", input=Decimal("0.123456789"), cached_input=None, cache_write=None, output=Decimal("0")
        )
        # 7 x 0.123456789 / 1M = 0.000000864197523 -> 12 places: 0.000000864198
        cost = compute_cost(prices, input_tokens=7, output_tokens=0)
        assert cost == Decimal("0.000000864198")
        assert cost.as_tuple().exponent == -12

    def test_a_call_without_tokens_costs_zero(self):
        assert compute_cost(SONNET, input_tokens=0, output_tokens=0) == Decimal("0")


class TestLongContextTier:
    def test_above_the_threshold_every_token_is_priced_at_the_long_prices(self):
        # uncached 200,001 - 100,000 = 100,001 x 2.50 = 250,002.5; read 100,000 x 0.25 = 25,000;
        # output 1,000 x 15.00 = 15,000 -> 290,002.5 / 1M
        cost = compute_cost(LONG, input_tokens=200_001, output_tokens=1000, cache_read_tokens=100_000)
        assert cost == Decimal("0.2900025")

    def test_exactly_at_the_threshold_the_base_prices_apply(self):
        # uncached 100,000 x 1.25 = 125,000; read 100,000 x 0.125 = 12,500; output 1,000 x 10.00 = 10,000
        cost = compute_cost(LONG, input_tokens=200_000, output_tokens=1000, cache_read_tokens=100_000)
        assert cost == Decimal("0.1475")

    def test_above_the_threshold_missing_long_cache_prices_fall_back_to_the_long_input_price(self):
        prices = UnitPrices(
            id=3,
            currency="USD",
            input=Decimal("1.25"),
            cached_input=Decimal("0.125"),
            cache_write=Decimal("1.50"),
            output=Decimal("10.00"),
            long_context_threshold=200_000,
            long_input=Decimal("2.50"),
            long_cached_input=None,
            long_cache_write=None,
            long_output=Decimal("15.00"),
        )
        # uncached 150,000, read 100,000 and written 50,000 all at 2.50 = 750,000 / 1M
        cost = compute_cost(
            prices, input_tokens=300_000, output_tokens=0, cache_read_tokens=100_000, cache_write_tokens=50_000
        )
        assert cost == Decimal("0.75")


def lookup(organization, model, provider="", at=AT):
    prices = price_book_for(organization=organization).lookup(provider=provider, model=model, at=at)
    return None if prices is None else prices.id


class TestPriceBookLookup:
    def test_the_organizations_own_list_wins_over_the_global_list(self, org):
        ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x", input_price="2.00")
        own = ModelPriceFactory(price_list=PriceListFactory(organization=org), model="test-model-x", input_price="1.50")
        assert lookup(org, "test-model-x") == own.pk

    def test_the_global_list_applies_when_the_organization_has_no_price(self, org):
        global_price = ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x")
        ModelPriceFactory(price_list=PriceListFactory(organization=org), model="test-model-y")
        assert lookup(org, "test-model-x") == global_price.pk

    def test_another_organizations_negotiated_price_never_applies(self, org, other_org):
        global_price = ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x", input_price="2.00")
        ModelPriceFactory(price_list=PriceListFactory(organization=other_org), model="test-model-x", input_price="0.10")
        ModelPriceFactory(price_list=PriceListFactory(organization=other_org), model="test-model-only-globex")
        assert lookup(org, "test-model-x") == global_price.pk
        assert lookup(org, "test-model-only-globex") is None

    def test_the_organizations_list_wins_even_over_a_newer_global_version(self, org):
        own = ModelPriceFactory(price_list=PriceListFactory(organization=org), model="test-model-x")
        ModelPriceFactory(
            price_list=PriceListFactory(), model="test-model-x", effective_from=datetime(2026, 4, 1, tzinfo=UTC)
        )
        assert lookup(org, "test-model-x") == own.pk

    def test_the_organizations_pattern_wins_over_a_global_exact_name(self, org):
        ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x-2026-04-01")
        own = ModelPriceFactory(
            price_list=PriceListFactory(organization=org),
            model="test-model-x",
            match_pattern=r"test-model-x-\d{4}-\d{2}-\d{2}",
        )
        assert lookup(org, "test-model-x-2026-04-01") == own.pk

    def test_an_exact_name_wins_over_a_pattern_that_also_matches(self, org):
        price_list = PriceListFactory()
        family = ModelPriceFactory(price_list=price_list, model="test-family", match_pattern=r"test-model-.*")
        exact = ModelPriceFactory(price_list=price_list, model="test-model-x")
        assert lookup(org, "test-model-x") == exact.pk
        assert lookup(org, "test-model-y") == family.pk

    def test_a_pattern_must_match_the_whole_model_name(self, org):
        snapshot = ModelPriceFactory(
            price_list=PriceListFactory(), model="test-model-x", match_pattern=r"test-model-x-\d{4}-\d{2}-\d{2}"
        )
        assert lookup(org, "test-model-x-2026-04-01") == snapshot.pk
        assert lookup(org, "test-model-x-2026-04-01-preview") is None
        assert lookup(org, "my-test-model-x-2026-04-01") is None

    def test_names_and_patterns_match_regardless_of_case(self, org):
        price = ModelPriceFactory(
            price_list=PriceListFactory(), model="test-model-x", match_pattern=r"test-model-x-\d{4}-\d{2}-\d{2}"
        )
        assert lookup(org, "Test-Model-X") == price.pk
        assert lookup(org, "TEST-MODEL-X-2026-04-01") == price.pk

    @pytest.fixture
    def per_provider(self, db):
        price_list = PriceListFactory()
        return {
            provider: ModelPriceFactory(
                price_list=price_list, provider=provider, model="test-model-x", input_price=price
            )
            for provider, price in (("", "2.00"), ("azure", "2.20"), ("novita", "1.80"))
        }

    def test_a_record_naming_its_provider_gets_that_providers_price(self, org, per_provider):
        assert lookup(org, "test-model-x", provider="azure") == per_provider["azure"].pk
        assert lookup(org, "test-model-x", provider="novita") == per_provider["novita"].pk

    def test_the_provider_matches_regardless_of_case(self, org, per_provider):
        assert lookup(org, "test-model-x", provider="Azure") == per_provider["azure"].pk

    def test_a_record_without_provider_gets_the_bare_name_price(self, org, per_provider):
        assert lookup(org, "test-model-x", provider="") == per_provider[""].pk

    def test_a_provider_without_its_own_price_falls_back_to_the_bare_listing(self, org, per_provider):
        assert lookup(org, "test-model-x", provider="deepinfra") == per_provider[""].pk

    def test_a_record_without_provider_never_gets_a_provider_specific_price(self, org):
        ModelPriceFactory(price_list=PriceListFactory(), provider="azure", model="test-model-x")
        assert lookup(org, "test-model-x", provider="") is None
        assert lookup(org, "test-model-x", provider="openai") is None


class TestPriceVersions:
    BOUNDARY = datetime(2026, 3, 1, tzinfo=UTC)

    @pytest.fixture
    def versions(self, db):
        price_list = PriceListFactory()
        first = ModelPriceFactory(price_list=price_list, model="test-model-x", input_price="2.00")
        second = ModelPriceFactory(
            price_list=price_list, model="test-model-x", input_price="1.00", effective_from=self.BOUNDARY
        )
        return first, second

    def test_a_record_one_microsecond_before_the_new_version_gets_the_old_price(self, org, versions):
        assert lookup(org, "test-model-x", at=self.BOUNDARY - timedelta(microseconds=1)) == versions[0].pk

    def test_a_record_at_the_start_of_the_new_version_gets_the_new_price(self, org, versions):
        assert lookup(org, "test-model-x", at=self.BOUNDARY) == versions[1].pk
        assert lookup(org, "test-model-x", at=AT) == versions[1].pk

    def test_the_boundary_is_an_instant_whatever_the_records_time_zone(self, org, versions):
        berlin = ZoneInfo("Europe/Berlin")
        # 00:30 in Berlin on 1 March is still 28 February 23:30 UTC: the old price
        assert lookup(org, "test-model-x", at=datetime(2026, 3, 1, 0, 30, tzinfo=berlin)) == versions[0].pk
        assert lookup(org, "test-model-x", at=datetime(2026, 3, 1, 1, 0, tzinfo=berlin)) == versions[1].pk

    def test_a_version_starting_later_does_not_apply_before_its_start(self, org):
        ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x", effective_from=self.BOUNDARY)
        assert lookup(org, "test-model-x", at=self.BOUNDARY - timedelta(microseconds=1)) is None

    def test_effective_to_is_exclusive(self, org):
        price = ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x", effective_to=self.BOUNDARY)
        assert lookup(org, "test-model-x", at=self.BOUNDARY - timedelta(microseconds=1)) == price.pk
        assert lookup(org, "test-model-x", at=self.BOUNDARY) is None

    def test_an_expired_negotiated_price_falls_back_to_the_global_list(self, org):
        global_price = ModelPriceFactory(price_list=PriceListFactory(), model="test-model-x")
        own = ModelPriceFactory(
            price_list=PriceListFactory(organization=org), model="test-model-x", effective_to=self.BOUNDARY
        )
        assert lookup(org, "test-model-x", at=self.BOUNDARY - timedelta(microseconds=1)) == own.pk
        assert lookup(org, "test-model-x", at=self.BOUNDARY) == global_price.pk

    def test_a_cached_price_book_is_rebuilt_when_a_price_is_added(self, org):
        price_list = PriceListFactory()
        ModelPriceFactory(price_list=price_list, model="test-model-x", input_price="2.00")
        assert lookup(org, "test-model-y") is None
        added = ModelPriceFactory(price_list=price_list, model="test-model-y")
        assert lookup(org, "test-model-y") == added.pk


class TestFxTable:
    @pytest.fixture(autouse=True)
    def rates(self, db):
        FxRateFactory(date=date(2026, 3, 2), from_currency="USD", to_currency="EUR", rate=Decimal("0.92"))
        FxRateFactory(date=date(2026, 3, 4), from_currency="USD", to_currency="EUR", rate=Decimal("0.93"))

    def rate(self, from_currency, to_currency, on):
        return fx_table().rate(from_currency=from_currency, to_currency=to_currency, on=on)

    def test_the_rate_of_the_day_applies(self):
        assert self.rate("USD", "EUR", date(2026, 3, 2)) == Decimal("0.92")
        assert self.rate("USD", "EUR", date(2026, 3, 4)) == Decimal("0.93")

    def test_a_day_without_a_rate_takes_the_latest_rate_before_it(self):
        assert self.rate("USD", "EUR", date(2026, 3, 3)) == Decimal("0.92")
        assert self.rate("USD", "EUR", date(2026, 12, 31)) == Decimal("0.93")

    def test_there_is_no_rate_before_the_first_one(self):
        assert self.rate("USD", "EUR", date(2026, 3, 1)) is None

    def test_a_rate_is_not_inverted_for_the_other_direction(self):
        assert self.rate("EUR", "USD", date(2026, 3, 4)) is None

    def test_the_same_currency_converts_at_one_without_any_rate(self):
        assert self.rate("EUR", "EUR", date(2000, 1, 1)) == Decimal(1)
        assert self.rate("JPY", "JPY", date(2026, 3, 3)) == Decimal(1)


class TestTwoGlobalLists:
    """The shipped default list and an imported LiteLLM list both price many models from the epoch."""

    def test_the_price_created_last_wins_whatever_order_the_rows_are_stored_in(self, org):
        first = ModelPriceFactory(price_list=PriceListFactory(name="default"), model="test-model-x", input_price="2.00")
        last = ModelPriceFactory(price_list=PriceListFactory(name="imported"), model="test-model-x", input_price="3.00")
        assert lookup(org, "test-model-x") == last.pk
        # an UPDATE rewrites a row at the end of the table, which changes the order PostgreSQL returns ties in
        for price in (first, last, first):
            ModelPrice.objects.filter(pk=price.pk).update(source=f"touched {price.pk}")
            pricing_revision_bump()
            assert lookup(org, "test-model-x") == last.pk

    def test_a_newer_version_in_either_list_still_wins_over_the_tie_break(self, org):
        older_list = PriceListFactory(name="default")
        ModelPriceFactory(price_list=PriceListFactory(name="imported"), model="test-model-x")
        newer = ModelPriceFactory(
            price_list=older_list, model="test-model-x", effective_from=datetime(2026, 3, 1, tzinfo=UTC)
        )
        assert lookup(org, "test-model-x") == newer.pk


def test_a_model_named_provider_slash_model_without_provider_uses_that_providers_price():
    from datetime import UTC, datetime
    from decimal import Decimal

    from apps.pricing.engine import PriceBook

    row = {
        "id": 1,
        "organization_id": None,
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "match_pattern": "",
        "currency": "USD",
        "input_price": Decimal("0.30"),
        "cached_input_price": None,
        "cache_write_price": None,
        "output_price": Decimal("2.50"),
        "long_context_threshold": None,
        "long_input_price": None,
        "long_cached_input_price": None,
        "long_cache_write_price": None,
        "long_output_price": None,
        "effective_from": datetime(1970, 1, 1, tzinfo=UTC),
        "effective_to": None,
    }
    book = PriceBook([row])
    at = datetime(2026, 3, 1, tzinfo=UTC)
    assert book.lookup(provider="", model="gemini/gemini-2.5-flash", at=at).id == 1
    assert book.lookup(provider="", model="gemini-2.5-flash", at=at) is None
    assert book.lookup(provider="", model="other/gemini-2.5-flash", at=at) is None
