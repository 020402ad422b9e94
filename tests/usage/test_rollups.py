"""Daily rollups: faster answers that always equal the raw records."""

import threading
import time
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.http import QueryDict

from apps.pricing.models import ModelPrice
from apps.pricing.services import pricing_revision_bump
from apps.usage import rollups
from apps.usage.filters import UsageFilter
from apps.usage.models import UsageDailyByModel, UsageDailyByUser, UsageDirtyDay, UsageRecord
from apps.usage.selectors import usage_cost_summary
from apps.usage.services import usage_ingest, usage_rerate
from tests.factories import CostCenterFactory, OrganizationFactory, usage_payload

pytestmark = pytest.mark.usefixtures("priced_model")

QUESTIONS = [
    ((), {}),
    (("day",), {}),
    (("day", "cost_center"), {}),
    (("week", "model"), {}),
    (("month", "provider", "environment"), {}),
    (("user_id",), {}),
    (("feature",), {"cost_center": "cc_product"}),
    (("model",), {"environment": "prod"}),
    (("cost_center",), {"user_id": "u1"}),
    (("model", "user_id"), {}),  # no single rollup has both: raw
]


@pytest.fixture
def berlin(db):
    org = OrganizationFactory(slug="berlin", timezone="Europe/Berlin")
    product = CostCenterFactory(organization=org, code="cc_product")
    CostCenterFactory(organization=org, code="cc_search", parent=product)
    CostCenterFactory(organization=org, code="cc_ops")
    return org


def load(org, prefix="r", day=2):
    records = []
    for n in range(40):
        records.append(
            usage_payload(
                f"{prefix}-{n}",
                cost_center=("cc_search", "cc_product", "cc_ops", None)[n % 4],
                model=("test-model", "unpriced-model")[n % 7 == 0],
                provider=("openai", "azure")[n % 2],
                user_id=f"u{n % 3}",
                feature=("chat", "search")[n % 2],
                environment=("prod", "dev")[n % 5 == 0],
                latency_ms=100 + n,
                timestamp=f"2026-03-{day + n % 5:02d}T{(n * 5) % 24:02d}:30:00+01:00",
                input_tokens=1000 + n,
                output_tokens=100 + n,
            )
        )
    records = [{k: v for k, v in r.items() if v is not None} for r in records]
    assert usage_ingest(organization=org, api_key=None, raw_records=records).accepted == 40


def answer(org, group_by, params, use_rollups=True, visible=None):
    data = QueryDict(mutable=True)
    data.update({"start": "2026-03-01", "end": "2026-03-31", **params})
    filterset = UsageFilter(
        data, queryset=UsageRecord.objects.for_org(org), organization=org, visible_cost_center_ids=visible
    )
    assert filterset.is_valid(), filterset.errors
    return usage_cost_summary(
        organization=org,
        records=filterset.qs,
        group_by=group_by,
        rollup=filterset.rollup_query() if use_rollups else None,
    )


def assert_same_as_raw(org, visible=None):
    for group_by, params in QUESTIONS:
        assert answer(org, group_by, params, visible=visible) == answer(
            org, group_by, params, use_rollups=False, visible=visible
        ), (group_by, params)


def test_ingest_marks_the_days_it_touches_in_the_organizations_time_zone(berlin):
    usage_ingest(
        organization=berlin, api_key=None, raw_records=[usage_payload("late", timestamp="2026-03-01T23:30:00Z")]
    )
    assert list(UsageDirtyDay.objects.for_org(berlin).values_list("day", flat=True)) == [date(2026, 3, 2)]


def test_rolled_up_answers_equal_the_raw_records(berlin):
    load(berlin)
    assert_same_as_raw(berlin)  # everything dirty: raw
    assert rollups.rollup_dirty_days() == 5
    assert not UsageDirtyDay.objects.exists()
    assert UsageDailyByModel.objects.for_org(berlin).exists() and UsageDailyByUser.objects.for_org(berlin).exists()
    assert_same_as_raw(berlin)
    totals = answer(berlin, (), {})
    assert totals["total"]["requests"] == 40 and totals["unpriced_requests"] == 6
    assert totals["average_latency_ms"] == answer(berlin, (), {}, use_rollups=False)["average_latency_ms"]


def test_new_usage_after_a_rollup_is_counted_at_once(berlin):
    load(berlin)
    rollups.rollup_dirty_days()
    load(berlin, prefix="more", day=4)
    assert UsageDirtyDay.objects.for_org(berlin).exists()
    assert_same_as_raw(berlin)
    assert answer(berlin, (), {})["total"]["requests"] == 80


