"""Stream wrappers that watch an openai stream for usage and report when it ends, fails or is abandoned."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from openai import AsyncStream, Stream

from .llm_call import STATUS_OK, LLMCall, status_for_exception


def is_usage_only_chunk(chunk: Any) -> bool:
    """The extra last chunk that `include_usage` adds: usage and no choices."""
    return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", None)


class InstrumentedStream(Stream):  # type: ignore[type-arg]
    """A `Stream` (isinstance still holds) that reports the call once iteration ends or the stream is closed."""

    def __init__(self, inner: Stream, call: LLMCall, *, hide_usage_only_chunk: bool) -> None:  # type: ignore[type-arg]
        # Stream.__init__ is deliberately not called: this wraps a stream the client already opened.
        self._inner = inner
        self._call = call
        self._hide_usage_only_chunk = hide_usage_only_chunk
        self.response = inner.response
        self._iterator = self._observed()

    def _observed(self) -> Iterator[Any]:
        call = self._call
        try:
            for item in self._inner:
                call.observe(item)
                # We asked for usage on the caller's behalf; code written without it may index
                # choices[0] on every chunk, so the extra chunk stays ours.
                if self._hide_usage_only_chunk and is_usage_only_chunk(item):
                    continue
                yield item
        except GeneratorExit:
            self._inner.close()
            call.finish_early()
            raise
        except BaseException as exc:
            call.finish(status_for_exception(exc))
            raise
        call.finish(STATUS_OK)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._call.finish_early()

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def __del__(self) -> None:
        # Never iterated and never closed: still one record, so the call is not lost.
        call = self.__dict__.get("_call")
        if call is not None:
            call.finish_early()


class InstrumentedAsyncStream(AsyncStream):  # type: ignore[type-arg]
    """An `AsyncStream` that reports the call once iteration ends or the stream is closed."""

    def __init__(self, inner: AsyncStream, call: LLMCall, *, hide_usage_only_chunk: bool) -> None:  # type: ignore[type-arg]
        # AsyncStream.__init__ is deliberately not called: this wraps a stream already opened.
        self._inner = inner
        self._call = call
        self._hide_usage_only_chunk = hide_usage_only_chunk
        self.response = inner.response
        self._iterator = self._observed()

    async def _observed(self) -> AsyncIterator[Any]:
        call = self._call
        try:
            async for item in self._inner:
                call.observe(item)
                if self._hide_usage_only_chunk and is_usage_only_chunk(item):
                    continue
                yield item
        except GeneratorExit:
            # No awaiting here: the generator may be finalised outside a running loop.
            call.finish_early()
            raise
        except BaseException as exc:
            call.finish(status_for_exception(exc))
            raise
        call.finish(STATUS_OK)

    async def close(self) -> None:
        try:
            await self._inner.close()
        finally:
            self._call.finish_early()

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def __del__(self) -> None:
        call = self.__dict__.get("_call")
        if call is not None:
            call.finish_early()
