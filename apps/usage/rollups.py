"""Daily rollups of usage, so that cost questions over months read thousands of rows, not millions.

Correctness never depends on them. A summary reads the rollups of clean days and the raw records
of dirty days: its totals always equal the raw records.

Two kinds of writers keep them current:

* Ingest adds what it stored to the rollups as increments (rows with `increment` set), in the same
  statement as the records, so a day being written to stays clean and is read from its rollups.
  `merge_increments` folds them into one row per group every minute.
* Everything that changes stored usage (re-rating, late pricing, FX conversion, a time-zone change)
  marks the days it touches dirty; `rollup_dirty_days` recomputes them from the raw records.

Both kinds of writers hold a shared advisory lock per (organization, day) until they commit; a
recomputation takes it exclusively, so it waits for the writers in flight and sees all they wrote,
and increments written after it was computed are added on top of it.
PostgreSQL only; elsewhere (the SQLite demo) summaries read the raw records.
"""

from datetime import date, datetime, time, timedelta

from django.db import connection, transaction

from apps.tenancy.models import Organization
from apps.usage.models import UsageDailyByCostCenter, UsageDailyByModel, UsageDailyByUser, UsageDirtyDay

# The dimensions each rollup keeps besides the day and the cost center, smallest rollup first: a
# question is answered by the first that has all it needs. One that needs dimensions of two (user and
# model, user and feature) reads the records.
ROLLUPS = {
    UsageDailyByCostCenter: (),
    UsageDailyByModel: ("provider", "model", "environment", "feature"),
    UsageDailyByUser: ("user_id",),
}

_MEASURE_COLUMNS = (
    "requests, input_tokens, output_tokens, cost, unpriced_requests, unconverted_requests, latency_sum, latency_count"
)
# The measures of a group of usage records, in _MEASURE_COLUMNS order.
_MEASURES_OF_RECORDS = (
    "count(*), sum(input_tokens), sum(output_tokens), "
    "coalesce(sum(billing_cost) FILTER (WHERE pricing_status = 'priced'), 0), "
    "count(*) FILTER (WHERE pricing_status = 'unpriced'), count(*) FILTER (WHERE pricing_status = 'no_fx_rate'), "
    "coalesce(sum(latency_ms), 0), count(latency_ms)"
)
# The measures of a group of rollup rows, in _MEASURE_COLUMNS order.
_MEASURES_OF_ROLLUPS = ", ".join(f"sum({column})" for column in _MEASURE_COLUMNS.split(", "))
# What the rollups need of a stored record.
_RECORD_COLUMNS = sorted(
    {"organization_id", "timestamp", "cost_center_id", "input_tokens", "output_tokens", "billing_cost"}
    | {"pricing_status", "latency_ms"}
    | {dimension for dimensions in ROLLUPS.values() for dimension in dimensions}
)


def enabled() -> bool:
    return connection.vendor == "postgresql"


def _group_positions(dimensions) -> str:
    return ", ".join(str(n) for n in range(1, 4 + len(dimensions)))


# Hold the days shared until the writer's transaction ends.
LOCK_DAYS_SQL = "SELECT pg_advisory_xact_lock_shared(%s, d) FROM unnest(%s::int[]) AS d"

# Hold the days shared until the writer's transaction ends, and mark them dirty. A rollup that ran
# between the writer's rows and this lock committed before the mark, so the day is dirty again after it.
MARK_DAYS_SQL = (
    f"{LOCK_DAYS_SQL}; "
    "INSERT INTO usage_usagedirtyday (organization_id, day) "
    "SELECT %s, date '0001-01-01' + (d - 1) FROM unnest(%s::int[]) AS d ON CONFLICT DO NOTHING"
)


def lock_days_params(*, organization_id: int, days: set[date]) -> list:
    return [organization_id, sorted(d.toordinal() for d in days)]


def mark_days_params(*, organization_id: int, days: set[date]) -> list:
    return lock_days_params(organization_id=organization_id, days=days) * 2


def mark_days_dirty(*, organization_id: int, days: set[date]) -> None:
    """Inside the writer's transaction: hold the days shared until commit and mark them dirty."""
    if not days or not enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(MARK_DAYS_SQL, mark_days_params(organization_id=organization_id, days=days))


def lock_days_shared(*, organization_id: int, days: set[date]) -> None:
    """Inside the writer's transaction: hold the days shared until commit (no recomputation runs meanwhile)."""
    if not days or not enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(LOCK_DAYS_SQL, lock_days_params(organization_id=organization_id, days=days))


