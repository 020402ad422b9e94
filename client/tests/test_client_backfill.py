"""The `costportal-client backfill` command, run as a real process against the fake portal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from costportal_client_fakes import API_KEY, FakePortal

from costportal_client.backfill import deterministic_request_id, normalise_line, normalise_timestamp

HOME_GROWN_LINES: list[dict[str, Any]] = [
    {
        "timestamp": "2025-03-01T10:00:00Z",
        "request_id": "log-1",
        "model": "gpt-4o",
        "user_id": "alice",
        "cost_center": "cc_marketing",
        "path": "/api/summarize?doc=42",
        "input_tokens": 1200,
        "output_tokens": 300,
        "latency_ms": 812.4,
    },
    {
        "timestamp": "2025-03-01 10:05:00,123",
        "model": "gpt-4o-mini",
        "user_id": "bob",
        "cost_center": "cc_support",
        "path": "/api/chat",
        "input_tokens": 50,
        "output_tokens": 20,
        "latency_ms": 90,
    },
    {
        "timestamp": 1740823500,
        "model": "claude-sonnet-4",
        "user": "carol",
        "path": "/api/translate",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "level": "INFO",
        "message": "llm call",
    },
]
PORTAL_RECORD = {
    "request_id": "portal-1",
    "timestamp": "2025-03-01T11:00:00+01:00",
    "model": "gpt-4.1",
    "provider": "openai",
    "usage": {"prompt_tokens": 100, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 40}},
    "feature": "search",
    "tags": {"team": "core"},
}
REJECTED_RECORD = {"request_id": "no-model-1", "input_tokens": 1, "output_tokens": 1}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "costportal_client", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_backfill_sends_both_shapes_and_prints_a_summary(tmp_path: Path, portal: FakePortal, client_env: dict) -> None:
    usage_log = write_jsonl(
        tmp_path / "usage.jsonl", [*HOME_GROWN_LINES, "", PORTAL_RECORD, REJECTED_RECORD, "{not json"]
    )
    env = {**client_env, "COSTPORTAL_URL": portal.url, "COSTPORTAL_API_KEY": API_KEY}

    result = run_cli(["backfill", str(usage_log), "--batch-size", "2"], env)

    assert result.returncode == 1, result.stderr  # one record rejected, one line unreadable
    assert "accepted: 4" in result.stdout
    assert "duplicates: 0" in result.stdout
    assert "rejected: 1" in result.stdout
    assert "invalid lines: 1" in result.stdout
    assert f"{usage_log}:6 request_id=no-model-1: model: This field is required." in result.stdout
    assert f"{usage_log}:7: not valid JSON" in result.stdout
    assert "lines read" in result.stderr  # progress goes to stderr
    assert [len(batch.records) for batch in portal.batches] == [2, 2, 1]

    stored = portal.stored
    first = stored["log-1"]
    assert first["feature"] == "/api/summarize"  # query string dropped
    assert first["tags"] == {"path": "/api/summarize"}
    assert first["latency_ms"] == 812
    assert first["timestamp"] == "2025-03-01T10:00:00+00:00"
    second_id = deterministic_request_id(str(usage_log), 2, json.dumps(HOME_GROWN_LINES[1]))
    assert stored[second_id]["timestamp"] == "2025-03-01T10:05:00.123000+00:00"
    third = stored[deterministic_request_id(str(usage_log), 3, json.dumps(HOME_GROWN_LINES[2]))]
    assert (third["user_id"], third["input_tokens"], third["output_tokens"]) == ("carol", 10, 5)
    assert "level" not in third and "message" not in third
    assert stored["portal-1"] == PORTAL_RECORD


def test_a_rerun_is_counted_as_duplicates(tmp_path: Path, portal: FakePortal, client_env: dict) -> None:
    usage_log = write_jsonl(tmp_path / "usage.jsonl", HOME_GROWN_LINES)
    args = ["backfill", str(usage_log), "--url", portal.url, "--api-key", API_KEY]

    first = run_cli(args, client_env)
    second = run_cli(args, client_env)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "accepted: 3" in first.stdout
    assert second.returncode == 0
    assert "accepted: 0" in second.stdout
    assert "duplicates: 3" in second.stdout
    assert len(portal.stored) == 3


def test_an_unreachable_portal_fails_with_records_not_sent(
    tmp_path: Path, portal: FakePortal, client_env: dict
) -> None:
    usage_log = write_jsonl(tmp_path / "usage.jsonl", HOME_GROWN_LINES)
    portal.stop()
    result = run_cli(
        [
            "backfill",
            str(usage_log),
            "--url",
            portal.url,
            "--api-key",
            API_KEY,
            "--max-attempts",
            "2",
            "--retry-base-delay",
            "0.01",
            "--batch-size",
            "1",
        ],
        client_env,
    )
    assert result.returncode == 1
    assert "not sent: 3" in result.stdout
    assert "portal unreachable" in result.stdout


def test_backfill_retries_a_throttled_batch(tmp_path: Path, portal: FakePortal, client_env: dict) -> None:
    usage_log = write_jsonl(tmp_path / "usage.jsonl", HOME_GROWN_LINES[:1])
    portal.answer_next((429, {"detail": "throttled"}, {"Retry-After": "0"}), (503, None, {}))
    result = run_cli(
        [
            "backfill",
            str(usage_log),
            "--url",
            portal.url,
            "--api-key",
            API_KEY,
            "--retry-base-delay",
            "0.01",
            "--quiet",
        ],
        client_env,
    )
    assert result.returncode == 0, result.stdout
    assert [batch.status for batch in portal.batches] == [429, 503, 201]
    assert result.stderr == ""


def test_missing_configuration_is_a_usage_error(tmp_path: Path, client_env: dict) -> None:
    usage_log = write_jsonl(tmp_path / "usage.jsonl", HOME_GROWN_LINES)
    env = {key: value for key, value in client_env.items() if not key.startswith("COSTPORTAL_")}
    result = run_cli(["backfill", str(usage_log)], env)
    assert result.returncode == 2
    assert "COSTPORTAL_URL" in result.stderr


def test_a_bad_key_is_reported_and_nothing_counts_as_sent(tmp_path: Path, portal: FakePortal, client_env: dict) -> None:
    usage_log = write_jsonl(tmp_path / "usage.jsonl", HOME_GROWN_LINES)
    result = run_cli(["backfill", str(usage_log), "--url", portal.url, "--api-key", "cpk_wrong"], client_env)
    assert result.returncode == 1
    assert "not sent: 3" in result.stdout
    assert "Invalid API key." in result.stdout


def test_deterministic_ids_depend_on_file_line_and_content() -> None:
    same = deterministic_request_id("/logs/a/app.jsonl", 3, '{"model": "x"}')
    assert same == deterministic_request_id("/elsewhere/app.jsonl", 3, '{"model": "x"}\n')
    assert same != deterministic_request_id("/logs/a/app.jsonl", 4, '{"model": "x"}')
    assert same != deterministic_request_id("/logs/a/app.jsonl", 3, '{"model": "y"}')
    assert len(same) <= 128


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-03-01T10:00:00Z", "2025-03-01T10:00:00+00:00"),
        ("2025-03-01T10:00:00+02:00", "2025-03-01T10:00:00+02:00"),
        ("2025-03-01 10:00:00", "2025-03-01T10:00:00+00:00"),
        (1740823200, "2025-03-01T10:00:00+00:00"),
        (1740823200000, "2025-03-01T10:00:00+00:00"),
        ("yesterday", "yesterday"),
    ],
)
def test_timestamps_are_normalised_to_rfc3339(value: Any, expected: str) -> None:
    assert normalise_timestamp(value) == expected


def test_path_can_go_to_the_feature_or_a_tag_only() -> None:
    line = {"request_id": "r", "model": "m", "path": "/api/x"}
    as_tag = normalise_line(line, file_name="f", line_number=1, raw_line="", path_to="tag")
    as_feature = normalise_line(line, file_name="f", line_number=1, raw_line="", path_to="feature")
    assert "feature" not in as_tag and as_tag["tags"] == {"path": "/api/x"}
    assert as_feature["feature"] == "/api/x" and "tags" not in as_feature
