"""Attribution context: who and what an LLM call is charged to, carried in contextvars."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Callable, TypeVar

ATTRIBUTION_FIELDS = ("cost_center", "user_id", "session_id", "feature", "feature_flag", "environment")

_EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Attribution:
    """An immutable snapshot of the attribution in force; layers merge with the inner layer winning."""

    cost_center: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    feature_flag: str | None = None
    environment: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY_TAGS)
    # The id of the incoming HTTP request (set by the middleware), for log correlation.
    request_id: str | None = None

    def merged_with(self, inner: Attribution) -> Attribution:
        """Return this attribution overlaid by `inner`: inner's set fields and tag keys win."""
        if inner is EMPTY_ATTRIBUTION:
            return self
        if self is EMPTY_ATTRIBUTION:
            return inner
        values: dict[str, Any] = {}
        for name in ATTRIBUTION_FIELDS + ("request_id",):
            inner_value = getattr(inner, name)
            values[name] = inner_value if inner_value is not None else getattr(self, name)
        if inner.tags and self.tags:
            values["tags"] = MappingProxyType({**self.tags, **inner.tags})
        else:
            values["tags"] = inner.tags or self.tags
        return Attribution(**values)

    def record_fields(self) -> dict[str, Any]:
        """The fields of a usage record this attribution fills in (unset ones are left out)."""
        fields_: dict[str, Any] = {}
        for name in ATTRIBUTION_FIELDS:
            value = getattr(self, name)
            if value is not None:
                fields_[name] = value
        if self.tags:
            fields_["tags"] = dict(self.tags)
        return fields_


EMPTY_ATTRIBUTION = Attribution()

_current: contextvars.ContextVar[Attribution] = contextvars.ContextVar(
    "costportal_attribution", default=EMPTY_ATTRIBUTION
)
# Process-wide defaults (e.g. environment="production") sit under every context.
_process_defaults: Attribution = EMPTY_ATTRIBUTION


def make_attribution(
    *,
    cost_center: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    feature: str | None = None,
    feature_flag: str | None = None,
    environment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Attribution:
    """Build an Attribution, coercing values to strings so records always serialise."""
    return Attribution(
        cost_center=_as_text(cost_center),
        user_id=_as_text(user_id),
        session_id=_as_text(session_id),
        feature=_as_text(feature),
        feature_flag=_as_text(feature_flag),
        environment=_as_text(environment),
        tags=MappingProxyType({str(k): str(v) for k, v in tags.items() if v is not None}) if tags else _EMPTY_TAGS,
        request_id=_as_text(request_id),
    )


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text else None


def current_attribution() -> Attribution:
    """The attribution in force here: process defaults overlaid by every active context layer."""
    layered = _current.get()
    if _process_defaults is EMPTY_ATTRIBUTION:
        return layered
    return _process_defaults.merged_with(layered)


def set_default_attribution(**fields: Any) -> None:
    """Set process-wide defaults (e.g. environment) that every context inherits; replaces earlier defaults."""
    global _process_defaults
    _process_defaults = make_attribution(**fields)


def push_attribution(layer: Attribution) -> contextvars.Token:
    """Merge `layer` over the current context; undo with `pop_attribution(token)`."""
    return _current.set(_current.get().merged_with(layer))


def pop_attribution(token: contextvars.Token) -> None:
    """Restore the context that was in force before the matching `push_attribution`."""
    _current.reset(token)


def set_attribution(**fields: Any) -> contextvars.Token:
    """Merge attribution fields over the current context for frameworks without a `with` block."""
    return push_attribution(make_attribution(**fields))


reset_attribution = pop_attribution


class attribute_to:  # noqa: N801 - lower case because it reads as a phrase: `with attribute_to(...)`
    """Context manager and decorator that attributes the LLM calls inside it; nested ones merge, inner wins."""

    def __init__(
        self,
        *,
        cost_center: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        feature: str | None = None,
        feature_flag: str | None = None,
        environment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self._layer = make_attribution(
            cost_center=cost_center,
            user_id=user_id,
            session_id=session_id,
            feature=feature,
            feature_flag=feature_flag,
            environment=environment,
            tags=tags,
        )
        # A stack so the same instance can be re-entered (e.g. recursion) and unwinds in order.
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> Attribution:
        self._tokens.append(push_attribution(self._layer))
        return current_attribution()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pop_attribution(self._tokens.pop())

    def __call__(self, func: F) -> F:
        layer = self._layer

        # Each call pushes its own token, so a decorated function may run concurrently in many
        # threads or tasks without sharing this instance's token stack.
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_attributed(*args: Any, **kwargs: Any) -> Any:
                token = push_attribution(layer)
                try:
                    return await func(*args, **kwargs)
                finally:
                    pop_attribution(token)

            return async_attributed  # type: ignore[return-value]

        @functools.wraps(func)
        def attributed(*args: Any, **kwargs: Any) -> Any:
            token = push_attribution(layer)
            try:
                return func(*args, **kwargs)
            finally:
                pop_attribution(token)

        return attributed  # type: ignore[return-value]
