"""Backfill historical usage from JSONL files: portal-format records or the log lines home-grown wrappers write."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from .records import limited_tags
from .transport import DELIVERED, REJECTED, PortalTransport, RetryPolicy, deliver

# Fields of a record in the portal's format (PRODUCT.md section 4), passed through as they are.
PORTAL_FIELDS = {
    "request_id",
    "timestamp",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage",
    "cost_center",
    "user_id",
    "session_id",
    "feature",
    "feature_flag",
    "environment",
    "tags",
    "latency_ms",
    "status",
    "reported_cost",
    "reported_currency",
}
# Names home-grown loggers commonly use for the same facts.
FIELD_ALIASES = {
    "prompt_tokens": "input_tokens",
    "completion_tokens": "output_tokens",
    "user": "user_id",
    "ts": "timestamp",
    "time": "timestamp",
    "created_at": "timestamp",
    "duration_ms": "latency_ms",
    "cost": "reported_cost",
    "currency": "reported_currency",
}
PATH_TO_CHOICES = ("feature", "tag", "both")


@dataclass
class SourceLine:
    """One non-blank line of an input file: a normalised record, or why it could not be read."""

    source: str
    record: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Rejection:
    source: str
    request_id: str | None
    message: str


@dataclass
class BackfillSummary:
    """The portal's answers added up, plus what never reached it."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    invalid: int = 0
    not_sent: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    failure: str | None = None

    @property
    def succeeded(self) -> bool:
        return not (self.rejected or self.invalid or self.not_sent)


def deterministic_request_id(file_name: str, line_number: int, line: str) -> str:
    """An id that is the same when the same file is backfilled again, so reruns are counted once.

    The line's content is part of it: two different files that share a name and a line number
    must not be taken for duplicates of each other.
    """
    digest = hashlib.sha256(f"{os.path.basename(file_name)}\n{line_number}\n{line.strip()}".encode())
    return "bf-" + digest.hexdigest()[:40]


def normalise_timestamp(value: Any) -> Any:
    """RFC 3339 with an offset; epoch seconds or milliseconds and offset-less times are taken as UTC."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip().replace(",", ".")  # Python logging's asctime writes a comma before the milliseconds
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value  # the portal answers with a clear message for this record
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.isoformat()


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        return int(round(value))
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def normalise_line(
    data: dict[str, Any],
    *,
    file_name: str,
    line_number: int,
    raw_line: str,
    path_to: str = "both",
    default_provider: str | None = None,
    default_environment: str | None = None,
) -> dict[str, Any]:
    """Turn a portal record or a home-grown log line into a portal record."""
    record: dict[str, Any] = {}
    for key, value in data.items():
        target = FIELD_ALIASES.get(key, key)
        if target in PORTAL_FIELDS or target.startswith("gen_ai."):
            record.setdefault(target, value)  # a real portal field beats an alias of it

    tags = (
        {str(k): str(v) for k, v in (record.get("tags") or {}).items()} if isinstance(record.get("tags"), dict) else {}
    )
    path = data.get("path") or data.get("route") or data.get("endpoint")
    if isinstance(path, str) and path:
        path = path.split("?", 1)[0]  # query strings carry ids and secrets, not features
        if path_to in ("tag", "both"):
            tags.setdefault("path", path)
        if path_to in ("feature", "both"):
            record.setdefault("feature", path)
    if tags:
        record["tags"] = limited_tags(tags)

    if not record.get("request_id"):
        record["request_id"] = deterministic_request_id(file_name, line_number, raw_line)
    else:
        record["request_id"] = str(record["request_id"])
    if "timestamp" in record:
        record["timestamp"] = normalise_timestamp(record["timestamp"])
    for key in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "latency_ms",
    ):
        if key in record:
            record[key] = _whole_number(record[key])
    if "reported_cost" in record and isinstance(record["reported_cost"], float):
        record["reported_cost"] = repr(record["reported_cost"])  # money travels as a string
    if default_provider and not record.get("provider"):
        record["provider"] = default_provider
    if default_environment and not record.get("environment"):
        record["environment"] = default_environment
    return record


def read_source_lines(path: str, **normalise_options: Any) -> Iterator[SourceLine]:
    """Yield every non-blank line of a JSONL file as a record (or an error), labelled file:line."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{line_number}"
            try:
                data = json.loads(line)
            except ValueError as exc:
                yield SourceLine(source, error=f"not valid JSON: {exc}")
                continue
            if not isinstance(data, dict):
                yield SourceLine(source, error="not a JSON object")
                continue
            record = normalise_line(data, file_name=path, line_number=line_number, raw_line=line, **normalise_options)
            yield SourceLine(source, record=record)


