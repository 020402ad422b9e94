"""Carry the attribution context into other threads, which (unlike asyncio tasks) start with an empty one."""

from __future__ import annotations

import contextvars
import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def bind_context(func: Callable[..., T]) -> Callable[..., T]:
    """Return `func` bound to a snapshot of the current context, for callbacks run on other threads."""
    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def run_in_snapshot(*args: Any, **kwargs: Any) -> T:
        # A Context can be entered by one thread at a time, so every call gets its own copy.
        return snapshot.copy().run(func, *args, **kwargs)

    return run_in_snapshot


def start_thread(
    func: Callable[..., Any],
    *args: Any,
    name: str | None = None,
    daemon: bool | None = None,
    **kwargs: Any,
) -> threading.Thread:
    """Start a thread that runs `func(*args, **kwargs)` in a copy of the caller's context."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(func, *args), kwargs=kwargs, name=name, daemon=daemon)
    thread.start()
    return thread


def submit_with_context(executor: Any, func: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """Submit `func` to any executor so that it runs in a copy of the caller's context."""
    return executor.submit(contextvars.copy_context().run, func, *args, **kwargs)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the context they were submitted from."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:  # type: ignore[override]
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
