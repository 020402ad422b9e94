"""Instrument an official `openai` client (sync or async, any base_url) so that every call reports its usage."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .attribution import current_attribution
from .config import get_default_reporter
from .headers import DEFAULT_HEADER_NAMES, HeaderNames, headers_for_attribution
from .llm_call import STATUS_OK, LLMCall, status_for_exception
from .records import provider_from_base_url

logger = logging.getLogger("costportal_client")

ClientT = TypeVar("ClientT")

# (resource path, method, endpoint kind). Only kinds in _USAGE_IN_STREAM_OPTIONS accept stream_options.include_usage.
_INSTRUMENTED_METHODS = (
    ("chat.completions", "create", "chat"),
    ("chat.completions", "parse", "chat"),
    ("responses", "create", "responses"),
    ("responses", "parse", "responses"),
    ("completions", "create", "completions"),
    ("embeddings", "create", "embeddings"),
)
_USAGE_IN_STREAM_OPTIONS = {"chat", "completions"}
_MARKER = "_costportal_instrumented"


@dataclass(frozen=True)
class _Settings:
    reporter: Any
    provider: str | None
    header_names: HeaderNames
    forward_headers: bool
    include_stream_usage: bool

    def current_reporter(self) -> Any:
        # Resolved per call, so configure() may run after the client was instrumented.
        return self.reporter if self.reporter is not None else get_default_reporter()


def instrument(
    client: ClientT,
    *,
    reporter: Any = None,
    provider: str | None = None,
    header_names: HeaderNames = DEFAULT_HEADER_NAMES,
    forward_headers: bool = True,
    include_stream_usage: bool = True,
) -> ClientT:
    """Make `client` (an `openai.OpenAI` or `openai.AsyncOpenAI`) report the usage of each call; returns it.

    - reporter: where records go; default: the one set by `configure()` or the environment.
    - provider: the record's provider; default: guessed from the client's base_url ("openai" for
      api.openai.com and local gateways); "" leaves it out so the portal prices by model alone.
    - forward_headers: send the attribution as X-Cost-Center, X-User-ID... to the upstream API too.
    - include_stream_usage: ask streaming chat calls for usage (stream_options.include_usage).
    """
    if getattr(client, _MARKER, False):
        return client
    import openai  # imported here so the package works without the optional dependency

    from . import openai_streams

    settings = _Settings(
        reporter=reporter,
        provider=provider if provider is not None else provider_from_base_url(str(getattr(client, "base_url", ""))),
        header_names=header_names,
        forward_headers=forward_headers,
        include_stream_usage=include_stream_usage,
    )
    is_async = isinstance(client, openai.AsyncOpenAI)
    for resource_path, method_name, endpoint in _INSTRUMENTED_METHODS:
        resource = _resolve(client, resource_path)
        original = getattr(resource, method_name, None) if resource is not None else None
        if original is None:
            continue
        if is_async:
            wrapped = _wrap_async_method(original, settings, endpoint, openai.AsyncStream, openai_streams)
        else:
            wrapped = _wrap_sync_method(original, settings, endpoint, openai.Stream, openai_streams)
        # An instance attribute shadows the class's method for this client only.
        setattr(resource, method_name, wrapped)

    _instrument_copies(
        client,
        reporter=reporter,
        provider=provider,
        header_names=header_names,
        forward_headers=forward_headers,
        include_stream_usage=include_stream_usage,
    )
    setattr(client, _MARKER, True)
    return client


def _resolve(client: Any, dotted_path: str) -> Any:
    target = client
    for name in dotted_path.split("."):
        try:
            target = getattr(target, name)
        except Exception:  # noqa: BLE001 - an old openai version without this resource
            return None
    return target


def _instrument_copies(client: Any, **options: Any) -> None:
    """`client.with_options(...)` and `client.copy(...)` build new clients; instrument those too."""
    original_copy = getattr(client, "copy", None)
    if original_copy is None:
        return

    @functools.wraps(original_copy)
    def instrumented_copy(*args: Any, **kwargs: Any) -> Any:
        return instrument(original_copy(*args, **kwargs), **options)

    client.copy = instrumented_copy
    client.with_options = instrumented_copy


def _prepare_call(settings: _Settings, kwargs: dict[str, Any], endpoint: str) -> tuple[LLMCall, dict[str, Any], bool]:
    """Start tracking a call; returns the call, the kwargs to send and whether to hide the usage-only chunk."""
    attribution = current_attribution()
    call = LLMCall(
        reporter_source=settings.current_reporter,
        provider=settings.provider or None,
        requested_model=kwargs.get("model"),
        attribution=attribution,
    )
    call_kwargs = dict(kwargs)
    if settings.forward_headers:
        headers = headers_for_attribution(attribution, settings.header_names)
        if headers:
            caller_headers = kwargs.get("extra_headers")
            # The caller's own extra_headers win over the ones derived from the context.
            call_kwargs["extra_headers"] = {
                **headers,
                **(caller_headers if isinstance(caller_headers, Mapping) else {}),
            }
    hide_usage_only_chunk = False
    if endpoint in _USAGE_IN_STREAM_OPTIONS and kwargs.get("stream") is True and settings.include_stream_usage:
        options = kwargs.get("stream_options")
        if not isinstance(options, Mapping):  # absent, None or openai's `omit` sentinel
            call_kwargs["stream_options"] = {"include_usage": True}
            hide_usage_only_chunk = True
        elif "include_usage" not in options:
            call_kwargs["stream_options"] = {**options, "include_usage": True}
            hide_usage_only_chunk = True
        # An explicit include_usage=False is respected: the caller knows its gateway.
    return call, call_kwargs, hide_usage_only_chunk


def _complete_call(call: LLMCall, result: Any, *, streamed: bool) -> None:
    """Read usage from a finished (non-streamed) result and report."""
    if type(result).__name__ == "LegacyAPIResponse":
        # with_raw_response: its parse() is synchronous and cached, so the caller's own parse()
        # later costs nothing extra. (with_streaming_response is left alone: parsing would read
        # the body the caller wants to stream.)
        if streamed:
            call.finish(STATUS_OK)
            return
        try:
            result = result.parse()
        except Exception:  # noqa: BLE001
            result = None
    if result is not None:
        call.observe(result)
    call.finish(STATUS_OK)


def _wrap_sync_method(
    original: Callable[..., Any], settings: _Settings, endpoint: str, stream_type: type, streams: Any
) -> Callable[..., Any]:
    @functools.wraps(original)
    def instrumented(*args: Any, **kwargs: Any) -> Any:
        try:
            call, call_kwargs, hide_usage_only_chunk = _prepare_call(settings, kwargs, endpoint)
        except Exception:  # noqa: BLE001 - instrumentation must never stop the call itself
            logger.exception("costportal: could not prepare usage tracking; calling unmodified")
            return original(*args, **kwargs)
        try:
            result = original(*args, **call_kwargs)
        except BaseException as exc:
            call.finish(status_for_exception(exc))
            raise
        try:
            if isinstance(result, stream_type):
                return streams.InstrumentedStream(result, call, hide_usage_only_chunk=hide_usage_only_chunk)
            _complete_call(call, result, streamed=kwargs.get("stream") is True)
        except Exception:  # noqa: BLE001
            logger.exception("costportal: could not read usage from the response")
            call.finish(STATUS_OK)
        return result

    return instrumented


def _wrap_async_method(
    original: Callable[..., Any], settings: _Settings, endpoint: str, stream_type: type, streams: Any
) -> Callable[..., Any]:
    @functools.wraps(original)
    async def instrumented(*args: Any, **kwargs: Any) -> Any:
        try:
            call, call_kwargs, hide_usage_only_chunk = _prepare_call(settings, kwargs, endpoint)
        except Exception:  # noqa: BLE001 - instrumentation must never stop the call itself
            logger.exception("costportal: could not prepare usage tracking; calling unmodified")
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **call_kwargs)
        except BaseException as exc:
            call.finish(status_for_exception(exc))
            raise
        try:
            if isinstance(result, stream_type):
                return streams.InstrumentedAsyncStream(result, call, hide_usage_only_chunk=hide_usage_only_chunk)
            _complete_call(call, result, streamed=kwargs.get("stream") is True)
        except Exception:  # noqa: BLE001
            logger.exception("costportal: could not read usage from the response")
            call.finish(STATUS_OK)
        return result

    return instrumented