def _batches(lines: Iterable[SourceLine], size: int) -> Iterator[tuple[list[SourceLine], list[SourceLine]]]:
    """Yield (records to send, unreadable lines) in groups of up to `size` records."""
    batch: list[SourceLine] = []
    invalid: list[SourceLine] = []
    for line in lines:
        if line.record is None:
            invalid.append(line)
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch, invalid
            batch, invalid = [], []
    if batch or invalid:
        yield batch, invalid


def run_backfill(
    paths: list[str],
    transport: PortalTransport,
    *,
    batch_size: int = 500,
    policy: RetryPolicy | None = None,
    progress: IO[str] | None = None,
    **normalise_options: Any,
) -> BackfillSummary:
    """Send every line of `paths` synchronously, batch by batch, with the reporter's retry policy."""
    policy = policy or RetryPolicy()
    summary = BackfillSummary()

    def sleep(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    for path in paths:
        for batch, invalid in _batches(read_source_lines(path, **normalise_options), batch_size):
            summary.lines += len(batch) + len(invalid)
            summary.invalid += len(invalid)
            invalid_rejections = [Rejection(line.source, None, line.error or "") for line in invalid]
            first_of_batch = len(summary.rejections)
            if not batch:
                summary.rejections.extend(invalid_rejections)
                continue
            if summary.failure is not None:
                summary.not_sent += len(batch)
                summary.rejections.extend(invalid_rejections)
                continue
            result = deliver(transport, [line.record for line in batch], policy=policy, sleep=sleep)  # type: ignore[misc]
            if result.outcome == DELIVERED:
                summary.accepted += result.accepted
                summary.duplicates += result.duplicates
                summary.rejected += result.rejected
                for error in result.errors:
                    index = error.get("index")
                    line = batch[index] if isinstance(index, int) and 0 <= index < len(batch) else None
                    request_id = error.get("request_id")
                    if request_id is None and line is not None and line.record is not None:
                        request_id = line.record.get("request_id")
                    source = line.source if line is not None else f"{path}:?"
                    summary.rejections.append(Rejection(source, request_id, _format_errors(error.get("errors"))))
            elif result.outcome == REJECTED:
                summary.rejected += len(batch)
                summary.rejections.extend(
                    Rejection(line.source, (line.record or {}).get("request_id"), result.message) for line in batch
                )
            else:  # unreachable or refused: later batches would meet the same fate; a rerun is idempotent
                summary.not_sent += len(batch)
                summary.failure = result.message
            summary.rejections.extend(invalid_rejections)
            # This batch's rejections in line order; earlier batches are already in order.
            summary.rejections[first_of_batch:] = sorted(summary.rejections[first_of_batch:], key=_line_number)
            if progress is not None:
                progress.write(
                    f"{path}: {summary.lines} lines read; accepted {summary.accepted}, "
                    f"duplicates {summary.duplicates}, rejected {summary.rejected}, not sent {summary.not_sent}\n"
                )
                progress.flush()
    return summary


def _line_number(rejection: Rejection) -> int:
    line = rejection.source.rpartition(":")[2]
    return int(line) if line.isdigit() else 0


def _format_errors(errors: Any) -> str:
    if isinstance(errors, dict):
        parts = []
        for field_name, messages in errors.items():
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            parts.append(f"{field_name}: {text}")
        return ", ".join(parts)
    return json.dumps(errors, ensure_ascii=False) if errors is not None else "rejected"
