"""Micro-benchmark: p50 latency of an instrumented openai call vs a plain one, against local fake servers."""

# Run from the repository root:  .venv/bin/python client/bench_overhead.py [--iterations 2000]
# Target: with reporting on, the p50 stays within 1 ms of reporting off. Exit status 1 if not.

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "tests")]

import openai  # noqa: E402
from costportal_client_fakes import API_KEY, FakeOpenAI, FakePortal  # noqa: E402

from costportal_client import Reporter, attribute_to, instrument  # noqa: E402

TARGET_MS = 1.0
MESSAGES = [{"role": "user", "content": "Say hello"}]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()

    upstream = FakeOpenAI().start()
    portal = FakePortal().start()
    with tempfile.TemporaryDirectory() as spool_dir:
        reporter = Reporter(portal.url, API_KEY, spool_dir=spool_dir)
        plain = openai.OpenAI(base_url=upstream.base_url, api_key="sk-bench", max_retries=0)
        wrapped = instrument(
            openai.OpenAI(base_url=upstream.base_url, api_key="sk-bench", max_retries=0), reporter=reporter
        )

        def plain_call() -> object:
            return plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        def wrapped_call() -> object:
            return wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        off: list[float] = []
        on: list[float] = []
        with attribute_to(cost_center="cc_bench", user_id="bench", feature="overhead"):
            for _ in range(args.warmup):
                plain_call()
                wrapped_call()
            # Interleaved so that drift in machine load hits both sides alike.
            for _ in range(args.iterations):
                off.append(timed(plain_call))
                on.append(timed(wrapped_call))

        reporter.flush(timeout=30)
        reported = len(portal.stored)
        reporter.close()
    upstream.stop()
    portal.stop()

    p50_off, p50_on = statistics.median(off), statistics.median(on)
    print(f"iterations: {args.iterations} of each, after {args.warmup} warm-up calls")
    print(f"reporting off: p50 {p50_off:.3f} ms  p90 {percentile(off, 0.9):.3f} ms  p99 {percentile(off, 0.99):.3f} ms")
    print(f"reporting on:  p50 {p50_on:.3f} ms  p90 {percentile(on, 0.9):.3f} ms  p99 {percentile(on, 0.99):.3f} ms")
    print(f"p50 overhead:  {p50_on - p50_off:+.3f} ms (target: within {TARGET_MS:.1f} ms)")
    print(f"records the fake portal stored: {reported}")
    print("command: .venv/bin/python client/bench_overhead.py --iterations", args.iterations)
    return 0 if p50_on - p50_off <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
