"""Fixtures for the client against a live portal: the fake OpenAI server of the client's own tests."""

import sys
from pathlib import Path

import pytest

CLIENT_TESTS = Path(__file__).resolve().parents[2] / "client" / "tests"
if str(CLIENT_TESTS) not in sys.path:
    sys.path.insert(0, str(CLIENT_TESTS))

from costportal_client_fakes import FakeOpenAI  # noqa: E402


@pytest.fixture
def upstream():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()