def test_re_rating_marks_days_dirty_so_answers_follow_the_new_prices(berlin, priced_model):
    load(berlin)
    rollups.rollup_dirty_days()
    before = Decimal(answer(berlin, (), {})["total"]["cost"])
    ModelPrice.objects.filter(pk=priced_model.pk).update(output_price=Decimal("80"))
    pricing_revision_bump()
    usage_rerate(organization=berlin, dry_run=False)
    assert UsageDirtyDay.objects.for_org(berlin).exists()
    assert Decimal(answer(berlin, (), {})["total"]["cost"]) > before
    assert_same_as_raw(berlin)
    rollups.rollup_dirty_days()
    assert_same_as_raw(berlin)


def test_owner_scoping_applies_to_rollups(berlin):
    load(berlin)
    rollups.rollup_dirty_days()
    product = berlin.cost_centers.get(code="cc_product")
    assert_same_as_raw(berlin, visible={product.pk})
    assert answer(berlin, ("cost_center",), {}, visible={product.pk})["results"][0]["cost_center"] == "cc_product"


def test_tags_status_and_partial_days_read_the_raw_records(berlin):
    def query(**params):
        data = QueryDict(mutable=True)
        data.update({"start": "2026-03-01", "end": "2026-03-31", **params})
        filterset = UsageFilter(data, queryset=UsageRecord.objects.for_org(berlin), organization=berlin)
        assert filterset.is_valid()
        return filterset.rollup_query()

    assert query() is not None
    assert query(tag="team:x") is None
    assert query(pricing_status="priced") is None
    assert query(start="2026-03-01T10:00:00Z") is None


def test_a_time_zone_change_recomputes_every_day(berlin):
    load(berlin)
    rollups.rollup_dirty_days()
    berlin.timezone = "America/New_York"
    berlin.save()
    rollups.rollups_invalidate(organization=berlin)
    assert not UsageDailyByModel.objects.for_org(berlin).exists()
    assert_same_as_raw(berlin)
    rollups.rollup_dirty_days()
    assert_same_as_raw(berlin)


def test_the_costs_api_gives_the_same_answer_before_and_after_the_rollup(org, api):
    usage_ingest(
        organization=org,
        api_key=None,
        raw_records=[usage_payload(f"a{n}", timestamp=f"2026-03-0{1 + n % 3}T10:00:00Z") for n in range(9)],
    )
    params = {"start": "2026-03-01", "end": "2026-03-31", "group_by": "day,cost_center"}
    before = api.get("/api/v1/costs", params).json()
    rollups.rollup_dirty_days()
    assert api.get("/api/v1/costs", params).json() == before


@pytest.mark.django_db(transaction=True)
def test_a_rollup_waits_for_usage_being_written_to_its_day(priced_model):
    org = OrganizationFactory(slug="waits")
    usage_ingest(organization=org, api_key=None, raw_records=[usage_payload("first", timestamp="2026-03-02T10:00:00Z")])
    in_flight = threading.Event()
    release = threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                usage_ingest(
                    organization=org,
                    api_key=None,
                    raw_records=[usage_payload("second", timestamp="2026-03-02T11:00:00Z")],
                )
                in_flight.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert in_flight.wait(10)
    UsageDirtyDay.objects.filter(organization=org).delete()  # as if a rollup had just run: the day looks clean
    roller = threading.Thread(
        target=lambda: (rollups.rollup_day(organization=org, day=date(2026, 3, 2)), connection.close())
    )
    started = time.monotonic()
    roller.start()
    time.sleep(0.5)
    assert roller.is_alive(), "the rollup must wait for the writer's lock"
    release.set()
    writer.join()
    roller.join()
    assert time.monotonic() - started >= 0.5
    rolled = UsageDailyByModel.objects.for_org(org).get()
    assert rolled.requests == 2, "the rollup saw the usage committed while it waited"


def test_change_timezone_command(berlin):
    from io import StringIO

    from django.core.management import CommandError, call_command

    load(berlin)
    rollups.rollup_dirty_days()
    call_command("change_timezone", "berlin", "Asia/Tokyo", stdout=StringIO())
    berlin.refresh_from_db()
    assert berlin.timezone == "Asia/Tokyo" and UsageDirtyDay.objects.for_org(berlin).exists()
    assert_same_as_raw(berlin)
    with pytest.raises(CommandError):
        call_command("change_timezone", "berlin", "Mars/Olympus", stdout=StringIO())
