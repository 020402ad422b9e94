"""Daily rollups of usage, so that cost questions over months read thousands of rows, not millions.

Correctness never depends on them. Every writer of usage marks the days it touches dirty, under a
shared advisory lock per (organization, day); the rollup of a day takes that lock exclusively, so
it waits for the writers in flight and sees all they wrote. A summary reads the rollups of clean
days and the raw records of dirty days: its totals always equal the raw records.
PostgreSQL only; elsewhere (the SQLite demo) summaries read the raw records.
"""

from datetime import date, datetime, time, timedelta

from django.db import connection, transaction

from apps.tenancy.models import Organization
from apps.usage.models import UsageDailyByModel, UsageDailyByUser, UsageDirtyDay

# The dimensions each rollup keeps (cost center, day and the measures are in both).
ROLLUPS = {
    UsageDailyByModel: ("provider", "model", "environment"),
    UsageDailyByUser: ("user_id", "feature"),
}


def enabled() -> bool:
    return connection.vendor == "postgresql"


# Hold the days shared until the writer's transaction ends, and mark them dirty. A rollup that ran
# between the writer's rows and this lock committed before the mark, so the day is dirty again after it.
MARK_DAYS_SQL = (
    "SELECT pg_advisory_xact_lock_shared(%s, d) FROM unnest(%s::int[]) AS d; "
    "INSERT INTO usage_usagedirtyday (organization_id, day) "
    "SELECT %s, date '0001-01-01' + (d - 1) FROM unnest(%s::int[]) AS d ON CONFLICT DO NOTHING"
)


def mark_days_params(*, organization_id: int, days: set[date]) -> list:
    ordinals = sorted(d.toordinal() for d in days)
    return [organization_id, ordinals, organization_id, ordinals]


def mark_days_dirty(*, organization_id: int, days: set[date]) -> None:
    """Inside the writer's transaction: hold the days shared until commit and mark them dirty."""
    if not days or not enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(MARK_DAYS_SQL, mark_days_params(organization_id=organization_id, days=days))


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
            columns = ", ".join(dimensions)
            cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s AND day = %s", [organization.pk, day])
            cursor.execute(
                f"""
                INSERT INTO {table} (organization_id, day, cost_center_id, {columns}, requests, input_tokens,
                    output_tokens, cost, unpriced_requests, unconverted_requests, latency_sum, latency_count)
                SELECT organization_id, %s, cost_center_id, {columns}, count(*), sum(input_tokens),
                    sum(output_tokens), coalesce(sum(billing_cost) FILTER (WHERE pricing_status = 'priced'), 0),
                    count(*) FILTER (WHERE pricing_status = 'unpriced'),
                    count(*) FILTER (WHERE pricing_status = 'no_fx_rate'),
                    coalesce(sum(latency_ms), 0), count(latency_ms)
                FROM usage_usagerecord
                WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
                GROUP BY organization_id, cost_center_id, {columns}
                """,
                [day, organization.pk, start, end],
            )


def rollup_dirty_days(*, limit: int = 500) -> int:
    """Roll up the days marked dirty, oldest first; run every minute by the beat schedule."""
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
