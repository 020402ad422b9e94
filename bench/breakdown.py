"""Where the time of one ingest request goes: the product's ingest path timed step by step, in process.

Run from the repository root (after or instead of bench/ingest.py; it makes its own database):

    .venv/bin/python bench/breakdown.py

No HTTP server and no concurrency: requests go one after another through Django's WSGI handler (the
same middleware, DRF view, authentication, throttle and service as under gunicorn), with timers wrapped
around the product's own functions. For each step it prints the wall time, and for the whole request
the CPU time of this Python process and of its PostgreSQL backend, so that

    requests/s on N cores  <=  N / (Python CPU + PostgreSQL CPU per request)

gives the ceiling that the product code sets, whatever gunicorn does. Then it measures, without
changing the product, what the candidate fixes would save:

  * single record: one `INSERT ... VALUES ... ON CONFLICT DO NOTHING` in autocommit against the
    temp-table path (CREATE TEMP TABLE IF NOT EXISTS, TRUNCATE, COPY, INSERT ... SELECT, COMMIT);
    the ORM's cost per lookup query against the same SQL sent raw;
  * batch: PostgreSQL's own cost per row of the temp-table path and of plain COPY, with and without
    the table's foreign-key triggers and its single-column foreign-key indexes (on scratch copies
    of the table, dropped afterwards); psycopg's text against binary COPY formatting.

The timers add about half a microsecond per wrapped call; the per-record figures include that.
"""

import argparse
import io
import os
import resource
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
import psycopg  # noqa: E402

