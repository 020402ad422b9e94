"""A local JSONL spool that keeps records while the portal is away, safe across threads, processes and restarts."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

try:  # POSIX; elsewhere renaming a file that is still open fails, which serves as the lock.
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("costportal_client")

SPOOL_SUFFIX = ".jsonl"
# Sealing files at this size bounds how much one failed drain has to rewrite.
ROTATE_AT_BYTES = 16 * 1024 * 1024


def default_spool_root() -> Path:
    """COSTPORTAL_SPOOL_DIR, else the user's cache folder."""
    configured = os.environ.get("COSTPORTAL_SPOOL_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "costportal-client" / "spool"


def spool_directory(root: str | os.PathLike[str] | None, portal_url: str, api_key: str) -> Path:
    """The spool folder for one portal and key: records must never be drained into another organization."""
    fingerprint = hashlib.sha256(f"{portal_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:16]
    return Path(root if root is not None else default_spool_root()) / fingerprint


def _try_lock(file: IO[bytes]) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class ClaimedSpoolFile:
    """A spool file this process holds the lock of; finish with `complete()`, `keep_from()` or `release()`."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self._file = file

    @classmethod
    def try_claim(cls, path: Path) -> ClaimedSpoolFile | None:
        try:
            file = open(path, "rb")
        except FileNotFoundError:
            return None
        if not _try_lock(file):
            file.close()
            return None
        try:
            # Another process may have sent and removed (or rewritten) the file between our open
            # and our lock; then this descriptor points at an orphan and must not be sent again.
            opened, current = os.fstat(file.fileno()), os.stat(path)
            still_current = (opened.st_ino, opened.st_dev) == (current.st_ino, current.st_dev)
        except FileNotFoundError:
            still_current = False
        if not still_current:
            file.close()
            return None
        return cls(path, file)

    def batches(self, size: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Yield (records, byte offset of the batch's first line); unreadable lines are logged and skipped."""
        self._file.seek(0)
        batch: list[dict[str, Any]] = []
        start = 0
        while True:
            offset = self._file.tell()
            line = self._file.readline()
            if not line:
                break
            if not batch:
                start = offset
            try:
                record = json.loads(line)
            except ValueError:
                # Typically a line torn by a crash mid-write; the rest of the file is still good.
                logger.warning("costportal: skipping an unreadable line in spool file %s", self.path)
                continue
            if isinstance(record, dict):
                batch.append(record)
            if len(batch) >= size:
                yield batch, start
                batch = []
        if batch:
            yield batch, start

    def complete(self) -> None:
        """Everything was sent: remove the file."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._file.close()

    def keep_from(self, offset: int) -> None:
        """Keep only the lines from `offset` on, so the part already sent is not sent again."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self._file.seek(offset)
            with open(temporary, "wb") as rest:
                shutil.copyfileobj(self._file, rest)
            os.replace(temporary, self.path)
        except OSError:
            logger.warning("costportal: could not trim spool file %s; its records will be resent", self.path)
        finally:
            self._file.close()

    def release(self) -> None:
        self._file.close()

    def __enter__(self) -> ClaimedSpoolFile:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._file.closed:
            self._file.close()


class Spool:
    """Append records to disk from any thread; hand back sealed and abandoned files for sending.

    Layout: one folder per portal and API key. Each instance appends to its own
    `<instance>.active.jsonl`, holding an exclusive flock on it while it writes, and seals it
    (renames it to `<instance>.<n>.ready.jsonl`) before sending it. Any reporter may send a file
    whose lock it can take: a sealed file, or the active file of a process that died (the kernel
    releases a dead process's locks). Whoever holds the lock is the only one sending that file.
    """

    def __init__(self, directory: Path, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._instance = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._sealed_count = 0
        self._active: IO[bytes] | None = None
        self._active_bytes = 0
        self._size_estimate: int | None = None

    @property
    def active_path(self) -> Path:
        return self.directory / f"{self._instance}.active{SPOOL_SUFFIX}"

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Write records to this instance's active file; returns how many were kept (0 when the disk refuses)."""
        records = list(records)
        if not records:
            return 0
        try:
            data = b"".join(
                (json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode("utf-8")
                for record in records
            )
        except (TypeError, ValueError) as exc:
            logger.error("costportal: dropping %d records that cannot be serialised: %s", len(records), exc)
            return 0
        with self._lock:
            try:
                if self._size_estimate is None or self._size_estimate + len(data) > self.max_bytes:
                    self._size_estimate = self._measure()
                if self._size_estimate + len(data) > self.max_bytes:
                    logger.error(
                        "costportal: spool %s is full (%d bytes); dropping %d records",
                        self.directory,
                        self.max_bytes,
                        len(records),
                    )
                    return 0
                active = self._active_file()
                active.write(data)
                active.flush()
            except OSError as exc:
                logger.error(
                    "costportal: cannot write spool %s (%s); dropping %d records", self.directory, exc, len(records)
                )
                return 0
            self._size_estimate += len(data)
            self._active_bytes += len(data)
            if self._active_bytes >= ROTATE_AT_BYTES:
                self._seal_locked()
        return len(records)

    def _active_file(self) -> IO[bytes]:
        if self._active is None:
            # Records name users and sessions: keep the folder private to this account.
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            active = open(self.active_path, "ab")
            _try_lock(active)  # a fresh, uniquely named file: nobody else can hold its lock
            self._active = active
            self._active_bytes = 0
        return self._active

    def _seal_locked(self) -> None:
        active, self._active = self._active, None
        if active is None:
            return
        try:
            if self._active_bytes:
                self._sealed_count += 1
                sealed = self.directory / f"{self._instance}.{self._sealed_count:06d}.ready{SPOOL_SUFFIX}"
                # Renamed while still locked, so no other reporter can claim it half-written.
                os.replace(self.active_path, sealed)
            else:
                self.active_path.unlink()
        except OSError as exc:
            logger.warning("costportal: could not seal spool file %s: %s", self.active_path, exc)
        finally:
            active.close()
            self._active_bytes = 0

    def _measure(self) -> int:
        total = 0
        for path in self._spool_files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def _spool_files(self) -> list[Path]:
        try:
            return [path for path in self.directory.iterdir() if path.name.endswith(SPOOL_SUFFIX)]
        except FileNotFoundError:
            return []

    def has_pending(self) -> bool:
        """Whether any records wait on disk, written by this reporter or by an earlier process."""
        return bool(self._spool_files())

    def pending_files(self) -> list[Path]:
        return sorted(self._spool_files())

    def claim_files(self) -> Iterator[ClaimedSpoolFile]:
        """Seal this instance's file, then yield each spool file (oldest first) that nobody else is sending."""
        with self._lock:
            self._seal_locked()

        def age(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except FileNotFoundError:
                return 0.0

        for path in sorted(self._spool_files(), key=age):
            claimed = ClaimedSpoolFile.try_claim(path)
            if claimed is not None:
                yield claimed
        with self._lock:
            self._size_estimate = None

    def close(self) -> None:
        with self._lock:
            self._seal_locked()

    def forget_after_fork(self) -> None:
        """In a forked child: leave the parent's spool file to the parent and start a file of our own."""
        inherited = self._active
        self._lock = threading.Lock()
        self._active = None
        self._active_bytes = 0
        self._size_estimate = None
        self._instance = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        if inherited is not None:
            try:
                # Closing our copy keeps the parent's lock: a flock belongs to the open file
                # description, which the parent still holds. Every write was flushed, so nothing
                # buffered here gets written twice.
                inherited.close()
            except OSError:
                pass
