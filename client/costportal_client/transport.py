"""POST batches of records to the portal's ingest API, with the retry policy shared by reporter and backfill."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from ._version import __version__

logger = logging.getLogger("costportal_client")

INGEST_PATH = "/api/v1/usage"
MAX_RECORDS_PER_REQUEST = 5000  # the portal's limit per POST
_MAX_ANSWER_BYTES = 4 * 1024 * 1024

DELIVERED = "delivered"  # the portal answered 200/201/207: each record was stored, a duplicate, or rejected
REJECTED = "rejected"  # the portal refused the batch as invalid (400/413/415/422): resending cannot help
REFUSED = "refused"  # key, scope or URL is wrong (401/403/404...): keep the records until that is fixed
UNREACHABLE = "unreachable"  # network errors, 429 or 5xx outlasted every retry

# Statuses that say the portal could not take the batch right now.
_RETRYABLE_STATUSES = {408, 425, 429}
# Statuses that say this client is misconfigured; dropping the records would lose them for good.
_REFUSED_STATUSES = {401, 403, 404, 405, 407, 410}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; the server's Retry-After wins when it asks for longer."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay_before_retry(self, failed_attempts: int, retry_after: float | None) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** (failed_attempts - 1)))
        # Half fixed, half random: spreads out clients that failed together without ever retrying instantly.
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


@dataclass
class PortalAnswer:
    """What the portal said to one POST."""

    status: int
    body: dict[str, Any] | None
    text: str
    retry_after: float | None = None

    def message(self) -> str:
        if isinstance(self.body, dict):
            for key in ("detail", "error", "message", "errors"):
                if key in self.body:
                    return f"{self.status}: {json.dumps(self.body[key], ensure_ascii=False)}"
        return f"{self.status}: {self.text[:500]}"


@dataclass
class DeliveryResult:
    """The outcome of delivering one batch, retries included; `errors` index into that batch."""

    outcome: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    status: int | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == DELIVERED


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, given either as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def encode_batch(records: list[dict[str, Any]]) -> bytes:
    """The gzip-compressed JSON body for a batch."""
    # default=str keeps one odd value (a Decimal cost, a datetime) from sinking the whole batch.
    body = json.dumps({"records": records}, separators=(",", ":"), ensure_ascii=False, default=str)
    return gzip.compress(body.encode("utf-8"), compresslevel=5, mtime=0)


class PortalTransport:
    """A keep-alive HTTP(S) connection to one portal, authenticated with one API key; one request at a time."""

    def __init__(self, portal_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(portal_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"portal URL must be http(s)://host[:port][/prefix], got {portal_url!r}")
        self.portal_url = portal_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + INGEST_PATH
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
            "User-Agent": f"costportal-client/{__version__}",
        }
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()  # loads the CA store: once, not per reconnect
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def post(self, body: bytes) -> PortalAnswer:
        """Send one already-encoded batch; raises OSError / http.client.HTTPException on network failure."""
        with self._lock:
            reused = self._connection is not None
            try:
                return self._post_once(body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if not reused:
                    raise
            except BaseException:
                self.close()
                raise
            # The portal closed an idle keep-alive connection; that says nothing about its
            # health, so try once more on a fresh connection before counting a failure.
            try:
                return self._post_once(body)
            except BaseException:
                self.close()
                raise

    def _post_once(self, body: bytes) -> PortalAnswer:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        connection.request("POST", self._path, body=body, headers=self._headers)
        response = connection.getresponse()
        raw = response.read(_MAX_ANSWER_BYTES)
        if response.will_close or not response.isclosed():
            self.close()
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return PortalAnswer(
            status=response.status,
            body=parsed if isinstance(parsed, dict) else None,
            text=text,
            retry_after=parse_retry_after(response.getheader("Retry-After")),
        )

    def forget_after_fork(self) -> None:
        """In a forked child: the parent keeps using the inherited socket, so never touch it."""
        self._connection = None
        self._lock = threading.Lock()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except OSError:
                pass


def deliver(
    transport: PortalTransport,
    records: list[dict[str, Any]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], bool],
) -> DeliveryResult:
    """Deliver one batch, retrying transient failures; `sleep(seconds)` returns True to abandon the retries."""
    try:
        body = encode_batch(records)
    except (TypeError, ValueError) as exc:
        return DeliveryResult(REJECTED, rejected=len(records), message=f"could not encode batch: {exc}")

    failed_attempts = 0
    while True:
        retry_after: float | None = None
        try:
            answer = transport.post(body)
        except (OSError, http.client.HTTPException) as exc:
            message = f"portal unreachable: {exc.__class__.__name__}: {exc}"
            status: int | None = None
        else:
            result = _interpret(answer, records)
            if result is not None:
                return result
            if answer.status == 413 and len(records) > 1:
                return _deliver_in_halves(transport, records, policy=policy, sleep=sleep)
            message = f"portal answered {answer.message()}"
            status = answer.status
            retry_after = answer.retry_after

        failed_attempts += 1
        if failed_attempts >= policy.max_attempts:
            return DeliveryResult(UNREACHABLE, message=message, status=status)
        delay = policy.delay_before_retry(failed_attempts, retry_after)
        logger.info("costportal: %s; retry %d in %.2fs", message, failed_attempts, delay)
        if sleep(delay):
            return DeliveryResult(UNREACHABLE, message=f"{message} (retries interrupted)", status=status)


def _interpret(answer: PortalAnswer, records: list[dict[str, Any]]) -> DeliveryResult | None:
    """A final result for this answer, or None when the batch should be retried (or split, for 413)."""
    status = answer.status
    if status in (200, 201, 207):
        body = answer.body or {}
        errors = [error for error in body.get("errors") or [] if isinstance(error, dict)]
        if not body and status == 207:
            logger.warning("costportal: 207 answer without a body; counting the batch as accepted")
        return DeliveryResult(
            DELIVERED,
            accepted=int(body.get("accepted", len(records) if status != 207 else 0) or 0),
            duplicates=int(body.get("duplicates", 0) or 0),
            rejected=int(body.get("rejected", len(errors)) or 0),
            errors=errors,
            status=status,
        )
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return None
    if status == 413 and len(records) > 1:
        return None
    if status in _REFUSED_STATUSES or 300 <= status < 400:
        return DeliveryResult(REFUSED, message=answer.message(), status=status)
    return DeliveryResult(REJECTED, rejected=len(records), message=answer.message(), status=status)


def _deliver_in_halves(
    transport: PortalTransport,
    records: list[dict[str, Any]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], bool],
) -> DeliveryResult:
    # 413 is about the body's size, not the records: two smaller requests may well pass.
    middle = len(records) // 2
    first = deliver(transport, records[:middle], policy=policy, sleep=sleep)
    if first.outcome in (UNREACHABLE, REFUSED):
        return first
    second = deliver(transport, records[middle:], policy=policy, sleep=sleep)
    if second.outcome in (UNREACHABLE, REFUSED):
        # The caller keeps the whole batch; resending the stored half is harmless because the
        # portal counts a request_id once.
        return second
    errors = _record_errors(first, records[:middle], 0) + _record_errors(second, records[middle:], middle)
    both_rejected = first.outcome == REJECTED and second.outcome == REJECTED
    return DeliveryResult(
        REJECTED if both_rejected else DELIVERED,
        accepted=first.accepted + second.accepted,
        duplicates=first.duplicates + second.duplicates,
        rejected=first.rejected + second.rejected,
        errors=errors,
        message="; ".join(m for m in (first.message, second.message) if m),
        status=first.status if both_rejected else 207,
    )


def _record_errors(result: DeliveryResult, records: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    """Per-record errors of a half batch, indexed into the whole batch."""
    if result.outcome == REJECTED:
        return [
            {"index": offset + i, "request_id": record.get("request_id"), "errors": {"batch": [result.message]}}
            for i, record in enumerate(records)
        ]
    return [{**error, "index": int(error.get("index", 0)) + offset} for error in result.errors]
