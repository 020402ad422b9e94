"""prices_import and fx_rates_import: versions, no-op re-imports, corrections in place, audit, revision."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.common.models import AuditEntry
from apps.pricing.importers import PriceEntry
from apps.pricing.models import PRICING_EPOCH, FxRate, ModelPrice
from apps.pricing.selectors import pricing_revision
from apps.pricing.services import fx_rates_import, model_price_set, prices_import
from tests.factories import FxRateFactory, OrganizationFactory, PriceListFactory

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def entry(model="test-model-x", input="2.00", output="8.00", **fields) -> PriceEntry:
    return PriceEntry(model=model, input=Decimal(input), output=Decimal(output), **fields)


def versions(price_list, model="test-model-x", provider=""):
    """(effective_from, input, output) of a model's versions, oldest first."""
    return [
        (p.effective_from, p.input_price, p.output_price)
        for p in ModelPrice.objects.filter(price_list=price_list, provider=provider, model=model).order_by(
            "effective_from"
        )
    ]


def start_of_today(tz) -> datetime:
    return datetime.combine(timezone.now().astimezone(tz).date(), time.min, tzinfo=tz)


class TestPricesImport:
    def test_an_import_creates_one_version_per_price(self, global_list):
        revision = pricing_revision()
        summary = prices_import(
            price_list=global_list,
            entries=[
                entry("test-model-x", "2.00", "8.00", cached_input=Decimal("0.50")),
                entry("test-model-y", "0.30", "2.50", provider="gemini"),
            ],
        )
        assert (summary.created, summary.updated, summary.unchanged) == (2, 0, 0)
        assert summary.changed_models == ["test-model-x", "gemini/test-model-y"]
        x = ModelPrice.objects.get(price_list=global_list, model="test-model-x")
        assert (x.provider, x.organization, x.currency) == ("", None, "USD")
        assert (x.input_price, x.cached_input_price, x.cache_write_price, x.output_price) == (
            Decimal("2.00"),
            Decimal("0.50"),
            None,
            Decimal("8.00"),
        )
        y = ModelPrice.objects.get(price_list=global_list, model="test-model-y")
        assert (y.provider, y.input_price, y.output_price) == ("gemini", Decimal("0.30"), Decimal("2.50"))
        assert pricing_revision() == revision + 1

    def test_a_models_first_price_applies_from_the_pricing_epoch(self, global_list):
        summary = prices_import(price_list=global_list, entries=[entry()])
        assert versions(global_list) == [(PRICING_EPOCH, Decimal("2.00"), Decimal("8.00"))]
        assert summary.earliest_change == PRICING_EPOCH

    def test_a_models_first_price_applies_from_the_epoch_even_when_the_import_names_a_start(self, global_list):
        prices_import(price_list=global_list, entries=[entry()], effective_from=MARCH)
        assert versions(global_list) == [(PRICING_EPOCH, Decimal("2.00"), Decimal("8.00"))]

    def test_an_entry_with_its_own_start_keeps_it_even_for_a_first_price(self, global_list):
        prices_import(price_list=global_list, entries=[entry(effective_from=MARCH)])
        assert versions(global_list) == [(MARCH, Decimal("2.00"), Decimal("8.00"))]

    def test_importing_the_same_prices_again_changes_nothing(self, global_list):
        entries = [entry("test-model-x", cached_input=Decimal("0.50")), entry("test-model-y", provider="gemini")]
        prices_import(price_list=global_list, entries=entries)
        rows = set(ModelPrice.objects.filter(price_list=global_list).values_list("pk", "updated_at"))
        revision, audits = pricing_revision(), AuditEntry.objects.count()
        # the same prices written differently (2.0 vs 2.00) are the same prices
        again = [
            entry("test-model-x", "2.0", "8", cached_input=Decimal("0.5")),
            entry("test-model-y", provider="gemini"),
        ]
        summary = prices_import(price_list=global_list, entries=again)
        assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 2)
        assert summary.changed_models == [] and summary.earliest_change is None
        assert set(ModelPrice.objects.filter(price_list=global_list).values_list("pk", "updated_at")) == rows
        assert pricing_revision() == revision
        assert AuditEntry.objects.count() == audits

    def test_a_changed_price_starts_at_the_start_of_today_utc_in_a_global_list(self, global_list):
        prices_import(price_list=global_list, entries=[entry(input="2.00")])
        before = start_of_today(UTC)
        summary = prices_import(price_list=global_list, entries=[entry(input="1.75")])
        after = start_of_today(UTC)
        assert (summary.created, summary.updated) == (1, 0)
        [first, second] = versions(global_list)
        assert first == (PRICING_EPOCH, Decimal("2.00"), Decimal("8.00"))
        assert second[0] in {before, after}  # the same instant unless the test ran across midnight
        assert second[1:] == (Decimal("1.75"), Decimal("8.00"))
        assert summary.earliest_change == second[0]

    def test_a_changed_price_starts_at_the_start_of_today_in_the_organizations_time_zone(self, db):
        # UTC+14: its midnight is never a UTC midnight, and its day is ahead of UTC's for ten hours
        kiritimati = ZoneInfo("Pacific/Kiritimati")
        organization = OrganizationFactory(slug="line-islands", timezone="Pacific/Kiritimati")
        price_list = PriceListFactory(organization=organization)
        prices_import(price_list=price_list, entries=[entry(input="2.00")])
        before = start_of_today(kiritimati)
        prices_import(price_list=price_list, entries=[entry(input="1.75")])
        after = start_of_today(kiritimati)
        [_, second] = versions(price_list)
        assert second[0] in {before, after}
        assert second[0].astimezone(kiritimati).time() == time.min
        assert ModelPrice.objects.get(price_list=price_list, effective_from=second[0]).organization == organization

    def test_an_explicit_start_applies_to_a_changed_price(self, global_list):
        prices_import(price_list=global_list, entries=[entry(input="2.00")])
        summary = prices_import(price_list=global_list, entries=[entry(input="1.75")], effective_from=MARCH)
        assert versions(global_list) == [
            (PRICING_EPOCH, Decimal("2.00"), Decimal("8.00")),
            (MARCH, Decimal("1.75"), Decimal("8.00")),
        ]
        assert summary.earliest_change == MARCH

    def test_a_price_equal_to_the_version_in_force_at_its_start_adds_nothing(self, global_list):
        prices_import(price_list=global_list, entries=[entry(input="2.00")])
        prices_import(price_list=global_list, entries=[entry(input="1.75")], effective_from=MARCH)
        april = datetime(2026, 4, 1, tzinfo=UTC)
        summary = prices_import(price_list=global_list, entries=[entry(input="1.75")], effective_from=april)
        assert summary.unchanged == 1
        assert len(versions(global_list)) == 2

    def test_a_back_dated_price_goes_between_the_versions_around_it(self, global_list):
        prices_import(price_list=global_list, entries=[entry(input="2.00")])
        prices_import(
            price_list=global_list, entries=[entry(input="1.50")], effective_from=datetime(2026, 5, 1, tzinfo=UTC)
        )
        prices_import(price_list=global_list, entries=[entry(input="1.75")], effective_from=MARCH)
        assert [v[:2] for v in versions(global_list)] == [
            (PRICING_EPOCH, Decimal("2.00")),
            (MARCH, Decimal("1.75")),
            (datetime(2026, 5, 1, tzinfo=UTC), Decimal("1.50")),
        ]

    def test_a_new_price_with_the_same_start_is_corrected_in_place_and_audited(self, org, org_list):
        prices_import(price_list=org_list, entries=[entry(input="2.00")])
        prices_import(price_list=org_list, entries=[entry(input="1.75")], effective_from=MARCH)
        corrected = ModelPrice.objects.get(price_list=org_list, effective_from=MARCH)
        revision = pricing_revision()

        summary = prices_import(
            price_list=org_list,
            entries=[entry(input="1.70", source="contract v2")],
            effective_from=MARCH,
            actor="finance@acme.example",
        )

        assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
        assert summary.earliest_change == MARCH
        assert versions(org_list) == [
            (PRICING_EPOCH, Decimal("2.00"), Decimal("8.00")),
            (MARCH, Decimal("1.70"), Decimal("8.00")),
        ]
        corrected.refresh_from_db()
        assert (corrected.input_price, corrected.source) == (Decimal("1.70"), "contract v2")
        assert pricing_revision() == revision + 1
        audit = AuditEntry.objects.get(action="price.corrected")
        assert (audit.organization, audit.actor, audit.object_type, audit.object_id) == (
            org,
            "finance@acme.example",
            "ModelPrice",
            str(corrected.pk),
        )
        assert audit.changes["before"]["input_price"] == "1.750000000000000"
        assert audit.changes["after"]["input_price"] == "1.70"
        assert audit.changes["after"]["output_price"] == "8.00"
        summary_audit = AuditEntry.objects.filter(action="prices.imported").first()  # newest first
        assert summary_audit.organization == org
        assert summary_audit.changes == {
            "created": 0,
            "updated": 1,
            "unchanged": 0,
            "earliest_change": "2026-03-01T00:00:00+00:00",
        }

    def test_a_file_naming_a_model_twice_keeps_the_first_entry(self, global_list):
        summary = prices_import(price_list=global_list, entries=[entry(input="2.00"), entry(input="9.00")])
        assert summary.created == 1
        assert versions(global_list) == [(PRICING_EPOCH, Decimal("2.00"), Decimal("8.00"))]

    def test_only_changed_models_get_a_new_version(self, global_list):
        prices_import(price_list=global_list, entries=[entry("test-model-x"), entry("test-model-y")])
        summary = prices_import(
            price_list=global_list,
            entries=[entry("test-model-x"), entry("test-model-y", input="3")],
            effective_from=MARCH,
        )
        assert (summary.created, summary.unchanged, summary.changed_models) == (1, 1, ["test-model-y"])
        assert len(versions(global_list, "test-model-x")) == 1
        assert len(versions(global_list, "test-model-y")) == 2

    def test_an_invalid_entry_stores_none_of_the_import(self, global_list):
        revision = pricing_revision()
        with pytest.raises(ValidationError):
            prices_import(price_list=global_list, entries=[entry("test-model-x"), entry("test-model-y", input="-1")])
        assert not ModelPrice.objects.filter(price_list=global_list).exists()
        assert pricing_revision() == revision

    def test_prices_of_one_list_do_not_count_as_versions_of_another(self, global_list, org_list):
        prices_import(price_list=global_list, entries=[entry(input="2.00")])
        summary = prices_import(price_list=org_list, entries=[entry(input="2.00")])
        assert summary.created == 1
        assert versions(org_list) == [(PRICING_EPOCH, Decimal("2.00"), Decimal("8.00"))]

    def test_setting_one_price_by_hand_needs_a_start(self, global_list):
        with pytest.raises(ValidationError) as raised:
            model_price_set(price_list=global_list, entry=entry())
        assert raised.value.message_dict == {"effective_from": ["Say from when the price applies."]}
        assert not ModelPrice.objects.filter(price_list=global_list).exists()


