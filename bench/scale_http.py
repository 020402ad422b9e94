"""gunicorn and a sequential keep-alive HTTP client for bench/scale.py."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn costportal.wsgi:application`, 2 gthread workers, on a free loopback port."""

    def __init__(
        self,
        *,
        database_url: str,
        workers: int = 2,
        threads: int = 4,
        redis_url: str | None = None,
        log_path: Path | None = None,
    ):
        self.port = free_port()
        self.workers, self.threads = workers, threads
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "costportal.settings.base",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "*",
            "DATABASE_URL": database_url,
            "API_KEY_RATE_LIMIT": "10000000/min",
            "LOG_LEVEL": "WARNING",
        }
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            self.env["CACHE_KEY_PREFIX"] = "costportal-bench-scale"
        self.command = [
            GUNICORN,
            "costportal.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "75",
            "--timeout",
            "600",
            "--log-level",
            "warning",
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def describe(self) -> str:
        return " ".join(["gunicorn", *self.command[1:]])

    def __enter__(self) -> Gunicorn:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not come up within 60 s")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the arbiter stops its workers
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class CaseResult:
    name: str
    path: str
    state: str
    requests: int
    warmup: int
    times_ms: list[float] = field(default_factory=list)
    status: int = 0
    body_bytes: int = 0
    check: str = ""

    def pct(self, q: float) -> float:
        ordered = sorted(self.times_ms)
        if not ordered:
            return float("nan")
        # nearest rank
        rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
        return ordered[rank - 1]

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    @property
    def max(self) -> float:
        return max(self.times_ms) if self.times_ms else float("nan")

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "state": self.state,
            "requests": self.requests,
            "warmup": self.warmup,
            "p50_ms": round(self.p50, 1),
            "p95_ms": round(self.p95, 1),
            "max_ms": round(self.max, 1),
            "mean_ms": round(sum(self.times_ms) / len(self.times_ms), 1),
            "status": self.status,
            "body_bytes": self.body_bytes,
            "check": self.check,
            "times_ms": [round(t, 2) for t in self.times_ms],
        }


class Client:
    """One keep-alive connection; requests one after another."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            started = time.perf_counter()
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
        return response.status, body, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.conn.close()


def run_case(client: Client, *, name: str, path: str, state: str, requests: int, warmup: int, check=None) -> CaseResult:
    result = CaseResult(name=name, path=path, state=state, requests=requests, warmup=warmup)
    for _ in range(warmup):
        status, body, _ = client.get(path)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}: {body[:500]!r}")
    for _ in range(requests):
        status, body, ms = client.get(path)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}: {body[:500]!r}")
        result.times_ms.append(ms)
    result.status, result.body_bytes = status, len(body)
    if check is not None:
        result.check = check(body)
    return result
