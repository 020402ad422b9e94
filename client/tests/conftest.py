"""Fixtures for the client tests: a fake portal, a fake OpenAI API, and reporters with short timings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

TESTS_DIR = Path(__file__).resolve().parent
CLIENT_DIR = TESTS_DIR.parent
# Test the package in this checkout, installed or not.
for path in (str(CLIENT_DIR), str(TESTS_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

from costportal_client_fakes import API_KEY, FakeOpenAI, FakePortal  # noqa: E402

from costportal_client import Reporter, RetryPolicy  # noqa: E402

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, max_retry_after=3.0)


@pytest.fixture
def portal() -> Iterator[FakePortal]:
    fake = FakePortal().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_reporter(portal: FakePortal, spool_dir: Path) -> Iterator[Callable[..., Reporter]]:
    """Build reporters against the fake portal with test-sized timings; all are closed afterwards."""
    created: list[Reporter] = []

    def build(**overrides: Any) -> Reporter:
        options: dict = dict(
            batch_size=500,
            flush_interval=0.05,
            spool_dir=spool_dir,
            retry=FAST_RETRY,
            request_timeout=2.0,
            offline_retry_interval=0.05,
            max_offline_retry_interval=0.2,
            spool_check_interval=0.1,
            exit_timeout=2.0,
        )
        options.update(overrides)
        portal_url = options.pop("portal_url", portal.url)
        api_key = options.pop("api_key", API_KEY)
        reporter = Reporter(portal_url, api_key, **options)
        created.append(reporter)
        return reporter

    yield build
    for reporter in created:
        reporter.close(timeout=1.0)


@pytest.fixture
def reporter(make_reporter: Callable[..., Reporter]) -> Reporter:
    return make_reporter()


@pytest.fixture
def client_env() -> dict:
    """Environment for subprocesses that import this checkout's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLIENT_DIR), env.get("PYTHONPATH")]))
    return env
