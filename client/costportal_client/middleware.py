"""WSGI and ASGI middleware: attribution from request headers, X-Request-ID on every response."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Iterable, Iterator, MutableMapping
from typing import Any, Callable

from .attribution import Attribution, make_attribution, pop_attribution, push_attribution
from .headers import DEFAULT_HEADER_NAMES, HeaderNames, incoming_header_value, usable_request_id

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


def _attribution_from_headers(
    read_header: Callable[[str], str | None], names: HeaderNames, request_id: str
) -> Attribution:
    values: dict[str, Any] = {}
    for field_name, header in names.attribution_headers():
        raw = read_header(header)
        values[field_name] = incoming_header_value(raw) if raw is not None else None
    return make_attribution(request_id=request_id, **values)


class AttributionWSGIMiddleware:
    """Wrap a WSGI app (Django's `get_wsgi_application()`, Flask's `app.wsgi_app`) with attribution from headers.

    Only deploy it where a trusted proxy sets or strips these headers: whoever sends them decides
    which cost center pays.
    """

    def __init__(self, app: WSGIApp, *, header_names: HeaderNames = DEFAULT_HEADER_NAMES) -> None:
        self.app = app
        self.header_names = header_names
        self._request_id_response_header = header_names.request_id

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def read_header(name: str) -> str | None:
            return environ.get("HTTP_" + name.upper().replace("-", "_"))

        request_id = usable_request_id(read_header(self.header_names.request_id))
        layer = _attribution_from_headers(read_header, self.header_names, request_id)

        def start_response_with_request_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            wanted = self._request_id_response_header.lower()
            if not any(name.lower() == wanted for name, _ in headers):
                headers = list(headers) + [(self._request_id_response_header, request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        # The response body may be produced lazily while the server iterates it, after this call
        # returns; running the app and every iteration step in one private Context keeps the
        # attribution in force for streamed bodies without leaking it into the server's context.
        request_context = contextvars.copy_context()
        request_context.run(push_attribution, layer)
        body = request_context.run(self.app, environ, start_response_with_request_id)
        return _BodyInContext(body, request_context)


class _BodyInContext:
    """A WSGI response iterable that produces each chunk, and closes, inside the request's context."""

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> _BodyInContext:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._body)
        return self._context.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(close)


class AttributionASGIMiddleware:
    """Wrap an ASGI app (Django's `get_asgi_application()`, Starlette, FastAPI) with attribution from headers.

    Only deploy it where a trusted proxy sets or strips these headers: whoever sends them decides
    which cost center pays.
    """

    def __init__(self, app: ASGIApp, *, header_names: HeaderNames = DEFAULT_HEADER_NAMES) -> None:
        self.app = app
        self.header_names = header_names
        self._request_id_header_bytes = header_names.request_id.lower().encode("latin-1")

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        raw_headers: dict[str, str] = {}
        for name, value in scope.get("headers") or ():
            raw_headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

        def read_header(name: str) -> str | None:
            return raw_headers.get(name.lower())

        request_id = usable_request_id(read_header(self.header_names.request_id))
        layer = _attribution_from_headers(read_header, self.header_names, request_id)
        request_id_header = self._request_id_header_bytes

        async def send_with_request_id(message: Any) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers") or ())
                if not any(name.lower() == request_id_header for name, _ in headers):
                    headers.append((request_id_header, request_id.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        # The whole request runs inside this await, so a plain token set/reset scopes it exactly.
        token = push_attribution(layer)
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            pop_attribution(token)
