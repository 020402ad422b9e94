"""Child process of bench/scale.py: stream the ERP CSV of a range to /dev/null and report memory and speed.

    .venv/bin/python bench/scale_erp_child.py --db costportal_bench_scale --org bench-scale \
        --start 2026-10-01T00:00:00+02:00 --end 2026-11-01T00:00:00+01:00

Prints one JSON line: rows, seconds, ru_maxrss (KiB, this process), RSS samples of this process and the private
(anonymous) RSS of its PostgreSQL backend taken every 0.1 s, and the RSS after every 250,000 rows.
"""

import argparse
import json
import os
import resource
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_kib(pid: int | str = "self", field: str = "VmRSS") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--out", default="/dev/null")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "costportal.settings.base"
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.db import connection

    from apps.exports.erp import erp_csv_lines
    from apps.tenancy.models import Organization

    organization = Organization.objects.get(slug=args.org)
    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)

    samples: list[tuple[float, int | None, int | None]] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, rss_kib(), rss_kib(backend_pid, "RssAnon")))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    rss_before = rss_kib()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler.start()
    progress = []
    rows = -1  # the header is not a row
    size = 0
    first_row_at = None
    with open(args.out, "w") as out:
        for line in erp_csv_lines(organization=organization, start=start, end=end):
            out.write(line)
            size += len(line)
            rows += 1
            if rows == 1:
                first_row_at = time.perf_counter() - t0
            if rows and rows % 250_000 == 0:
                progress.append((rows, round(time.perf_counter() - t0, 2), rss_kib(), rss_kib(backend_pid, "RssAnon")))
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    own = [s[1] for s in samples if s[1] is not None]
    backend = [s[2] for s in samples if s[2] is not None]
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds) if seconds else None,
                "first_row_s": round(first_row_at, 3) if first_row_at is not None else None,
                "chars": size,
                "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "ru_maxrss_before_kib": maxrss_before,
                "rss_before_kib": rss_before,
                "rss_sampled_max_kib": max(own) if own else None,
                "rss_sampled_median_kib": sorted(own)[len(own) // 2] if own else None,
                "backend_rss_anon_max_kib": max(backend) if backend else None,
                "samples": len(samples),
                "progress": progress,
            }
        )
    )


if __name__ == "__main__":
    main()
