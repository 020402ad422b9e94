"""Daily rollups: faster answers that always equal the raw records."""

import threading
import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.http import QueryDict

from apps.pricing.models import ModelPrice
from apps.pricing.services import pricing_revision_bump
from apps.usage import rollups
from apps.usage.filters import RollupQuery, UsageFilter
from apps.usage.models import UsageDailyByCostCenter, UsageDailyByModel, UsageDailyByUser, UsageDirtyDay, UsageRecord
from apps.usage.selectors import usage_cost_summaries, usage_cost_summary
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
    (("model",), {"feature": "chat"}),
    (("model", "user_id"), {}),  # no single rollup has both: raw
    (("feature",), {"user_id": "u1"}),  # raw
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


def rollup_rows(org, model=UsageDailyByModel):
    return model.objects.for_org(org)


def test_ingest_adds_increments_on_the_days_it_touches_in_the_organizations_time_zone(berlin):
    usage_ingest(
        organization=berlin, api_key=None, raw_records=[usage_payload("late", timestamp="2026-03-01T23:30:00Z")]
    )
    assert not UsageDirtyDay.objects.for_org(berlin).exists()
    for model in (UsageDailyByCostCenter, UsageDailyByModel, UsageDailyByUser):
        row = rollup_rows(berlin, model).get()
        assert (row.day, row.increment, row.requests) == (date(2026, 3, 2), True, 1)


def test_rolled_up_answers_equal_the_raw_records(berlin):
    load(berlin)
    assert not UsageDirtyDay.objects.exists()
    assert rollup_rows(berlin).filter(increment=True).exists()
    assert_same_as_raw(berlin)  # increments only
    assert rollups.merge_increments() == 5
    assert not rollup_rows(berlin).filter(increment=True).exists()
    assert not rollup_rows(berlin, UsageDailyByUser).filter(increment=True).exists()
    assert_same_as_raw(berlin)  # merged
    rollups.mark_days_dirty(organization_id=berlin.pk, days={date(2026, 3, d) for d in range(2, 7)})
    assert_same_as_raw(berlin)  # every day dirty: raw
    assert rollups.rollup_dirty_days() == 5
    assert not UsageDirtyDay.objects.exists()
    assert_same_as_raw(berlin)  # recomputed
    totals = answer(berlin, (), {})
    assert totals["total"]["requests"] == 40 and totals["unpriced_requests"] == 6
    by_day = answer(berlin, ("day",), {})["results"]
    counts = [totals["total"][m] for m in ("requests", "input_tokens", "output_tokens")] + [totals["unpriced_requests"]]
    counts += [row[m] for row in by_day for m in ("requests", "input_tokens", "output_tokens")]
    assert all(type(count) is int for count in counts), "counts are integers, as the raw records give them"
    assert totals["average_latency_ms"] == answer(berlin, (), {}, use_rollups=False)["average_latency_ms"]


def test_merging_leaves_one_row_per_group(berlin):
    load(berlin)
    load(berlin, prefix="more", day=3)
    groups = (
        rollup_rows(berlin)
        .values("day", "cost_center", "provider", "model", "environment", "feature")
        .distinct()
        .count()
    )
    assert rollup_rows(berlin).count() > groups
    rollups.rollups_refresh()
    assert rollup_rows(berlin).count() == groups
    assert_same_as_raw(berlin)


def test_new_usage_after_a_merge_is_counted_at_once(berlin):
    load(berlin)
    rollups.rollups_refresh()
    load(berlin, prefix="more", day=4)
    assert rollup_rows(berlin).filter(increment=True).exists()
    assert_same_as_raw(berlin)
    assert answer(berlin, (), {})["total"]["requests"] == 80


def test_a_resent_batch_adds_no_increment(berlin):
    load(berlin)
    before = answer(berlin, ("day", "cost_center"), {})
    rows = rollup_rows(berlin).count()
    load_again = [usage_payload(f"r-{n}", timestamp="2026-03-02T10:00:00Z") for n in range(40)]
    result = usage_ingest(organization=berlin, api_key=None, raw_records=load_again)
    assert (result.accepted, result.duplicates) == (0, 40)
    assert rollup_rows(berlin).count() == rows
    assert answer(berlin, ("day", "cost_center"), {}) == before
    assert_same_as_raw(berlin)


def test_a_large_batch_is_staged_and_still_counted_once(berlin):
    records = [usage_payload(f"big-{n}", timestamp=f"2026-03-0{2 + n % 3}T1{n % 10}:00:00Z") for n in range(120)]
    records += records[:30]  # repeated in the batch itself
    result = usage_ingest(organization=berlin, api_key=None, raw_records=records)
    assert (result.accepted, result.duplicates) == (120, 30)
    again = usage_ingest(organization=berlin, api_key=None, raw_records=records[:100])
    assert (again.accepted, again.duplicates) == (0, 100)
    assert answer(berlin, (), {})["total"]["requests"] == 120
    assert_same_as_raw(berlin)


def test_several_groupings_at_once_equal_each_asked_alone_from_the_records(berlin):
    load(berlin)
    rollups.merge_increments()
    load(berlin, prefix="more", day=4)  # increments on top of merged rows
    rollups.mark_days_dirty(organization_id=berlin.pk, days={date(2026, 3, 5)})  # and a dirty day
    data = QueryDict(mutable=True)
    data.update({"start": "2026-03-01", "end": "2026-03-31"})
    filterset = UsageFilter(data, queryset=UsageRecord.objects.for_org(berlin), organization=berlin)
    assert filterset.is_valid()
    groupings = [group_by for group_by, params in QUESTIONS if not params]
    groupings += [("week",), ("month", "cost_center"), ("day", "week", "month"), ("feature", "user_id")]
    groupings += [("cost_center", "day"), ("day", "cost_center"), ()]  # the same grouping set twice, in two orders
    together = usage_cost_summaries(
        organization=berlin, records=filterset.qs, groupings=groupings, rollup=filterset.rollup_query()
    )
    alone = [usage_cost_summary(organization=berlin, records=filterset.qs, group_by=g) for g in groupings]
    assert together == alone
    assert together[0]["total"]["requests"] == 80


