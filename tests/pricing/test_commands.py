"""import_prices and import_fx_rates as the operator runs them (PRODUCT.md section 12)."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from apps.pricing.models import PRICING_EPOCH, FxRate, ModelPrice, PriceList
from apps.pricing.selectors import price_book_for, pricing_revision
from tests.factories import FxRateFactory

LITELLM_LIST = "LiteLLM community prices"
CSV_LIST = "Imported prices"


def run(command, *args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def write(tmp_path):
    def write(name: str, content) -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write


def litellm(input_per_token=2e-06, output_per_token=8e-06, **extra) -> dict:
    return {"input_cost_per_token": input_per_token, "output_cost_per_token": output_per_token, "mode": "chat", **extra}


class TestImportPricesLiteLLM:
    def test_the_community_file_fills_a_global_list_and_a_second_run_is_a_no_op(self, db, litellm_snapshot_path):
        out, err = run("import_prices", litellm_snapshot_path, format="litellm")

        assert out.splitlines()[0] == (
            f"{LITELLM_LIST}: 3882 new price(s), 0 corrected, 0 unchanged; "
            "995 entries without token prices skipped, 0 malformed."
        )
        assert err == ""
        price_list = PriceList.objects.get(name=LITELLM_LIST)
        assert price_list.organization is None
        prices = ModelPrice.objects.filter(price_list=price_list)
        assert prices.count() == 3882
        assert not prices.exclude(effective_from=PRICING_EPOCH).exists()  # first prices cover all usage
        flash = prices.get(provider="gemini", model="gemini-2.5-flash")
        assert (flash.input_price, flash.cached_input_price, flash.output_price, flash.organization) == (
            Decimal("0.3"),
            Decimal("0.03"),
            Decimal("2.5"),
            None,
        )
        pro = prices.get(provider="gemini", model="gemini-2.5-pro")
        assert (pro.long_context_threshold, pro.long_input_price, pro.long_output_price) == (
            200_000,
            Decimal("2.5"),
            Decimal("15"),
        )
        assert prices.get(provider="", model="gpt-4o").input_price == Decimal("2.5")
        assert prices.get(provider="novita", model="deepseek/deepseek-v4-pro").input_price == Decimal("1.6")

        rows = set(prices.values_list("pk", "updated_at"))
        revision = pricing_revision()
        again, _ = run("import_prices", litellm_snapshot_path, format="litellm")
        assert again.strip() == (
            f"{LITELLM_LIST}: 0 new price(s), 0 corrected, 3882 unchanged; "
            "995 entries without token prices skipped, 0 malformed."
        )
        assert set(prices.values_list("pk", "updated_at")) == rows
        assert pricing_revision() == revision

    def test_org_puts_the_prices_into_that_organizations_list_only(self, org, other_org, write):
        path = write("prices.json", {"test-model-x": litellm(), "acme-gw/test-model-y": litellm(1e-06, 1e-06)})
        global_prices = ModelPrice.objects.filter(organization=None).count()

        out, _ = run("import_prices", path, org="acme")

        assert out.splitlines()[0].startswith(f"{LITELLM_LIST} (acme): 2 new price(s), 0 corrected, 0 unchanged;")
        price_list = PriceList.objects.get(name=LITELLM_LIST)
        assert price_list.organization == org
        assert set(
            ModelPrice.objects.filter(price_list=price_list).values_list("organization", "provider", "model")
        ) == {(org.pk, "", "test-model-x"), (org.pk, "acme-gw", "test-model-y")}
        assert ModelPrice.objects.filter(organization=None).count() == global_prices
        at = datetime(2026, 3, 1, tzinfo=UTC)
        assert price_book_for(organization=org).lookup(provider="", model="test-model-x", at=at).input == Decimal("2")
        assert price_book_for(organization=other_org).lookup(provider="", model="test-model-x", at=at) is None

    def test_effective_from_starts_a_changed_price_at_midnight_utc_of_that_day(self, db, write):
        run("import_prices", write("v1.json", {"test-model-x": litellm(2e-06)}))

        out, _ = run(
            "import_prices", write("v2.json", {"test-model-x": litellm(1.75e-06)}), effective_from="2026-03-01"
        )

        versions = ModelPrice.objects.filter(model="test-model-x").order_by("effective_from")
        assert list(versions.values_list("effective_from", "input_price")) == [
            (PRICING_EPOCH, Decimal("2")),
            (datetime(2026, 3, 1, tzinfo=UTC), Decimal("1.75")),
        ]
        assert "1 new price(s)" in out
        assert "manage.py rerate_usage ORG --start 2026-03-01 shows the diff." in out

    def test_effective_from_is_midnight_in_the_organizations_time_zone(self, berlin_org, write):
        run("import_prices", write("v1.json", {"test-model-x": litellm(2e-06)}), org="berlin")
        run(
            "import_prices",
            write("v2.json", {"test-model-x": litellm(1.75e-06)}),
            org="berlin",
            effective_from="2026-03-01",
        )
        newest = ModelPrice.objects.filter(model="test-model-x").order_by("-effective_from").first()
        assert newest.effective_from == datetime(2026, 3, 1, tzinfo=ZoneInfo("Europe/Berlin"))
        assert newest.effective_from == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)

    @pytest.mark.parametrize("day", ["1 March 2026", "2026-02-30"])
    def test_a_bad_effective_from_is_refused_and_nothing_is_stored(self, db, write, day):
        path = write("prices.json", {"test-model-x": litellm()})
        with pytest.raises(CommandError, match=r"--effective-from takes a date, YYYY-MM-DD\."):
            run("import_prices", path, effective_from=day)
        assert not ModelPrice.objects.filter(model="test-model-x").exists()

    def test_an_unknown_organization_is_refused_and_nothing_is_stored(self, db, write):
        path = write("prices.json", {"test-model-x": litellm()})
        with pytest.raises(CommandError, match=r"No organization 'nope'\."):
            run("import_prices", path, org="nope")
        assert not ModelPrice.objects.filter(model="test-model-x").exists()

    def test_a_file_that_is_not_json_is_refused(self, db, write):
        with pytest.raises(CommandError, match=r"is not JSON"):
            run("import_prices", write("prices.json", "{not json"))
        assert not PriceList.objects.filter(name=LITELLM_LIST).exists()

    def test_a_json_file_that_is_not_a_cost_map_is_refused_and_nothing_is_stored(self, db, write):
        err = StringIO()
        with pytest.raises(CommandError, match=r"^Nothing imported: 1 error\(s\)\.$"):
            call_command("import_prices", write("prices.json", ["test-model-x"]), stdout=StringIO(), stderr=err)
        assert err.getvalue() == "  The file is not a JSON object of models.\n"
        assert not PriceList.objects.filter(name=LITELLM_LIST).exists()

    def test_a_missing_file_is_refused(self, db, tmp_path):
        with pytest.raises(CommandError, match=r"No such file"):
            run("import_prices", str(tmp_path / "nowhere.json"))

    def test_malformed_entries_are_printed_and_the_good_ones_imported(self, db, write):
        path = write("prices.json", {"test-model-x": litellm(), "test-model-bad": litellm("two")})
        out, err = run("import_prices", path)
        assert err == "  test-model-bad: not a number\n"
        assert "1 new price(s)" in out and "1 malformed." in out
        assert list(ModelPrice.objects.filter(model__startswith="test-model").values_list("model", flat=True)) == [
            "test-model-x"
        ]


class TestImportPricesCsv:
    def test_a_csv_is_imported_by_its_extension(self, db, write):
        path = write(
            "prices.csv", "provider,model,input_per_1m,output_per_1m,currency\nazure,test-model-x,2.20,8.80,EUR\n"
        )
        out, err = run("import_prices", path)
        assert out.splitlines()[0] == (
            f"{CSV_LIST}: 1 new price(s), 0 corrected, 0 unchanged; 0 entries without token prices skipped, 0 malformed."
        )
        assert err == ""
        price = ModelPrice.objects.get(price_list__name=CSV_LIST)
        assert (price.provider, price.model, price.currency, price.input_price, price.output_price) == (
            "azure",
            "test-model-x",
            "EUR",
            Decimal("2.20"),
            Decimal("8.80"),
        )

    def test_good_lines_are_imported_and_bad_ones_printed(self, db, write):
        path = write("prices.csv", "model,input_per_1m,output_per_1m\ntest-model-x,2,8\ntest-model-y,x,8\n")
        out, err = run("import_prices", path, format="csv")
        assert err == "  line 3: input_per_1m: 'x' is not a number\n"
        assert "1 new price(s)" in out and "1 malformed." in out
        assert list(ModelPrice.objects.filter(price_list__name=CSV_LIST).values_list("model", flat=True)) == [
            "test-model-x"
        ]

    def test_a_date_in_an_organizations_csv_starts_at_midnight_in_its_time_zone(self, berlin_org, write):
        run(
            "import_prices", write("v1.csv", "model,input_per_1m,output_per_1m\ntest-model-x,2.00,8.00\n"), org="berlin"
        )
        run(
            "import_prices",
            write("v2.csv", ("model,input_per_1m,output_per_1m,effective_from\ntest-model-x,1.75,8.00,2026-03-01\n")),
            org="berlin",
        )
        newest = ModelPrice.objects.filter(model="test-model-x").order_by("-effective_from").first()
        assert (newest.effective_from, newest.input_price) == (
            datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
            Decimal("1.75"),
        )

    def test_a_file_where_every_line_is_bad_prints_the_errors_and_stores_nothing(self, db, write):
        path = write("prices.csv", "model,input_per_1m,output_per_1m\ntest-model-x,-2,8\ntest-model-y,2,eight\n")
        revision = pricing_revision()
        err = StringIO()
        with pytest.raises(CommandError, match=r"^Nothing imported: 2 error\(s\)\.$"):
            call_command("import_prices", path, stdout=StringIO(), stderr=err)
        assert err.getvalue() == (
            "  line 2: input_per_1m: must not be negative\n  line 3: output_per_1m: 'eight' is not a number\n"
        )
        assert not PriceList.objects.filter(name=CSV_LIST).exists()
        assert not ModelPrice.objects.filter(model__in=["test-model-x", "test-model-y"]).exists()
        assert pricing_revision() == revision

    def test_a_bad_header_prints_it_and_stores_nothing(self, db, write):
        path = write("prices.csv", "model,input,output\ntest-model-x,2,8\n")
        err = StringIO()
        with pytest.raises(CommandError, match=r"Nothing imported: 2 error\(s\)\."):
            call_command("import_prices", path, stdout=StringIO(), stderr=err)
        assert "header: missing column(s) input_per_1m, output_per_1m" in err.getvalue()
        assert not ModelPrice.objects.filter(model="test-model-x").exists()


class TestImportFxRates:
    def test_rates_are_imported_and_a_second_run_changes_nothing(self, db, write):
        path = write("fx.csv", "date,from,to,rate,source\n2026-03-01,USD,EUR,0.91,ECB\n2026-03-02,USD,EUR,0.92,ECB\n")
        out, _ = run("import_fx_rates", path)
        assert out == "FX rates: 2 new, 0 corrected, 0 unchanged.\n"
        assert list(FxRate.objects.order_by("date").values_list("date", "from_currency", "to_currency", "rate")) == [
            (date(2026, 3, 1), "USD", "EUR", Decimal("0.91")),
            (date(2026, 3, 2), "USD", "EUR", Decimal("0.92")),
        ]
        again, _ = run("import_fx_rates", path)
        assert again == "FX rates: 0 new, 0 corrected, 2 unchanged.\n"

    def test_a_corrected_rate_is_reported(self, db, write):
        FxRateFactory(date=date(2026, 3, 1), rate=Decimal("0.90"))
        out, _ = run("import_fx_rates", write("fx.csv", "date,from,to,rate,source\n2026-03-01,USD,EUR,0.91,ECB\n"))
        assert out == "FX rates: 0 new, 1 corrected, 0 unchanged.\n"
        assert FxRate.objects.get(date=date(2026, 3, 1)).rate == Decimal("0.91")

    def test_a_file_with_a_bad_line_stores_nothing_and_names_the_line(self, db, write):
        path = write(
            "fx.csv",
            (
                "date,from,to,rate,source\n"
                "2026-03-01,USD,EUR,0.91,ECB\n"
                "2026-03-02,USD,EUR,-0.92,ECB\n"
                "2026-02-30,USD,EUR,0.93,ECB\n"
            ),
        )
        revision = pricing_revision()
        err = StringIO()
        with pytest.raises(CommandError, match=r"^Nothing imported: 2 malformed line\(s\)\.$"):
            call_command("import_fx_rates", path, stdout=StringIO(), stderr=err)
        assert err.getvalue() == "  line 3: rate: expected a positive number\n  line 4: date: expected YYYY-MM-DD\n"
        assert not FxRate.objects.exists()
        assert pricing_revision() == revision

    def test_a_file_without_the_rate_column_stores_nothing(self, db, write):
        err = StringIO()
        with pytest.raises(CommandError, match=r"Nothing imported: 1 malformed line\(s\)\."):
            call_command(
                "import_fx_rates", write("fx.csv", "date,from,to\n2026-03-01,USD,EUR\n"), stdout=StringIO(), stderr=err
            )
        assert "header: missing column(s) rate" in err.getvalue()
        assert not FxRate.objects.exists()