def insert_with_increments_sql(insert_sql: str) -> str:
    """`insert_sql` (an INSERT INTO usage_usagerecord ... ON CONFLICT DO NOTHING) that also adds the rows it
    stored, and only those, to every rollup as increments. The statement returns the number of rows stored.

    Its parameters are those of `insert_sql`, then the organization's time zone once per rollup (see
    `increments_params`). The caller holds the days shared (LOCK_DAYS_SQL) until it commits.
    """
    parts = [f"stored AS ({insert_sql} RETURNING {', '.join(_RECORD_COLUMNS)})"]
    for n, (model, dimensions) in enumerate(ROLLUPS.items()):
        keys = ", ".join(("cost_center_id", *dimensions))
        parts.append(
            f"increments_{n} AS (INSERT INTO {model._meta.db_table} "
            f"(organization_id, day, {keys}, {_MEASURE_COLUMNS}, increment) "
            f"SELECT organization_id, (timestamp AT TIME ZONE %s)::date, {keys}, "
            f"{_MEASURES_OF_RECORDS}, true FROM stored GROUP BY {_group_positions(dimensions)})"
        )
    return f"WITH {', '.join(parts)} SELECT count(*) FROM stored"


def increments_params(*, organization: Organization) -> list:
    return [organization.timezone] * len(ROLLUPS)


def rollup_day(*, organization: Organization, day: date) -> None:
    """Recompute one day's rollups from the raw records; the day is clean afterwards."""
    start = datetime.combine(day, time.min, tzinfo=organization.tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=organization.tz)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [organization.pk, day.toordinal()])
        cursor.execute(
            "DELETE FROM usage_usagedirtyday WHERE organization_id = %s AND day = %s", [organization.pk, day]
        )
        for model, dimensions in ROLLUPS.items():
            table = model._meta.db_table
            keys = ", ".join(("cost_center_id", *dimensions))
            cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s AND day = %s", [organization.pk, day])
            cursor.execute(
                f"""
                INSERT INTO {table} (organization_id, day, {keys}, {_MEASURE_COLUMNS}, increment)
                SELECT organization_id, %s, {keys}, {_MEASURES_OF_RECORDS}, false
                FROM usage_usagerecord
                WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
                GROUP BY organization_id, {keys}
                """,
                [day, organization.pk, start, end],
            )


def rollup_dirty_days(*, limit: int = 500) -> int:
    """Roll up the days marked dirty, oldest first."""
    if not enabled():
        return 0
    pending = list(
        UsageDirtyDay.objects.order_by("organization_id", "day").values_list("organization_id", "day")[:limit]
    )
    organizations = Organization.objects.in_bulk({org_id for org_id, _ in pending})
    for org_id, day in pending:
        if org_id in organizations:
            rollup_day(organization=organizations[org_id], day=day)
    return len(pending)


def merge_increments(*, limit: int = 500) -> int:
    """Fold each day's increments and rows into one row per group; returns the days merged.

    Each rollup's day is deleted and written back summed by one statement, which sees one snapshot:
    increments committed meanwhile are neither deleted nor counted, so they stay as they are, and a
    recomputation running at the same time keeps the rows it wrote. Rows are only ever inserted and
    deleted, never updated, so no writer waits for this.
    """
    if not enabled():
        return 0
    days: set[tuple[int, date]] = set()
    for model in ROLLUPS:
        days |= set(model.objects.filter(increment=True).values_list("organization_id", "day").distinct()[:limit])
    pending = sorted(days)[:limit]
    with connection.cursor() as cursor:
        for org_id, day in pending:
            for model, dimensions in ROLLUPS.items():
                table = model._meta.db_table
                keys = ", ".join(("cost_center_id", *dimensions))
                cursor.execute(
                    f"""
                    WITH merged AS (DELETE FROM {table} WHERE organization_id = %s AND day = %s RETURNING *)
                    INSERT INTO {table} (organization_id, day, {keys}, {_MEASURE_COLUMNS}, increment)
                    SELECT organization_id, day, {keys}, {_MEASURES_OF_ROLLUPS}, false
                    FROM merged GROUP BY {_group_positions(dimensions)}
                    """,
                    [org_id, day],
                )
    return len(pending)


def rollups_refresh() -> dict[str, int]:
    """Run every minute by the beat schedule: recompute the dirty days, then merge the increments."""
    return {"recomputed_days": rollup_dirty_days(), "merged_days": merge_increments()}


def rollups_invalidate(*, organization: Organization) -> None:
    """After the organization's time zone changed: every day is cut anew."""
    if not enabled():
        return
    with transaction.atomic():
        for model in ROLLUPS:
            model.objects.for_org(organization).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO usage_usagedirtyday (organization_id, day)
                SELECT DISTINCT organization_id, (timestamp AT TIME ZONE %s)::date
                FROM usage_usagerecord WHERE organization_id = %s ON CONFLICT DO NOTHING
                """,
                [organization.timezone, organization.pk],
            )