def test_re_rating_marks_days_dirty_so_answers_follow_the_new_prices(berlin, priced_model):
    load(berlin)
    rollups.rollups_refresh()
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
    rollups.rollups_refresh()
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
    rollups.rollups_refresh()
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
    rollups.rollups_refresh()
    assert api.get("/api/v1/costs", params).json() == before
    rollups.mark_days_dirty(organization_id=org.pk, days={date(2026, 3, 1), date(2026, 3, 2)})
    assert api.get("/api/v1/costs", params).json() == before
    rollups.rollups_refresh()
    assert api.get("/api/v1/costs", params).json() == before


@contextmanager
def usage_in_flight(org, record):
    """While the block runs, another connection has ingested `record` and not committed yet."""
    in_flight, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                assert usage_ingest(organization=org, api_key=None, raw_records=[record]).accepted == 1
                in_flight.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert in_flight.wait(10)
        yield
    finally:
        release.set()
        thread.join()


@pytest.mark.django_db(transaction=True)
def test_a_rollup_waits_for_usage_being_written_to_its_day(priced_model):
    org = OrganizationFactory(slug="waits")
    usage_ingest(organization=org, api_key=None, raw_records=[usage_payload("first", timestamp="2026-03-02T10:00:00Z")])
    roller = threading.Thread(
        target=lambda: (rollups.rollup_day(organization=org, day=date(2026, 3, 2)), connection.close())
    )
    with usage_in_flight(org, usage_payload("second", timestamp="2026-03-02T11:00:00Z")):
        started = time.monotonic()
        roller.start()
        time.sleep(0.5)
        assert roller.is_alive(), "the rollup must wait for the writer's lock"
    roller.join()
    assert time.monotonic() - started >= 0.5
    rolled = UsageDailyByModel.objects.for_org(org).get()
    assert rolled.requests == 2, "the rollup saw the usage committed while it waited"
    assert not rolled.increment


def _raw_and_rolled_requests(org):
    query = RollupQuery(first_day=date(2026, 3, 1), end_day=date(2026, 4, 1), cost_center_ids=None, equals={})
    records = UsageRecord.objects.for_org(org)
    rolled = usage_cost_summary(organization=org, records=records, group_by=("day", "model"), rollup=query)
    raw = usage_cost_summary(organization=org, records=records, group_by=("day", "model"))
    return raw, rolled


@pytest.mark.django_db(transaction=True)
def test_usage_written_while_a_rollup_runs_is_added_on_top_of_it(priced_model):
    """The writer stores its rows and increments, then waits for the day's lock; the rollup cannot see them."""
    org = OrganizationFactory(slug="on-top")
    usage_ingest(organization=org, api_key=None, raw_records=[usage_payload("first", timestamp="2026-03-02T10:00:00Z")])
    day = date(2026, 3, 2)
    held, written = threading.Event(), threading.Event()

    def roller():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [org.pk, day.toordinal()])
                held.set()
                assert written.wait(10)
                time.sleep(0.3)  # the writer has stored its rows and waits for the lock
                rollups.rollup_day(organization=org, day=day)
        finally:
            connection.close()

    def writer():
        try:
            assert held.wait(10)
            written.set()
            result = usage_ingest(
                organization=org, api_key=None, raw_records=[usage_payload("second", timestamp="2026-03-02T11:00:00Z")]
            )
            assert result.accepted == 1
        finally:
            connection.close()

    threads = [threading.Thread(target=roller), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    rows = sorted(UsageDailyByModel.objects.for_org(org).values_list("increment", "requests"))
    assert rows == [(False, 1), (True, 1)], "the recomputation counted the first record, the increment the second"
    raw, rolled = _raw_and_rolled_requests(org)
    assert rolled == raw and rolled["total"]["requests"] == 2


@pytest.mark.django_db(transaction=True)
def test_merging_does_not_wait_for_writers_and_keeps_their_increments(priced_model):
    org = OrganizationFactory(slug="merge-live")
    for n in range(3):
        usage_ingest(
            organization=org, api_key=None, raw_records=[usage_payload(f"m{n}", timestamp="2026-03-02T10:00:00Z")]
        )
    with usage_in_flight(org, usage_payload("late", timestamp="2026-03-02T12:00:00Z")):
        started = time.monotonic()
        assert rollups.merge_increments() == 1
        assert time.monotonic() - started < 2, "merging must not wait for the writer"
    rows = sorted(UsageDailyByModel.objects.for_org(org).values_list("increment", "requests"))
    assert rows == [(False, 3), (True, 1)]
    raw, rolled = _raw_and_rolled_requests(org)
    assert rolled == raw and rolled["total"]["requests"] == 4
    rollups.rollups_refresh()
    assert list(UsageDailyByModel.objects.for_org(org).values_list("increment", "requests")) == [(False, 4)]


def test_change_timezone_command(berlin):
    from io import StringIO

    from django.core.management import CommandError, call_command

    load(berlin)
    rollups.rollups_refresh()
    call_command("change_timezone", "berlin", "Asia/Tokyo", stdout=StringIO())
    berlin.refresh_from_db()
    assert berlin.timezone == "Asia/Tokyo" and UsageDirtyDay.objects.for_org(berlin).exists()
    assert_same_as_raw(berlin)
    with pytest.raises(CommandError):
        call_command("change_timezone", "berlin", "Mars/Olympus", stdout=StringIO())
