"""Background reporter: batches usage records and sends them to the portal without ever slowing the caller."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from .spool import Spool, spool_directory
from .transport import (
    MAX_RECORDS_PER_REQUEST,
    REFUSED,
    REJECTED,
    UNREACHABLE,
    DeliveryResult,
    PortalTransport,
    RetryPolicy,
    deliver,
)

logger = logging.getLogger("costportal_client")

Record = dict[str, Any]

_LOGGED_ERRORS_PER_BATCH = 10


class _FlushRequest:
    """A marker in the queue: set once every record queued before it was sent or spooled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


@dataclass
class ReporterStats:
    """Counters of what happened to reported records, for monitoring and tests."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    spooled: int = 0
    dropped: int = 0
    batches_sent: int = 0


class Reporter:
    """Queues records in memory, sends them in gzip batches from a daemon thread, spools them while the portal is away.

    `report()` is O(1) and never blocks or raises. `flush(timeout)` returns once everything
    reported before it was sent or spooled. `close()` (run at exit too) flushes with a bounded timeout.
    """

    def __init__(
        self,
        portal_url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 2.0,
        max_queue_size: int = 10_000,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        retry: RetryPolicy | None = None,
        request_timeout: float = 10.0,
        offline_retry_interval: float = 10.0,
        max_offline_retry_interval: float = 120.0,
        spool_check_interval: float = 30.0,
        exit_timeout: float = 5.0,
        start: bool = True,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required (COSTPORTAL_API_KEY)")
        self.portal_url = portal_url.rstrip("/")
        self.batch_size = max(1, min(batch_size, MAX_RECORDS_PER_REQUEST))
        self.flush_interval = flush_interval
        self.max_queue_size = max_queue_size
        self.retry = retry or RetryPolicy()
        self.offline_retry_interval = offline_retry_interval
        self.max_offline_retry_interval = max_offline_retry_interval
        self.spool_check_interval = spool_check_interval
        self.exit_timeout = exit_timeout
        self.stats = ReporterStats()
        self.spool = Spool(spool_directory(spool_dir, portal_url, api_key), max_bytes=max_spool_bytes)

        self._transport = PortalTransport(portal_url, api_key, timeout=request_timeout)
        self._queue: deque[Record | _FlushRequest] = deque()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._work_lock = threading.Lock()
        self._closed = False
        self._collecting = False  # the worker holds a partial batch and wakes up at its deadline anyway
        self._in_flight: list[Record] = []
        self._offline_until = 0.0
        self._offline_failures = 0
        self._next_spool_check = 0.0  # at once: pick up what an earlier process left behind
        self._thread: threading.Thread | None = None
        self._start_requested = start

        _live_reporters.add(self)
        atexit.register(self._close_at_exit)
        if start:
            self.start()

    # -- the caller's side -------------------------------------------------------------------

    def report(self, record: Record) -> None:
        """Queue one record for sending. O(1), never blocks, never raises."""
        try:
            if not isinstance(record, dict):
                logger.warning("costportal: ignoring a usage record that is not a dict: %r", type(record))
                return
            queue = self._queue
            if self._closed or len(queue) >= self.max_queue_size:
                # Memory is bounded; the disk takes the overflow and the worker sends it later.
                self._spool_records([record])
                return
            queue.append(record)
            queued = len(queue)
            # Wake an idle worker for the first record (it then waits flush_interval for more)
            # and any worker for a full batch; waking it per record would cost a thread switch each.
            if queued >= self.batch_size or (queued == 1 and not self._collecting):
                self._wakeup.set()
        except Exception:  # noqa: BLE001 - reporting must never break the caller
            logger.exception("costportal: could not queue a usage record")

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send (or spool) everything reported so far, then any spooled records; False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._work_lock:
                self._process_inline()
            return True
        request = _FlushRequest()
        self._queue.append(request)
        self._wakeup.set()
        return request.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush within `timeout` seconds (default: exit_timeout), stop the worker, spool whatever is left."""
        if self._closed:
            return
        deadline = time.monotonic() + (self.exit_timeout if timeout is None else timeout)
        try:
            self.flush(timeout=max(0.0, deadline - time.monotonic()))
            self._closed = True
            self._stopping.set()
            self._wakeup.set()
            thread = self._thread
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()) + 0.2)
            leftovers: list[Record] = []
            if thread is not None and thread.is_alive():
                # The worker is stuck in a slow request: keep its batch too. If that request
                # succeeds after all, the portal counts the resent request_ids once.
                leftovers.extend(self._in_flight)
            waiting_flushes = []
            for item in self._drain_queue():
                if isinstance(item, _FlushRequest):
                    waiting_flushes.append(item)
                else:
                    leftovers.append(item)
            if leftovers:
                self._spool_records(leftovers)
            for request in waiting_flushes:
                request.done.set()  # their records are spooled now
            self.spool.close()
            self._transport.close()
        except Exception:  # noqa: BLE001 - closing runs at exit, where an exception helps nobody
            logger.exception("costportal: error while closing the reporter")
        finally:
            self._closed = True
            atexit.unregister(self._close_at_exit)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def start(self) -> None:
        """Start the background worker (done by the constructor unless start=False)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="costportal-reporter", daemon=True)
        self._thread.start()

    # -- the worker's side -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            flushes: list[_FlushRequest] = []
            try:
                batch, flushes = self._next_batch()
                if batch:
                    self._deliver(batch)
                if flushes or time.monotonic() >= self._next_spool_check:
                    self._drain_spool()
            except Exception:  # noqa: BLE001 - the worker must outlive any bug in one batch
                logger.exception("costportal: reporter worker error")
                self._stopping.wait(1.0)
            finally:
                for request in flushes:
                    request.done.set()
            if self._stopping.is_set() and not self._queue:
                return

    def _pop_batch_into(self, batch: list[Record]) -> list[_FlushRequest]:
        """Move records off the queue into `batch` without waiting, up to batch_size or a flush marker."""
        queue = self._queue
        while len(batch) < self.batch_size:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, _FlushRequest):
                return [item]
            batch.append(item)
        return []

    def _next_batch(self) -> tuple[list[Record], list[_FlushRequest]]:
        """Wait for a full batch, a flush, or flush_interval after the first record, whichever comes first."""
        batch: list[Record] = []
        deadline: float | None = None
        try:
            while True:
                flushes = self._pop_batch_into(batch)
                if flushes or len(batch) >= self.batch_size or self._stopping.is_set():
                    return batch, flushes
                now = time.monotonic()
                if batch:
                    if deadline is None:
                        deadline = now + self.flush_interval
                        self._collecting = True
                    if now >= deadline:
                        return batch, []
                    timeout = deadline - now
                else:
                    timeout = self.flush_interval
                self._wakeup.wait(timeout)
                self._wakeup.clear()
                if not batch and not self._queue:
                    return batch, []  # idle: let the loop look at the spool
        finally:
            self._collecting = False

    def _process_inline(self) -> None:
        """Do the worker's job on the caller's thread, for a reporter without a running worker."""
        while True:
            batch: list[Record] = []
            flushes = self._pop_batch_into(batch)
            if batch:
                self._deliver(batch)
            for request in flushes:
                request.done.set()
            if not batch and not flushes:
                break
        self._drain_spool()

    def _deliver(self, batch: list[Record]) -> None:
        if self._is_offline():
            self._spool_records(batch)
            return
        self._in_flight = batch
        try:
            result = deliver(self._transport, batch, policy=self.retry, sleep=self._stopping.wait)
        except Exception as exc:  # noqa: BLE001 - an unexpected error must not lose the batch
            logger.exception("costportal: unexpected error while sending a batch")
            result = DeliveryResult(UNREACHABLE, message=str(exc))
        finally:
            self._in_flight = []
        if result.outcome in (UNREACHABLE, REFUSED):
            self._went_offline(result, len(batch))
            self._spool_records(batch)
        else:
            self._account(result, batch)

    def _drain_spool(self) -> None:
        """Send what waits on disk, oldest first; stop at the first sign the portal is away."""
        self._next_spool_check = time.monotonic() + self.spool_check_interval
        if self._is_offline() or not self.spool.has_pending():
            return
        for claimed in self.spool.claim_files():
            with claimed:
                for records, offset in claimed.batches(self.batch_size):
                    if self._stopping.is_set():
                        claimed.keep_from(offset)
                        return
                    result = deliver(self._transport, records, policy=self.retry, sleep=self._stopping.wait)
                    if result.outcome in (UNREACHABLE, REFUSED):
                        self._went_offline(result, len(records))
                        claimed.keep_from(offset)
                        return
                    self._account(result, records)
                claimed.complete()

    def _account(self, result: DeliveryResult, batch: list[Record]) -> None:
        with self._stats_lock:
            self.stats.batches_sent += 1
            self.stats.accepted += result.accepted
            self.stats.duplicates += result.duplicates
            self.stats.rejected += result.rejected
        self._offline_failures = 0
        self._offline_until = 0.0
        if result.outcome == REJECTED:
            # A validation error: resending the same body gets the same answer, so drop it.
            logger.error(
                "costportal: the portal rejected a batch of %d records (%s); they are dropped",
                len(batch),
                result.message,
            )
            return
        for error in result.errors[:_LOGGED_ERRORS_PER_BATCH]:
            index = error.get("index")
            request_id = error.get("request_id")
            if request_id is None and isinstance(index, int) and 0 <= index < len(batch):
                request_id = batch[index].get("request_id")
            logger.warning(
                "costportal: the portal rejected record %s (batch index %s): %s; it is dropped",
                request_id,
                index,
                error.get("errors"),
            )
        if len(result.errors) > _LOGGED_ERRORS_PER_BATCH:
            # A systematic mistake (say, a missing field) would otherwise log every record of every batch.
            logger.warning(
                "costportal: the portal rejected %d more records of the same batch; they are dropped",
                len(result.errors) - _LOGGED_ERRORS_PER_BATCH,
            )

    def _went_offline(self, result: DeliveryResult, count: int) -> None:
        self._offline_failures += 1
        pause = min(
            self.max_offline_retry_interval,
            self.offline_retry_interval * (2 ** (self._offline_failures - 1)),
        )
        self._offline_until = time.monotonic() + pause
        self._next_spool_check = self._offline_until
        if result.outcome == REFUSED:
            logger.error(
                "costportal: the portal refused %d records (%s); check the portal URL and API key. "
                "Records are kept in %s",
                count,
                result.message,
                self.spool.directory,
            )
        else:
            logger.warning(
                "costportal: %s; %d records kept in %s, next attempt in %.1fs",
                result.message,
                count,
                self.spool.directory,
                pause,
            )

    def _is_offline(self) -> bool:
        return self._offline_until > 0 and time.monotonic() < self._offline_until

    def _spool_records(self, records: list[Record]) -> None:
        kept = self.spool.append(records)
        with self._stats_lock:
            self.stats.spooled += kept
            self.stats.dropped += len(records) - kept
        if kept and not self._is_offline():
            # Spooled while the portal is up (memory overflow): send it soon, not at the next check.
            self._next_spool_check = min(self._next_spool_check, time.monotonic() + self.flush_interval)

    def _drain_queue(self) -> list[Record | _FlushRequest]:
        items: list[Record | _FlushRequest] = []
        while True:
            try:
                items.append(self._queue.popleft())
            except IndexError:
                return items

    def _close_at_exit(self) -> None:
        self.close(timeout=self.exit_timeout)

    def _after_fork_in_child(self) -> None:
        # The parent still owns its queue, connection and spool file; the child starts clean.
        self._queue = deque()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._work_lock = threading.Lock()
        self._in_flight = []
        self._transport.forget_after_fork()
        self.spool.forget_after_fork()
        self._thread = None
        if self._start_requested and not self._closed:
            self.start()


_live_reporters: weakref.WeakSet[Reporter] = weakref.WeakSet()


def _reset_reporters_after_fork() -> None:
    for reporter in list(_live_reporters):
        try:
            reporter._after_fork_in_child()
        except Exception:  # noqa: BLE001 - a fork must never fail because of reporting
            logger.exception("costportal: could not reset a reporter after fork")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_reporters_after_fork)
