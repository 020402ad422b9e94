"""Real local HTTP servers standing in for the portal's ingest API and an OpenAI-compatible API in tests."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

API_KEY = "cpk_test_0123456789abcdef"

Answer = tuple[int, Optional[dict[str, Any]], dict[str, str]]
Script = Union[Answer, Callable[[list[dict[str, Any]]], Answer]]


@dataclass
class ReceivedBatch:
    """One POST the fake portal received."""

    received_at: float
    headers: dict[str, str]
    records: list[dict[str, Any]]
    status: int


class FakePortal:
    """POST /api/v1/usage like the portal: checks key, gzip and JSON, dedupes request_ids, can be scripted or stopped."""

    def __init__(self) -> None:
        self.batches: list[ReceivedBatch] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self.response_delay = 0.0
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePortal:
        portal = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # see FakeOpenAI: avoids a 40 ms stall per answer

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                portal._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Go down: the port refuses connections until `start()` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer_next(self, *answers: Script) -> None:
        """Answer the next requests with these (status, body, headers) or callables of the records."""
        with self._lock:
            self._script.extend(answers)

    # -- inspection ------------------------------------------------------------------------
    @property
    def received_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [record for batch in self.batches for record in batch.records]

    def received_ids(self) -> list[str]:
        return [record.get("request_id") for record in self.received_records]

    def stored_ids(self) -> list[str]:
        with self._lock:
            return list(self.stored)

    def wait_for_stored(self, count: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.stored) >= count:
                return True
            time.sleep(0.01)
        return False

    # -- the ingest endpoint ---------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        headers = {name.lower(): value for name, value in request.headers.items()}
        if self.response_delay:
            time.sleep(self.response_delay)
        if request.path.rstrip("/") != "/api/v1/usage":
            return self._send(request, 404, {"detail": "Not found."}, {})
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return self._send(request, 401, {"detail": "Invalid API key."}, {})
        try:
            body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
            payload = json.loads(body)
        except (OSError, ValueError):
            return self._send(request, 400, {"detail": "Malformed JSON."}, {})
        records = payload.get("records") if isinstance(payload, dict) and "records" in payload else [payload]

        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            status, answer, extra_headers = scripted(records) if callable(scripted) else scripted
            with self._lock:
                self.batches.append(ReceivedBatch(time.monotonic(), headers, records, status))
                if status in (200, 201, 207):
                    rejected = {error["index"] for error in (answer or {}).get("errors", [])}
                    for index, record in enumerate(records):
                        if index not in rejected:
                            self.stored.setdefault(record["request_id"], record)
            return self._send(request, status, answer, extra_headers)

        answer = self._ingest(records)
        status = 207 if answer["rejected"] else 201
        with self._lock:
            self.batches.append(ReceivedBatch(time.monotonic(), headers, records, status))
        self._send(request, status, answer, {})

    def _ingest(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        accepted = duplicates = 0
        errors = []
        with self._lock:
            for index, record in enumerate(records):
                problems = {}
                if not record.get("request_id"):
                    problems["request_id"] = ["This field is required."]
                if not record.get("model"):
                    problems["model"] = ["This field is required."]
                if problems:
                    errors.append({"index": index, "request_id": record.get("request_id"), "errors": problems})
                elif record["request_id"] in self.stored:
                    duplicates += 1
                else:
                    self.stored[record["request_id"]] = record
                    accepted += 1
        return {"accepted": accepted, "duplicates": duplicates, "rejected": len(errors), "errors": errors}

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except OSError:
            pass


# -- OpenAI-compatible API -----------------------------------------------------------------

CHAT_USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 3},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
RESPONSES_USAGE = {
    "input_tokens": 21,
    "input_tokens_details": {"cached_tokens": 5},
    "output_tokens": 9,
    "output_tokens_details": {"reasoning_tokens": 4},
    "total_tokens": 30,
}
EMBEDDING_USAGE = {"prompt_tokens": 8, "total_tokens": 8}
# The fake names a dated snapshot, as OpenAI does, so tests can tell the response's model from the request's.
SNAPSHOT_SUFFIX = "-2025-01-01"


@dataclass
class UpstreamRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """An OpenAI-compatible API: /v1/chat/completions (JSON or SSE) and /v1/responses, with usage.

    The requested model steers it: "fail-500"/"fail-400" answer errors, "slow" waits between chunks
    and before answering.
    """

    requests: list[UpstreamRequest] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do, so latency figures mean something
            # Headers and body go out in two writes; with Nagle on, the second waits for the
            # client's delayed ACK and every call takes ~40 ms.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}")
        self.requests.append(UpstreamRequest(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        model = body.get("model", "")
        if model == "fail-500":
            return _send_json(request, 500, {"error": {"message": "upstream exploded", "type": "server_error"}})
        if model == "fail-400":
            return _send_json(request, 400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
        if model == "slow" and not body.get("stream"):
            time.sleep(2.0)
        if request.path == "/v1/chat/completions":
            if body.get("stream"):
                return self._stream_chat(request, body)
            return _send_json(request, 200, _chat_completion(model))
        if request.path == "/v1/embeddings":
            return _send_json(
                request,
                200,
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                    "model": model + SNAPSHOT_SUFFIX,
                    "usage": EMBEDDING_USAGE,
                },
            )
        if request.path == "/v1/responses":
            if body.get("stream"):
                return self._stream_response(request, model)
            return _send_json(request, 200, _response_object(model, "completed"))
        return _send_json(request, 404, {"error": {"message": "no such route"}})

    def _stream_chat(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events: list[dict[str, Any]] = []
        for piece in ("Hel", "lo", "!"):
            events.append(_chunk(model, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
        events.append(_chunk(model, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        if include_usage:
            events.append({**_chunk(model, []), "usage": CHAT_USAGE})
        _send_sse(request, [json.dumps(event) for event in events] + ["[DONE]"], slow=model == "slow")

    def _stream_response(self, request: BaseHTTPRequestHandler, model: str) -> None:
        events = [
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": _response_object(model, "in_progress", usage=False),
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hello",
                "logprobs": [],
            },
            {"type": "response.completed", "sequence_number": 2, "response": _response_object(model, "completed")},
        ]
        _send_sse(request, [json.dumps(event) for event in events], slow=model == "slow", event_names=True)


def _chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model + SNAPSHOT_SUFFIX,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
        "usage": CHAT_USAGE,
    }


def _chunk(model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model + SNAPSHOT_SUFFIX,
        "choices": choices,
    }


def _response_object(model: str, status: str, usage: bool = True) -> dict[str, Any]:
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model + SNAPSHOT_SUFFIX,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
            }
        ]
        if status == "completed"
        else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": RESPONSES_USAGE if usage else None,
    }


def _send_json(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def _send_sse(request: BaseHTTPRequestHandler, payloads: list[str], *, slow: bool, event_names: bool = False) -> None:
    request.send_response(200)
    request.send_header("Content-Type", "text/event-stream")
    request.send_header("Connection", "close")
    request.end_headers()
    request.close_connection = True
    try:
        for payload in payloads:
            prefix = ""
            if event_names and payload.startswith("{"):
                prefix = f"event: {json.loads(payload)['type']}\n"
            request.wfile.write(f"{prefix}data: {payload}\n\n".encode())
            request.wfile.flush()
            if slow:
                time.sleep(0.3)
    except OSError:
        pass  # the client closed the stream early, as some tests do on purpose
