"""WSGI and ASGI middleware: attribution from headers, X-Request-ID on the response, no leaks between requests."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from costportal_client import AttributionASGIMiddleware, AttributionWSGIMiddleware, HeaderNames, current_attribution


def attribution_as_dict() -> dict[str, str | None]:
    seen = current_attribution()
    return {
        "cost_center": seen.cost_center,
        "user_id": seen.user_id,
        "session_id": seen.session_id,
        "feature": seen.feature,
        "request_id": seen.request_id,
    }


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    """Answers with the attribution it sees; /stream produces its body lazily, after the call returned."""
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "application/json")])

        def body() -> Iterator[bytes]:
            yield b'{"streamed": '
            yield json.dumps(attribution_as_dict()).encode()
            yield b"}"

        return body()
    data = json.dumps(attribution_as_dict()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return iter([data])


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_server() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, AttributionWSGIMiddleware(wsgi_app), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def get(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers, json.loads(response.read())


def test_wsgi_middleware_sets_attribution_from_headers_and_adds_a_request_id(wsgi_server: str) -> None:
    headers, body = get(
        wsgi_server + "/",
        {"X-Cost-Center": "cc_marketing", "X-User-ID": "alice", "X-Session-ID": "s-9", "X-Feature": "summarize"},
    )
    assert body["cost_center"] == "cc_marketing"
    assert body["user_id"] == "alice"
    assert body["session_id"] == "s-9"
    assert body["feature"] == "summarize"
    assert headers["X-Request-ID"] == body["request_id"]
    assert len(headers["X-Request-ID"]) == 32


def test_wsgi_middleware_reuses_an_incoming_request_id(wsgi_server: str) -> None:
    headers, body = get(wsgi_server + "/", {"X-Request-ID": "req-abc-123"})
    assert headers["X-Request-ID"] == "req-abc-123"
    assert body["request_id"] == "req-abc-123"


def test_wsgi_middleware_replaces_an_unusable_request_id(wsgi_server: str) -> None:
    headers, _ = get(wsgi_server + "/", {"X-Request-ID": "x" * 300})
    assert headers["X-Request-ID"] != "x" * 300


def test_wsgi_streamed_body_is_produced_inside_the_request_context(wsgi_server: str) -> None:
    _, body = get(wsgi_server + "/stream", {"X-Cost-Center": "cc_stream"})
    assert body["streamed"]["cost_center"] == "cc_stream"


def test_wsgi_requests_do_not_see_each_others_attribution(wsgi_server: str) -> None:
    get(wsgi_server + "/", {"X-Cost-Center": "cc_first"})
    _, body = get(wsgi_server + "/", {})
    assert body["cost_center"] is None


def test_wsgi_middleware_called_directly_leaves_the_callers_context_untouched() -> None:
    collected: list[Any] = []
    app = AttributionWSGIMiddleware(wsgi_app)
    environ = {"PATH_INFO": "/", "HTTP_X_COST_CENTER": "cc_direct", "REQUEST_METHOD": "GET"}
    body = app(environ, lambda status, headers, exc_info=None: collected.append(headers))
    assert json.loads(b"".join(body))["cost_center"] == "cc_direct"
    assert current_attribution().cost_center is None
    assert any(name == "X-Request-ID" for name, _ in collected[0])


def test_wsgi_middleware_decodes_utf8_header_values() -> None:
    app = AttributionWSGIMiddleware(wsgi_app)
    # WSGI servers hand header bytes over as latin-1 text.
    environ = {"PATH_INFO": "/", "HTTP_X_USER_ID": "jörg".encode().decode("latin-1")}
    body = app(environ, lambda *args: None)
    assert json.loads(b"".join(body))["user_id"] == "jörg"


def test_header_names_are_configurable() -> None:
    names = HeaderNames(cost_center="X-Team", user_id=None, request_id="X-Correlation-ID")
    collected: list[Any] = []
    app = AttributionWSGIMiddleware(wsgi_app, header_names=names)
    environ = {
        "PATH_INFO": "/",
        "HTTP_X_TEAM": "cc_custom",
        "HTTP_X_USER_ID": "ignored",
        "HTTP_X_CORRELATION_ID": "corr-1",
    }
    body = json.loads(b"".join(app(environ, lambda status, headers, exc_info=None: collected.append(headers))))
    assert body["cost_center"] == "cc_custom"
    assert body["user_id"] is None
    assert ("X-Correlation-ID", "corr-1") in collected[0]


# -- ASGI ------------------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete", "seen": message["type"]})
        return
    await asyncio.sleep(0)  # let other requests interleave
    data = json.dumps(attribution_as_dict()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


def run_asgi(app: Any, headers: list[Any], scope_type: str = "http") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return (
            {"type": "http.request", "body": b"", "more_body": False}
            if scope_type == "http"
            else {"type": "lifespan.startup"}
        )

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": scope_type, "method": "GET", "path": "/", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_middleware_sets_attribution_and_adds_a_request_id() -> None:
    sent = run_asgi(
        AttributionASGIMiddleware(asgi_app),
        [(b"x-cost-center", b"cc_api"), (b"x-user-id", b"bob"), (b"x-feature", b"search"), (b"x-session-id", b"s-2")],
    )
    start, body = sent[0], json.loads(sent[1]["body"])
    assert body["cost_center"] == "cc_api"
    assert body["user_id"] == "bob"
    assert body["feature"] == "search"
    assert body["session_id"] == "s-2"
    request_ids = [value for name, value in start["headers"] if name == b"x-request-id"]
    assert request_ids == [body["request_id"].encode()]


def test_asgi_middleware_reuses_an_incoming_request_id() -> None:
    sent = run_asgi(AttributionASGIMiddleware(asgi_app), [(b"x-request-id", b"upstream-42")])
    assert (b"x-request-id", b"upstream-42") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["request_id"] == "upstream-42"


def test_asgi_concurrent_requests_keep_their_own_attribution() -> None:
    middleware = AttributionASGIMiddleware(asgi_app)

    async def one(cost_center: str) -> str:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await middleware({"type": "http", "headers": [(b"x-cost-center", cost_center.encode())]}, receive, send)
        return json.loads(sent[1]["body"])["cost_center"]

    async def main() -> list[str]:
        results = await asyncio.gather(*(one(f"cc_{i}") for i in range(20)))
        assert current_attribution().cost_center is None
        return list(results)

    assert asyncio.run(main()) == [f"cc_{i}" for i in range(20)]


def test_asgi_lifespan_passes_through_untouched() -> None:
    sent = run_asgi(AttributionASGIMiddleware(asgi_app), [], scope_type="lifespan")
    assert sent == [{"type": "lifespan.startup.complete", "seen": "lifespan.startup"}]
