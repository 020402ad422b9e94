"""Readers of price files: LiteLLM's cost map, the price CSV and the FX CSV; they write nothing."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.pricing.importers import PriceEntry, parse_fx_csv, parse_litellm, parse_price_csv


def by_name(entries: list[PriceEntry]) -> dict[str, PriceEntry]:
    return {f"{e.provider}/{e.model}" if e.provider else e.model: e for e in entries}


class TestLiteLLMSnapshot:
    """The real community file: 4,878 keys, one of them the `sample_spec` documentation entry."""

    @pytest.fixture(scope="class")
    def parsed(self, litellm_snapshot):
        return parse_litellm(litellm_snapshot)

    @pytest.fixture(scope="class")
    def entries(self, parsed):
        return by_name(parsed.entries)

    def test_every_key_is_imported_or_skipped_and_none_is_malformed(self, parsed, litellm_snapshot):
        assert len(litellm_snapshot) == 4878
        assert parsed.errors == []
        assert len(parsed.entries) == 3882
        assert len(parsed.skipped) == 995
        assert len(parsed.entries) + len(parsed.skipped) == len(litellm_snapshot) - 1  # sample_spec

    def test_each_key_gives_one_distinct_price(self, parsed):
        assert len({(e.provider, e.model) for e in parsed.entries}) == len(parsed.entries)

    def test_a_provider_prefixed_name_carries_its_provider_and_per_million_prices(self, entries):
        flash = entries["gemini/gemini-2.5-flash"]
        assert (flash.provider, flash.model, flash.currency) == ("gemini", "gemini-2.5-flash", "USD")
        assert flash.input == Decimal("0.3")
        assert flash.cached_input == Decimal("0.03")
        assert flash.output == Decimal("2.5")
        assert flash.cache_write is None
        assert flash.long_context_threshold is None
        assert flash.source == "https://ai.google.dev/gemini-api/docs/pricing"

    def test_a_bare_name_has_no_provider(self, entries):
        gpt = entries["gpt-4o"]
        assert (gpt.provider, gpt.model) == ("", "gpt-4o")
        assert (gpt.input, gpt.cached_input, gpt.output) == (Decimal("2.5"), Decimal("1.25"), Decimal("10"))

    def test_the_bare_and_the_provider_listing_of_a_model_are_separate_prices(self, entries):
        assert entries["azure/gpt-4o"].provider == "azure"
        assert entries["azure/gpt-4o"].model == entries["gpt-4o"].model == "gpt-4o"

    def test_a_long_context_tier_is_read_with_its_threshold_and_prices(self, entries):
        pro = entries["gemini/gemini-2.5-pro"]
        assert (pro.input, pro.cached_input, pro.output) == (Decimal("1.25"), Decimal("0.125"), Decimal("10"))
        assert pro.long_context_threshold == 200_000
        assert pro.long_input == Decimal("2.5")
        assert pro.long_cached_input == Decimal("0.25")
        assert pro.long_output == Decimal("15")
        assert pro.long_cache_write is None

    def test_the_lowest_of_several_long_context_tiers_is_kept(self, entries, litellm_snapshot):
        spec = litellm_snapshot["kyma/qwen3.7-flash"]
        assert "input_cost_per_token_above_32k_tokens" in spec and "input_cost_per_token_above_256k_tokens" in spec
        assert entries["kyma/qwen3.7-flash"].long_context_threshold == 32_000

    def test_cache_write_prices_are_read(self, entries, litellm_snapshot):
        assert litellm_snapshot["claude-sonnet-4-5"]["cache_creation_input_token_cost"] == 3.75e-06
        sonnet = entries["claude-sonnet-4-5"]
        assert (sonnet.input, sonnet.cached_input, sonnet.cache_write, sonnet.output) == (
            Decimal("3"),
            Decimal("0.3"),
            Decimal("3.75"),
            Decimal("15"),
        )

    def test_float_noise_of_per_token_prices_does_not_reach_the_per_million_price(self, entries, litellm_snapshot):
        assert litellm_snapshot["novita/deepseek/deepseek-v4-pro"]["input_cost_per_token"] == 1.6000000000000001e-06
        noisy = entries["novita/deepseek/deepseek-v4-pro"]
        assert (noisy.provider, noisy.model) == ("novita", "deepseek/deepseek-v4-pro")
        assert noisy.input == Decimal("1.6")
        assert noisy.output == Decimal("3.2")

    def test_every_imported_price_fits_the_unit_price_column(self, parsed):
        # ModelPrice keeps 15 decimal places and 15 digits before the point
        for entry in parsed.entries:
            for name in (
                "input",
                "cached_input",
                "cache_write",
                "output",
                "long_input",
                "long_cached_input",
                "long_cache_write",
                "long_output",
            ):
                value = getattr(entry, name)
                if value is not None:
                    assert value >= 0 and value.as_tuple().exponent >= -15 and value < Decimal("1e15"), (entry, name)

    def test_sample_spec_is_neither_imported_nor_reported(self, parsed):
        assert "sample_spec" not in by_name(parsed.entries)
        assert not any("sample_spec" in line for line in parsed.skipped + parsed.errors)

    def test_entries_without_token_prices_are_skipped_with_their_mode_not_errors(self, parsed, litellm_snapshot):
        key = "1024-x-1024/50-steps/bedrock/amazon.nova-canvas-v1:0"
        assert "input_cost_per_token" not in litellm_snapshot[key]
        assert f"{key}: no per-token input and output price (image_generation)" in parsed.skipped
        # an image model priced per input token but not per output token is not a token price either
        assert "output_cost_per_token" not in litellm_snapshot["azure/gpt-image-1"]
        assert "azure/gpt-image-1: no per-token input and output price (image_generation)" in parsed.skipped


class TestLiteLLMMalformed:
    GOOD = {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06}

    def test_malformed_entries_are_errors_naming_their_key_and_the_rest_is_imported(self):
        parsed = parse_litellm(
            {
                "test-good": self.GOOD,
                "test-not-an-object": "2e-06",
                "test/bad-number": {"input_cost_per_token": "two", "output_cost_per_token": 8e-06},
                "test-null-price": {"input_cost_per_token": None, "output_cost_per_token": 8e-06},
                "test-negative": {"input_cost_per_token": -2e-06, "output_cost_per_token": 8e-06},
                "test/": self.GOOD,
                "test-bad-long-tier": {**self.GOOD, "input_cost_per_token_above_200k_tokens": "lots"},
            }
        )
        assert parsed.errors == [
            "test-not-an-object: not an object",
            "test/bad-number: not a number",
            "test-null-price: not a number",
            "test-negative: negative price",
            "test/: empty model name",
            "test-bad-long-tier: not a number",
        ]
        assert [(e.model, e.input, e.output) for e in parsed.entries] == [("test-good", Decimal("2"), Decimal("8"))]
        assert parsed.skipped == []

    @pytest.mark.parametrize(
        "field",
        [
            "cache_read_input_token_cost",
            "cache_creation_input_token_cost",
            "input_cost_per_token_above_200k_tokens",
            "output_cost_per_token_above_200k_tokens",
        ],
    )
    def test_a_negative_cache_or_long_context_price_is_an_error(self, field):
        spec = {**self.GOOD, "input_cost_per_token_above_200k_tokens": 4e-06, field: -1e-07}
        parsed = parse_litellm({"test-model-x": spec})
        assert parsed.errors == ["test-model-x: negative price"]
        assert parsed.entries == []

    def test_a_file_that_is_not_an_object_of_models_is_one_error(self):
        parsed = parse_litellm(["gpt-4o"])
        assert parsed.errors == ["The file is not a JSON object of models."]
        assert parsed.entries == []

    def test_a_long_tier_without_its_own_output_price_keeps_the_base_output_price(self):
        parsed = parse_litellm({"test-model-x": {**self.GOOD, "input_cost_per_token_above_128k_tokens": 4e-06}})
        [entry] = parsed.entries
        assert (entry.long_context_threshold, entry.long_input, entry.long_output) == (
            128_000,
            Decimal("4"),
            Decimal("8"),
        )

    def test_prices_given_as_strings_are_read_exactly(self):
        parsed = parse_litellm(
            {"test-model-x": {"input_cost_per_token": "0.00000015", "output_cost_per_token": "6e-7"}}
        )
        [entry] = parsed.entries
        assert (entry.input, entry.output) == (Decimal("0.15"), Decimal("0.6"))


CSV_HEADER = ",".join(
    (
        "provider",
        "model",
        "match_pattern",
        "currency",
        "input_per_1m",
        "cached_input_per_1m",
        "cache_write_per_1m",
        "output_per_1m",
        "long_context_threshold",
        "long_input_per_1m",
        "long_cached_input_per_1m",
        "long_cache_write_per_1m",
        "long_output_per_1m",
        "effective_from",
        "effective_to",
        "source",
    )
)


class TestPriceCsv:
    def test_every_column_is_read(self):
        text = (
            CSV_HEADER
            + "\n"
            + (
                r"Azure,test-model-x,test-model-x-\d{4},EUR,1.25,0.125,1.5625,10,200000,2.50,0.25,3.125,15,"
                "2026-03-01T00:00:00+01:00,2026-06-01T00:00:00Z,contract 42\n"
            )
        )
        parsed = parse_price_csv(text)
        assert parsed.errors == []
        assert parsed.entries == [
            PriceEntry(
                provider="azure",
                model="test-model-x",
                match_pattern=r"test-model-x-\d{4}",
                currency="EUR",
                input=Decimal("1.25"),
                cached_input=Decimal("0.125"),
                cache_write=Decimal("1.5625"),
                output=Decimal("10"),
                long_context_threshold=200_000,
                long_input=Decimal("2.50"),
                long_cached_input=Decimal("0.25"),
                long_cache_write=Decimal("3.125"),
                long_output=Decimal("15"),
                effective_from=datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=1))),
                effective_to=datetime(2026, 6, 1, tzinfo=UTC),
                source="contract 42",
            )
        ]

    def test_the_three_required_columns_are_enough_and_the_currency_defaults_to_usd(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m\ntest-model-x,2.00,8.00\n")
        assert parsed.errors == []
        assert parsed.entries == [PriceEntry(model="test-model-x", input=Decimal("2.00"), output=Decimal("8.00"))]

    def test_a_provider_prefixed_model_name_carries_its_provider(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m\nGemini/test-model-x,0.30,2.50\n")
        [entry] = parsed.entries
        assert (entry.provider, entry.model) == ("gemini", "test-model-x")

    def test_a_plain_date_means_midnight_utc(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m,effective_from\ntest-model-x,2,8,2026-03-01\n")
        assert parsed.errors == []
        assert parsed.entries[0].effective_from == datetime(2026, 3, 1, tzinfo=UTC)

    def test_a_plain_date_means_midnight_in_the_time_zone_of_the_lists_organization(self):
        text = "model,input_per_1m,output_per_1m,effective_from,effective_to\ntest-model-x,2,8,2026-03-01,2026-07-01\n"
        [entry] = parse_price_csv(text, tz=ZoneInfo("Europe/Berlin")).entries
        assert entry.effective_from == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # UTC+1 in winter
        assert entry.effective_to == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # UTC+2 in summer

    def test_a_time_with_an_offset_is_kept_whatever_the_time_zone(self):
        text = "model,input_per_1m,output_per_1m,effective_from\ntest-model-x,2,8,2026-03-01T06:00:00Z\n"
        [entry] = parse_price_csv(text, tz=ZoneInfo("Europe/Berlin")).entries
        assert entry.effective_from == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)

    def test_spaces_around_headers_and_values_are_ignored(self):
        parsed = parse_price_csv(" model , input_per_1m , output_per_1m \n test-model-x , 2.00 , 8.00 \n")
        assert parsed.errors == []
        assert parsed.entries == [PriceEntry(model="test-model-x", input=Decimal("2.00"), output=Decimal("8.00"))]

    def test_a_missing_required_column_is_a_header_error_naming_it(self):
        parsed = parse_price_csv("model,input_per_1m\ntest-model-x,2.00\n")
        assert parsed.errors == ["header: missing column(s) output_per_1m"]
        assert parsed.entries == []

    def test_an_unknown_column_is_a_header_error_naming_it(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m,colour\ntest-model-x,2.00,8.00,red\n")
        [error] = parsed.errors
        assert error.startswith("header: unknown column(s) colour; known: provider, model, ")
        assert parsed.entries == []

    @pytest.mark.parametrize(
        ("columns", "values", "error"),
        [
            ("model,input_per_1m,output_per_1m", ",2,8", "model: required"),
            ("model,input_per_1m,output_per_1m", "test-model-x,,8", "input_per_1m: required"),
            ("model,input_per_1m,output_per_1m", "test-model-x,two,8", "input_per_1m: 'two' is not a number"),
            ("model,input_per_1m,output_per_1m", "test-model-x,2,NaN", "output_per_1m: 'NaN' is not a number"),
            ("model,input_per_1m,output_per_1m", "test-model-x,2,-8", "output_per_1m: must not be negative"),
            (
                "model,input_per_1m,output_per_1m,cached_input_per_1m",
                "test-model-x,2,8,-0.5",
                "cached_input_per_1m: must not be negative",
            ),
            (
                "model,input_per_1m,output_per_1m",
                "test-model-x,2.0000000000000001,8",
                "input_per_1m: '2.0000000000000001' has more than 15 decimal places",
            ),
            (
                "model,input_per_1m,output_per_1m,currency",
                "test-model-x,2,8,usd",
                "currency: 'usd' is not an ISO 4217 code",
            ),
            (
                "model,input_per_1m,output_per_1m,currency",
                "test-model-x,2,8,EURO",
                "currency: 'EURO' is not an ISO 4217 code",
            ),
            (
                "model,input_per_1m,output_per_1m,effective_from",
                "test-model-x,2,8,yesterday",
                "effective_from: 'yesterday' is not a date (YYYY-MM-DD) or RFC 3339 time",
            ),
            (
                "model,input_per_1m,output_per_1m,effective_from",
                "test-model-x,2,8,2026-02-30",
                "effective_from: '2026-02-30' is not a date (YYYY-MM-DD) or RFC 3339 time",
            ),
            (
                "model,input_per_1m,output_per_1m,effective_to",
                "test-model-x,2,8,2026-03-01T25:00:00Z",
                "effective_to: '2026-03-01T25:00:00Z' is not a date (YYYY-MM-DD) or RFC 3339 time",
            ),
            (
                "model,input_per_1m,output_per_1m,effective_from",
                "test-model-x,2,8,2026-03-01T10:00:00",
                "effective_from: '2026-03-01T10:00:00' needs a UTC offset",
            ),
            (
                "model,input_per_1m,output_per_1m,effective_from,effective_to",
                "test-model-x,2,8,2026-03-01,2026-03-01",
                "effective_to must be after effective_from",
            ),
            (
                "model,input_per_1m,output_per_1m,long_context_threshold,long_input_per_1m",
                "test-model-x,2,8,200000,4",
                "long_context_threshold needs long_input_per_1m and long_output_per_1m",
            ),
            (
                "model,input_per_1m,output_per_1m,long_context_threshold,long_output_per_1m",
                "test-model-x,2,8,200000,16",
                "long_context_threshold needs long_input_per_1m and long_output_per_1m",
            ),
            (
                "model,input_per_1m,output_per_1m,long_context_threshold",
                "test-model-x,2,8,200k",
                "long_context_threshold: '200k' is not a whole number",
            ),
        ],
    )
    def test_a_bad_value_is_an_error_naming_its_line_and_column(self, columns, values, error):
        parsed = parse_price_csv(f"{columns}\n{values}\n")
        assert parsed.errors == [f"line 2: {error}"]
        assert parsed.entries == []

    def test_a_bad_pattern_is_an_error_naming_its_line_and_column(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m,match_pattern\ntest-model-x,2,8,test-(x\n")
        [error] = parsed.errors
        assert error.startswith("line 2: match_pattern: not a regular expression (missing ), unterminated subpattern")
        assert parsed.entries == []

    def test_each_bad_line_is_reported_with_its_own_number_and_good_lines_are_kept(self):
        text = (
            "model,input_per_1m,output_per_1m\n"
            "test-model-a,2,8\n"
            "test-model-b,x,8\n"
            "test-model-c,1,2\n"
            "test-model-d,1,-2\n"
        )
        parsed = parse_price_csv(text)
        assert parsed.errors == [
            "line 3: input_per_1m: 'x' is not a number",
            "line 5: output_per_1m: must not be negative",
        ]
        assert [e.model for e in parsed.entries] == ["test-model-a", "test-model-c"]

    def test_line_numbers_count_blank_lines(self):
        parsed = parse_price_csv("model,input_per_1m,output_per_1m\ntest-model-a,2,8\n\n\ntest-model-b,x,8\n")
        assert parsed.errors == ["line 5: input_per_1m: 'x' is not a number"]


FX_HEADER = "date,from,to,rate,source\n"


class TestFxCsv:
    def test_rows_are_read_with_currencies_in_upper_case(self):
        rows, errors = parse_fx_csv(FX_HEADER + "2026-03-02,usd,eur,0.92,ECB\n2026-03-03,USD,EUR,0.9215,\n")
        assert errors == []
        assert rows == [
            {
                "date": date(2026, 3, 2),
                "from_currency": "USD",
                "to_currency": "EUR",
                "rate": Decimal("0.92"),
                "source": "ECB",
            },
            {
                "date": date(2026, 3, 3),
                "from_currency": "USD",
                "to_currency": "EUR",
                "rate": Decimal("0.9215"),
                "source": "",
            },
        ]

    def test_the_source_column_is_optional(self):
        rows, errors = parse_fx_csv("date,from,to,rate\n2026-03-02,USD,EUR,0.92\n")
        assert errors == [] and rows[0]["source"] == ""

    def test_a_missing_column_is_a_header_error_naming_it(self):
        rows, errors = parse_fx_csv("date,from,to,source\n2026-03-02,USD,EUR,ECB\n")
        assert errors == ["header: missing column(s) rate; expected date, from, to, rate, source"]
        assert rows == []

    @pytest.mark.parametrize(
        ("values", "error"),
        [
            ("03/02/2026,USD,EUR,0.92", "date: expected YYYY-MM-DD"),
            ("2026-02-30,USD,EUR,0.92", "date: expected YYYY-MM-DD"),
            (",USD,EUR,0.92", "date: expected YYYY-MM-DD"),
            ("2026-03-02,US,EUR,0.92", "from: 'US' is not an ISO 4217 code"),
            ("2026-03-02,USD,EURO,0.92", "to: 'EURO' is not an ISO 4217 code"),
            ("2026-03-02,USD,EUR,abc", "rate: expected a positive number"),
            ("2026-03-02,USD,EUR,0", "rate: expected a positive number"),
            ("2026-03-02,USD,EUR,-0.92", "rate: expected a positive number"),
            ("2026-03-02,USD,EUR,", "rate: expected a positive number"),
        ],
    )
    def test_a_bad_value_is_an_error_naming_its_line_and_column(self, values, error):
        rows, errors = parse_fx_csv(f"{FX_HEADER}{values},ECB\n")
        assert errors == [f"line 2: {error}"]
        assert rows == []

    def test_every_problem_of_a_line_is_reported_together(self):
        rows, errors = parse_fx_csv(FX_HEADER + "2026-03-02,USD,EUR,0.92,ECB\n03/03/2026,usd,eu,0,ECB\n")
        assert errors == [
            "line 3: date: expected YYYY-MM-DD; to: 'EU' is not an ISO 4217 code; rate: expected a positive number"
        ]
        assert [row["date"] for row in rows] == [date(2026, 3, 2)]

    def test_line_numbers_count_blank_lines(self):
        rows, errors = parse_fx_csv(FX_HEADER + "2026-03-02,USD,EUR,0.92,ECB\n\n2026-03-03,USD,EUR,zero,ECB\n")
        assert errors == ["line 4: rate: expected a positive number"]
