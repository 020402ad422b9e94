"""What would move the figures of bench/scale.py, measured without changing the product.

Each experiment replays SQL that the product itself sent (captured with Django's execute_wrapper while the
product served a request or closed a month), or SQL equivalent to a proposed change, under different
session settings, and reports the median of a few runs. Nothing here is written to the database.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from datetime import time as dtime

from django.db import connection, transaction


def replay(sql: str, params, *, settings: list[str], runs: int = 5) -> dict:
    """Median wall ms of the query under each SET list (in a transaction rolled back afterwards)."""
    out = {}
    for label in settings:
        times = []
        for _ in range(runs):
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in filter(None, label.split(";")):
                    cursor.execute(f"SET LOCAL {statement.strip()}")
                t = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                times.append((time.perf_counter() - t) * 1000)
                transaction.set_rollback(True)
        out[label or "defaults"] = round(statistics.median(times), 1)
    return out


def explain(sql: str, params, settings: str = "") -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in filter(None, settings.split(";")):
            cursor.execute(f"SET LOCAL {statement.strip()}")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def capture(fn):
    """Run fn() and return [(ms, sql, params)] of every query it sent."""
    queries = []

    def wrapper(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - t) * 1000, sql, params))

    with connection.execute_wrapper(wrapper):
        fn()
    return queries


def slowest(queries, contains: str = ""):
    candidates = [q for q in queries if q[1].lstrip().upper().startswith("SELECT") and contains in q[1]]
    return max(candidates, key=lambda q: q[0]) if candidates else None


SETTINGS = ["", "jit = off", "jit = off; work_mem = '32MB'"]


def run_all(*, organization, raw_key: str, today, close_month) -> dict:
    from django.db.models import Q, Sum
    from django.http import QueryDict
    from django.test import Client

    from apps.budgets.models import Budget
    from apps.budgets.selectors import budget_status
    from apps.dashboard.selectors import dashboard_build
    from apps.usage.models import PricingStatus, UsageDailyByModel, UsageDirtyDay, UsageRecord

    tz = organization.tz
    results: dict = {}
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}
    start = today - timedelta(days=29)

    # 1. The raw read of today (the dirty day) inside GET /api/v1/costs, under JIT on/off and more work_mem.
    for group_by in ("day,cost_center", ""):
        path = f"/api/v1/costs?start={start}&end={today}" + (f"&group_by={group_by}" if group_by else "")
        client.get(path, **auth)
        queries = capture(lambda path=path: client.get(path, **auth))
        q = slowest(queries, "usage_usagerecord")
        results[f"today raw part of costs 30d group_by={group_by or '-'}"] = {
            "captured_ms": round(q[0], 1),
            "replay_ms": replay(q[1], q[2], settings=SETTINGS),
        }

    # 2. The same raw read over only the newest records: what a finer dirty mark (an hour, or a watermark of what
    #    the last rollup saw, with the rollup running every minute) would leave to read raw. Windows holding an
    #    hour's and a minute's worth of today's records at today's average rate.
    day_start = datetime.combine(today, dtime.min, tzinfo=tz)
    now = datetime.now(tz)
    day_rows = UsageRecord.objects.filter(organization=organization, timestamp__gte=day_start).count()
    sql, params = q[1], list(q[2])
    windows = {}
    for label, share in (("an hour's worth", 24), ("a minute's worth", 1440)):
        newest = (
            UsageRecord.objects.filter(organization=organization, timestamp__gte=day_start)
            .order_by("-timestamp")
            .values_list("timestamp", flat=True)[day_rows // share : day_rows // share + 1]
        )
        since = newest[0] if newest else day_start
        # the captured query filters [30-day start, end) and the dirty day's [start, end): move both starts
        swapped = [since if (isinstance(p, datetime) and p <= day_start) else p for p in params]
        windows[label] = {"rows": day_rows // share, "replay_ms": replay(sql, swapped, settings=["", "jit = off"])}
    results["today raw part of costs 30d group_by=-, newest records only"] = {"rows_today": day_rows, **windows}

    # 3. The dashboard's budget burn: budget_status reads the month's raw records once per budget.
    budgets = list(
        Budget.objects.filter(organization=organization, active=True).select_related("organization", "cost_center")
    )
    if budgets:
        queries = capture(lambda: budget_status(budget=budgets[-1]))
        q = slowest(queries, "usage_usagerecord")
        results["budget_status (one budget)"] = {
            "captured_ms": round(q[0], 1),
            "replay_ms": replay(q[1], q[2], settings=["", "jit = off"], runs=3),
        }
        # the same spend per cost center from the daily rollups of the month's clean days plus today's raw records
        month_start = today.replace(day=1)
        dirty = list(
            UsageDirtyDay.objects.filter(organization=organization, day__gte=month_start).values_list("day", flat=True)
        )

        def from_rollups():
            by_cc = dict(
                UsageDailyByModel.objects.filter(organization=organization, day__gte=month_start, day__lt=today)
                .exclude(day__in=dirty)
                .values_list("cost_center_id")
                .annotate(s=Sum("cost"))
                .values_list("cost_center_id", "s")
            )
            moments = Q()
            for day in set(dirty) | {today}:
                first = datetime.combine(day, dtime.min, tzinfo=tz)
                moments |= Q(timestamp__gte=first, timestamp__lt=first + timedelta(days=1))
            for cc, s in (
                UsageRecord.objects.filter(
                    moments, organization=organization, timestamp__lt=now, pricing_status=PricingStatus.PRICED
                )
                .values_list("cost_center_id")
                .annotate(s=Sum("billing_cost"))
                .values_list("cost_center_id", "s")
            ):
                by_cc[cc] = by_cc.get(cc, 0) + s
            return by_cc

        from_rollups()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            from_rollups()
            times.append((time.perf_counter() - t) * 1000)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            times_nojit = []
            for _ in range(5):
                t = time.perf_counter()
                from_rollups()
                times_nojit.append((time.perf_counter() - t) * 1000)
        results["month-to-date spend of every cost center from rollups + today's raw records (all budgets)"] = {
            "ms": round(statistics.median(times), 1),
            "ms_jit_off": round(statistics.median(times_nojit), 1),
        }

    # 4. The dashboard's six summaries each read today's raw records; one grouped read of them would do.
    queries = capture(lambda: dashboard_build(organization=organization, params=QueryDict("range=30")))
    reads = [q for q in queries if q[1].startswith("SELECT") and 'FROM "usage_usagerecord"' in q[1]]
    budget_reads = [q for q in reads if 'AS "total"' in q[1]]
    summary_reads = [q for q in reads if q not in budget_reads]
    results["dashboard range=30: reads of usage_usagerecord"] = {
        "summaries_today_raw": {
            "count": len(summary_reads),
            "ms": [round(q[0], 1) for q in summary_reads],
            "sum_ms": round(sum(q[0] for q in summary_reads), 1),
        },
        "budget_status": {
            "count": len(budget_reads),
            "ms": [round(q[0], 1) for q in budget_reads],
            "sum_ms": round(sum(q[0] for q in budget_reads), 1),
        },
    }
    sql = (
        "SELECT cost_center_id, provider, model, environment, user_id, feature, sum(billing_cost) FILTER "
        "(WHERE pricing_status = 'priced'), sum(input_tokens), sum(output_tokens), count(*), count(*) FILTER "
        "(WHERE pricing_status = 'unpriced'), count(*) FILTER (WHERE pricing_status = 'no_fx_rate'), "
        "sum(latency_ms), count(latency_ms) FROM usage_usagerecord WHERE organization_id = %s AND "
        "timestamp >= %s AND timestamp < %s GROUP BY 1, 2, 3, 4, 5, 6"
    )
    results["one read of today's raw records grouped by every dashboard dimension"] = {
        "replay_ms": replay(
            sql, [organization.pk, day_start, day_start + timedelta(days=1)], settings=SETTINGS, runs=3
        ),
    }

    # 4b. Where the dashboard's Python time goes (budgets off, so that SQL does not hide it): cProfile of one page.
    results["dashboard range=30 (no budget): Python profile"] = profile_dashboard(organization, client, budgets)

    # 5. The month close's main query: as planned (parallel seq scan here: the month is 60 % of this table) and
    #    forced onto the (organization, timestamp) index, as it would run where the month is a small part of
    #    the table (a year of history, or many tenants in one table).
    from apps.billing.models import Invoice
    from apps.billing.periods import next_month
    from apps.billing.services import invoice_close

    previous = (close_month - timedelta(days=1)).replace(day=1)
    closed_prev_at = datetime.combine(next_month(previous) + timedelta(days=3), dtime.min, tzinfo=tz) + timedelta(
        hours=3
    )
    queries = []

    def close():
        # in a transaction rolled back: the month before closed as of a few days after it ended, then this month
        with transaction.atomic():
            invoice_close(organization=organization, period=previous, now=closed_prev_at)
            queries.extend(capture(lambda: invoice_close(organization=organization, period=close_month)))
            transaction.set_rollback(True)

    Invoice.objects.filter(organization=organization).delete()
    close()
    q = slowest(queries, "usage_usagerecord")
    results["month close: usage lines query"] = {
        "captured_ms": round(q[0], 1),
        "replay_ms": replay(q[1], q[2], settings=["", "jit = off", "jit = off; enable_seqscan = off"], runs=2),
        "plan_index_path": explain(q[1], q[2], "jit = off; enable_seqscan = off"),
    }
    late = [x for x in queries if 'received_at" >=' in x[1]]
    if late:
        results["month close: late usage query of one earlier month"] = {
            "plan": explain(late[0][1], late[0][2], ""),
        }
    return results


def profile_dashboard(organization, client, budgets) -> dict:
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model

    from apps.budgets.models import Budget

    client.force_login(get_user_model().objects.get(username="finance@scale.example"))
    path = f"/dashboard/{organization.slug}/?range=30"
    Budget.objects.filter(organization=organization).update(active=False)
    try:
        for _ in range(2):
            client.get(path)
        walls, sqls = [], []
        for _ in range(3):
            t = time.perf_counter()
            queries = capture(lambda: client.get(path))
            walls.append((time.perf_counter() - t) * 1000)
            sqls.append(sum(q[0] for q in queries))
        profiler = cProfile.Profile()
        profiler.enable()
        client.get(path)
        profiler.disable()
    finally:
        Budget.objects.filter(organization=organization, pk__in=[b.pk for b in budgets]).update(active=True)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(14)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    cum = io.StringIO()
    pstats.Stats(profiler, stream=cum).sort_stats("cumulative").print_stats(r"apps/|django/template/base|charts", 16)
    cum_lines = [line for line in cum.getvalue().splitlines() if line.strip()]
    cstart = next((i for i, line in enumerate(cum_lines) if line.lstrip().startswith("ncalls")), 0)
    wall, sql = statistics.median(walls), statistics.median(sqls)
    return {
        "wall_ms": round(wall, 1),
        "sql_ms": round(sql, 1),
        "python_ms": round(wall - sql, 1),
        "by_tottime": lines[start : start + 15],
        "by_cumulative_in_app": cum_lines[cstart : cstart + 17],
    }