from bench.ingest import capture_priced_rows, copy_payloads, make_records, pg_url, prepare  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timers:
    """Inclusive wall time and call count per label, from wrappers put around functions and methods."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack = ExitStack()

    def wrap(self, owner, name: str, label: str | None = None, key=None):
        original = getattr(owner, name)
        seconds, calls = self.seconds, self.calls

        def timed(*args, **kwargs):
            tag = label if key is None else key(*args, **kwargs)
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[tag] += time.perf_counter() - t0
                calls[tag] += 1

        setattr(owner, name, timed)
        self.stack.callback(setattr, owner, name, original)

    def wrap_cm(self, owner, name: str, label: str):
        """A method returning a context manager: time from the call to the end of the with block."""
        original = getattr(owner, name)
        seconds, calls = self.seconds, self.calls

        @contextmanager
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                with original(*args, **kwargs) as value:
                    yield value
            finally:
                seconds[label] += time.perf_counter() - t0
                calls[label] += 1

        setattr(owner, name, timed)
        self.stack.callback(setattr, owner, name, original)

    def reset(self):
        self.seconds.clear()
        self.calls.clear()

    def close(self):
        self.stack.close()


def instrument(timers: Timers):
    from django.db.backends.postgresql.base import DatabaseWrapper
    from psycopg import Connection, Copy, Cursor

    from apps.tenancy.authentication import ApiKeyAuthentication
    from apps.tenancy.throttling import ApiKeyRateThrottle
    from apps.usage import services
    from apps.usage.api import views

    timers.wrap(views, "read_json_body", "read_json_body (orjson parse)")
    timers.wrap(ApiKeyAuthentication, "authenticate", "auth: ApiKeyAuthentication.authenticate")
    timers.wrap(ApiKeyRateThrottle, "allow_request", "throttle: Redis INCR")
    timers.wrap(DatabaseWrapper, "is_usable", "CONN_HEALTH_CHECKS: SELECT 1")
    timers.wrap(services, "usage_ingest", "usage_ingest")
    timers.wrap(services, "pricing_revision", "  pricing_revision()")
    timers.wrap(services, "price_book_for", "  price_book_for() (cached)")
    timers.wrap(services, "fx_table", "  fx_table() (cached)")
    timers.wrap(services, "cost_center_codes", "  cost_center_codes()")
    timers.wrap(services, "clean_record", "  clean_record (validation)")
    timers.wrap(services, "_attribute", "  _attribute")
    timers.wrap(services, "price_usage", "  price_usage (pricing)")
    timers.wrap(services, "_insert_rows_postgres", "  _insert_rows_postgres")
    timers.wrap(services, "lock_days_shared", "    lock_days_shared (rollups)")
    timers.wrap(Cursor, "execute", key=lambda cur, query, *a, **k: "    " + _sql_label(query))
    timers.wrap_cm(Cursor, "copy", "    COPY stage FROM STDIN (whole block)")
    timers.wrap(Copy, "write_row", "      copy.write_row (psycopg formatting)")
    timers.wrap(Connection, "commit", "    COMMIT")


def _sql_label(query) -> str:
    text = query if isinstance(query, str) else str(query)
    compact = " ".join(text.split())
    for needle, label in (
        ("CREATE TEMP TABLE", "CREATE TEMP TABLE IF NOT EXISTS"),
        ("TRUNCATE", "TRUNCATE stage"),
        ("INSERT INTO usage_usagerecord", "INSERT ... SELECT ... ON CONFLICT"),
        ("tenancy_apikey", "SELECT api key (auth)"),
        ("UPDATE", "UPDATE (last_used_at)"),
        ("pricing_pricingrevision", "SELECT pricing revision"),
        ("tenancy_costcenter", "SELECT cost centers"),
        ("SELECT 1", "SELECT 1"),
        ("pg_advisory_xact_lock_shared", "SELECT pg_advisory_xact_lock_shared (rollups)"),
        ("usage_usagedirtyday", "INSERT usage_usagedirtyday (rollups)"),
    ):
        if needle in compact:
            return f"sql {label}"
    return "sql " + compact[:40]


def wsgi_environ(body: bytes, raw_key: str) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/usage", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {raw_key}", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def run_requests(app, bodies: list[bytes], raw_key: str) -> dict:
    """Send bodies one after another through the WSGI app; wall, this process's CPU and the backend's CPU."""
    from django.db import connection

    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call(body):
        response = app(wsgi_environ(body, raw_key), start_response)
        data = b"".join(response)
        response.close()
        return data

    call(bodies[0])  # opens the connection, loads the price book
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    statuses.clear()
    cpu0, pg0, t0 = self_cpu(), proc_cpu(backend), time.perf_counter()
    for body in bodies[1:]:
        data = call(body)
    wall = time.perf_counter() - t0
    cpu, pg = self_cpu() - cpu0, proc_cpu(backend) - pg0
    bad = [s for s in statuses if not s.startswith("201")]
    if bad:
        raise SystemExit(f"unexpected answers {bad[:3]}: {data[:300]!r}")
    return {"wall": wall, "cpu": cpu, "pg": pg, "n": len(bodies) - 1}


def print_steps(timers: Timers, n: int, unit: str, per: float):
    print(f"   {'step (inclusive; indented = inside the one above)':<58} {'calls':>7} {f'us/{unit}':>12}")
    order = [
        "CONN_HEALTH_CHECKS: SELECT 1", "auth: ApiKeyAuthentication.authenticate", "    sql SELECT api key (auth)",
        "throttle: Redis INCR", "read_json_body (orjson parse)", "usage_ingest", "  pricing_revision()",
        "  price_book_for() (cached)", "  fx_table() (cached)", "  cost_center_codes()", "  clean_record (validation)",
        "  _attribute", "  price_usage (pricing)", "  _insert_rows_postgres", "    lock_days_shared (rollups)",
        "    sql SELECT pg_advisory_xact_lock_shared (rollups)", "    sql INSERT usage_usagedirtyday (rollups)",
        "    sql CREATE TEMP TABLE IF NOT EXISTS",
        "    sql TRUNCATE stage", "    COPY stage FROM STDIN (whole block)", "      copy.write_row (psycopg formatting)",
        "    sql INSERT ... SELECT ... ON CONFLICT", "    COMMIT",
    ]
    seen = set()
    for label in order + sorted(timers.seconds):
        if label in seen or label not in timers.seconds:
            continue
        seen.add(label)
        print(f"   {label:<58} {timers.calls[label]:>7} {timers.seconds[label] / n * 1e6 / per:>12.1f}")


def part_single(app, raw_key: str, timers: Timers, count: int):
    print(f"\n== single-record POST /api/v1/usage, {count:,} requests in process (Django WSGI handler, no gunicorn)")
    bodies = [orjson.dumps(r) for r in make_records(count + 1, "bd-single", seed=3)]
    timers.reset()
    out = run_requests(app, bodies, raw_key)
    n = out["n"]
    print_steps(timers, n, "request", 1)
    total = out["wall"] / n * 1e6
    print(f"   {'whole request (wall)':<58} {'':>7} {total:>12.1f}")
    print(f"   {'CPU: this Python process':<58} {'':>7} {out['cpu'] / n * 1e6:>12.1f}")
    print(f"   {'CPU: its PostgreSQL backend':<58} {'':>7} {out['pg'] / n * 1e6:>12.1f}")
    ceiling = 2 / ((out["cpu"] + out["pg"]) / n)
    print(f"   => ceiling on 2 cores, before HTTP parsing, gunicorn and the client: {ceiling:,.0f} requests/s")
    return out


def part_batch(app, raw_key: str, timers: Timers, records: int, batch: int):
    print(f"\n== batch POST /api/v1/usage, {records:,} records in batches of {batch:,}, in process")
    recs = make_records(records + batch, "bd-batch", seed=1)
    bodies = [orjson.dumps({"records": recs[i:i + batch]}) for i in range(0, len(recs), batch)]
    timers.reset()
    out = run_requests(app, bodies, raw_key)
    n = out["n"] * batch
    print_steps(timers, out["n"], "record", batch)
    print(f"   {'whole request (wall), per record':<58} {'':>7} {out['wall'] / n * 1e6:>12.2f}")
    print(f"   {'CPU: this Python process, per record':<58} {'':>7} {out['cpu'] / n * 1e6:>12.2f}")
    print(f"   {'CPU: its PostgreSQL backend, per record':<58} {'':>7} {out['pg'] / n * 1e6:>12.2f}")
    ceiling = 2 / ((out["cpu"] + out["pg"]) / n)
    print(f"   => ceiling on 2 cores, before HTTP, gunicorn and the client: {ceiling:,.0f} records/s")
    return out


def part_single_whatif(organization, api_key, count: int):
    """One row through the product's temp-table path against one INSERT ... VALUES in autocommit."""
    from django.db import connection

    from apps.tenancy.selectors import cost_center_codes
    from apps.pricing.selectors import pricing_revision
    from apps.usage.services import _insert_rows_postgres

    print(f"\n== what-if, single record ({count:,} calls each, in process)")
    rows = capture_priced_rows(organization, api_key, make_records(2 * count, "bd-whatif", seed=4))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def measure(label, fn, items):
        cpu0, pg0, t0 = self_cpu(), proc_cpu(backend), time.perf_counter()
        for item in items:
            fn(item)
        n = len(items)
        wall, cpu, pg = time.perf_counter() - t0, self_cpu() - cpu0, proc_cpu(backend) - pg0
        print(f"   {label:<74} wall {wall / n * 1e6:7.0f} us, Python CPU {cpu / n * 1e6:6.0f} us, "
              f"PostgreSQL CPU {pg / n * 1e6:6.0f} us")

    tz = organization.tz

    def product_insert(row):
        return _insert_rows_postgres(organization, [row], {row[2].astimezone(tz).date()})

    measure("product: _insert_rows_postgres(organization, [row], days) (INSERT ... VALUES with rollup increments)",
            product_insert, rows[:count])

    raw_key_hash = api_key.key_hash
    qs_sql, qs_params = _api_key_sql(raw_key_hash)

    def raw_lookup(_):
        with connection.cursor() as cursor:
            cursor.execute(qs_sql, qs_params)
            cursor.fetchone()

    from apps.tenancy.models import ApiKey

    measure("ORM: ApiKey select_related(organization, default_cost_center).filter(key_hash).first()",
            lambda _: ApiKey.objects.select_related("organization", "default_cost_center")
            .filter(key_hash=raw_key_hash).first(), range(count))
    measure("the same SQL sent raw (cursor.execute + fetchone)", raw_lookup, range(count))
    measure("ORM: pricing_revision()", lambda _: pricing_revision(), range(count))
    measure("ORM: cost_center_codes()", lambda _: cost_center_codes(organization=organization), range(count))
    measure("SELECT 1 (the per-request CONN_HEALTH_CHECKS probe)", lambda _: connection.is_usable(), range(count))