def fx(day, rate, source="ECB"):
    return {"date": day, "from_currency": "USD", "to_currency": "EUR", "rate": Decimal(rate), "source": source}


class TestFxRatesImport:
    def test_new_rates_are_created_and_move_the_revision(self, db):
        revision = pricing_revision()
        summary = fx_rates_import(rows=[fx(date(2026, 3, 2), "0.92"), fx(date(2026, 3, 1), "0.91")])
        assert (summary.created, summary.updated, summary.unchanged) == (2, 0, 0)
        assert summary.earliest_change == date(2026, 3, 1)
        assert list(FxRate.objects.order_by("date").values_list("date", "rate", "source")) == [
            (date(2026, 3, 1), Decimal("0.91"), "ECB"),
            (date(2026, 3, 2), Decimal("0.92"), "ECB"),
        ]
        assert pricing_revision() == revision + 1
        assert AuditEntry.objects.get(action="fx.imported").changes == {"created": 2, "updated": 0}

    def test_the_same_rates_again_change_nothing(self, db):
        fx_rates_import(rows=[fx(date(2026, 3, 2), "0.92")])
        revision, audits = pricing_revision(), AuditEntry.objects.count()
        summary = fx_rates_import(rows=[fx(date(2026, 3, 2), "0.9200")])
        assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 1)
        assert summary.earliest_change is None
        assert FxRate.objects.count() == 1
        assert pricing_revision() == revision
        assert AuditEntry.objects.count() == audits

    def test_a_different_rate_for_a_known_day_is_corrected_in_place_and_audited(self, db):
        existing = FxRateFactory(date=date(2026, 3, 2), rate=Decimal("0.92"), source="first guess")
        FxRateFactory(date=date(2026, 3, 5), rate=Decimal("0.93"))
        revision = pricing_revision()
        summary = fx_rates_import(
            rows=[fx(date(2026, 3, 2), "0.9215", "ECB"), fx(date(2026, 3, 5), "0.93")], actor="finance@acme.example"
        )
        assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
        assert summary.earliest_change == date(2026, 3, 2)
        existing.refresh_from_db()
        assert (existing.rate, existing.source) == (Decimal("0.9215"), "ECB")
        assert FxRate.objects.count() == 2
        assert pricing_revision() == revision + 1
        audit = AuditEntry.objects.get(action="fx.corrected")
        assert (audit.actor, audit.object_id) == ("finance@acme.example", str(existing.pk))
        assert audit.changes == {"before": "0.9200000000", "after": "0.9215"}