def _api_key_sql(key_hash: str):
    from apps.tenancy.models import ApiKey

    qs = ApiKey.objects.select_related("organization", "default_cost_center").filter(key_hash=key_hash)[:1]
    return qs.query.sql_with_params()


def part_pg(db_url: str, organization, api_key, rows_count: int, batch: int):
    """PostgreSQL's own CPU per row for the ways a batch can reach the table (scratch tables, dropped after)."""
    from apps.usage.services import INGEST_COLUMNS

    columns = ", ".join(INGEST_COLUMNS)
    admin = psycopg.connect(db_url, autocommit=True)
    print(f"\n== PostgreSQL cost per row, {rows_count:,} rows in transactions of {batch:,}, one connection "
          "(backend CPU; no Python work timed)")

    def payloads(tag):
        rows = capture_priced_rows(organization, api_key, make_records(rows_count, f"bd-pg-{tag}", seed=1))
        return rows, copy_payloads(admin, rows, batch)

    def backend_cpu(conn):
        return proc_cpu(conn.info.backend_pid)

    def run(label, table, chunks, *, setup=(), staged=None):
        conn = psycopg.connect(db_url)
        for statement in setup:
            conn.execute(statement)
        conn.commit()
        admin.execute("CHECKPOINT")
        cpu0, t0 = backend_cpu(conn), time.perf_counter()
        for chunk in chunks:
            with conn.transaction():
                if staged is None:
                    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(chunk)
                else:
                    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS bd_stage ON COMMIT DELETE ROWS AS "
                                 f"SELECT {columns} FROM usage_usagerecord WITH NO DATA")
                    conn.execute("TRUNCATE bd_stage")
                    with conn.cursor().copy(f"COPY bd_stage ({columns}) FROM STDIN") as copy:
                        copy.write(chunk)
                    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM bd_stage {staged} "
                                 f"ON CONFLICT (organization_id, request_id) DO NOTHING")
        wall, cpu = time.perf_counter() - t0, backend_cpu(conn) - cpu0
        conn.close()
        print(f"   {label:<78} {cpu / rows_count * 1e6:6.1f} us/row CPU  ({rows_count / wall:>8,.0f} rows/s one stream)")

    # A copy of the table with the same columns, checks, composite indexes and no foreign keys or
    # single-column foreign-key indexes: what the table would be with the suggested changes.
    admin.execute("DROP TABLE IF EXISTS bd_lean")
    admin.execute("CREATE TABLE bd_lean (LIKE usage_usagerecord INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    admin.execute("ALTER TABLE bd_lean ADD PRIMARY KEY (id)")
    admin.execute("ALTER TABLE bd_lean ALTER id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH 100000000)")
    admin.execute("CREATE UNIQUE INDEX ON bd_lean (organization_id, request_id)")
    admin.execute("CREATE INDEX ON bd_lean (organization_id, timestamp)")
    admin.execute("CREATE INDEX ON bd_lean (organization_id, cost_center_id, timestamp)")
    admin.execute("CREATE INDEX ON bd_lean (organization_id, timestamp) WHERE NOT pricing_status = 'priced'")
    admin.execute("INSERT INTO bd_lean SELECT * FROM usage_usagerecord")
    admin.execute("ANALYZE bd_lean")
    try:
        real = "usage_usagerecord"
        run("product path: temp COPY + INSERT ... SELECT ORDER BY ... ON CONFLICT", real, payloads("a")[1],
            staged="ORDER BY request_id")
        run("  same, foreign-key triggers off (session_replication_role=replica)", real, payloads("b")[1],
            staged="ORDER BY request_id", setup=["SET session_replication_role = replica"])
        run("  same, no FKs and no single-column FK indexes (scratch table)", "bd_lean", payloads("c")[1],
            staged="ORDER BY request_id")
        run("plain COPY into usage_usagerecord (all 9 indexes, 4 FK triggers)", real, payloads("d")[1])
        run("  same, foreign-key triggers off", real, payloads("e")[1], setup=["SET session_replication_role = replica"])
        run("  same, no FKs and no single-column FK indexes (scratch table)", "bd_lean", payloads("f")[1])

        rows, _ = payloads("g")
        tags_at = INGEST_COLUMNS.index("tags")
        rows = [(*r[:tags_at], orjson.dumps(r[tags_at]).decode(), *r[tags_at + 1:]) for r in rows]
        print(f"\n== COPY format, {len(rows):,} rows into an unindexed temp table (Python formatting, PostgreSQL parsing)")
        conn = psycopg.connect(db_url)
        conn.execute(f"CREATE TEMP TABLE bd_fmt AS SELECT {columns} FROM usage_usagerecord WITH NO DATA")
        types = [r[0] for r in conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 'bd_fmt'::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum").fetchall()]
        types = [t.split("(")[0] if t.startswith(("character varying", "numeric")) else t for t in types]
        for label, fmt in (("text COPY, write_row (the product's)", ""), ("binary COPY, write_row with set_types", "(FORMAT BINARY)")):
            conn.execute("TRUNCATE bd_fmt")
            conn.commit()
            cpu0, pg0 = self_cpu(), proc_cpu(conn.info.backend_pid)
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY bd_fmt ({columns}) FROM STDIN {fmt}") as copy:
                if fmt:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            cpu, wall = self_cpu() - cpu0, time.perf_counter() - t0
            pg = proc_cpu(conn.info.backend_pid) - pg0
            print(f"   {label:<60} Python {cpu / len(rows) * 1e6:5.2f} us/row, PostgreSQL {pg / len(rows) * 1e6:5.2f} us/row "
                  f"({wall / len(rows) * 1e6:.2f} us wall)")
        conn.close()
    finally:
        admin.execute("DROP TABLE IF EXISTS bd_lean")
        admin.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="costportal_bench_breakdown")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--single", type=int, default=2000, help="Single-record requests to time.")
    parser.add_argument("--records", type=int, default=50_000, help="Records of the batch part.")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--pg-rows", type=int, default=50_000, help="Rows per PostgreSQL variant.")
    args = parser.parse_args(argv)

    bench = prepare(pg_base=args.pg, database=args.database, redis_url=args.redis_url)
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    timers = Timers()
    instrument(timers)
    try:
        # Some volume first, so that the single-record figures are not those of an empty table.
        part_batch(app, bench["raw_key"], timers, args.records, args.batch_size)
        part_single(app, bench["raw_key"], timers, args.single)
    finally:
        timers.close()
    part_single_whatif(bench["organization"], bench["api_key"], min(args.single, 1000))
    from django.db import connections

    connections.close_all()
    part_pg(bench["db_url"], bench["organization"], bench["api_key"], args.pg_rows, args.batch_size)
    with psycopg.connect(pg_url("postgres", args.pg), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
