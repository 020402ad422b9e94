"""One LLM call in flight: what is learnt about it, and the single usage record it produces."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable

from .attribution import Attribution
from .records import build_usage_record, rfc3339_now

logger = logging.getLogger("costportal_client")

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_CANCELLED = "cancelled"

# Responses API stream events that carry the Response object (and, once done, its usage).
_RESPONSE_EVENTS = {
    "response.created": STATUS_OK,
    "response.in_progress": STATUS_OK,
    "response.completed": STATUS_OK,
    "response.incomplete": STATUS_OK,
    "response.failed": STATUS_ERROR,
}


def status_for_exception(exc: BaseException) -> str:
    """'cancelled' for cancellation and interruption, 'error' for everything else."""
    if isinstance(exc, (KeyboardInterrupt, GeneratorExit, SystemExit)):
        return STATUS_CANCELLED
    if type(exc).__name__ == "CancelledError":  # asyncio's and concurrent.futures' alike
        return STATUS_CANCELLED
    return STATUS_ERROR


class LLMCall:
    """Collects model and usage from a response, chunks or events, and reports exactly once."""

    __slots__ = (
        "request_id",
        "timestamp",
        "model",
        "usage",
        "provider",
        "attribution",
        "finished",
        "_failed",
        "_started",
        "_reporter_source",
    )

    def __init__(
        self,
        *,
        reporter_source: Callable[[], Any],
        provider: str | None,
        requested_model: Any,
        attribution: Attribution,
    ) -> None:
        # Minted before the call so that an error, a cancellation or a retried report all carry
        # the same idempotency key; provider response ids are not guaranteed unique across gateways.
        self.request_id = str(uuid.uuid4())
        self.timestamp = rfc3339_now()
        self.model: str | None = requested_model if isinstance(requested_model, str) else None
        self.usage: Any = None
        self.provider = provider
        self.attribution = attribution
        self.finished = False
        self._failed = False
        self._started = time.perf_counter()
        self._reporter_source = reporter_source

    def observe(self, item: Any) -> None:
        """Learn the model and usage from a response, a stream chunk or a Responses stream event."""
        try:
            event_type = getattr(item, "type", None)
            if isinstance(event_type, str) and event_type in _RESPONSE_EVENTS:
                if _RESPONSE_EVENTS[event_type] == STATUS_ERROR:
                    self._failed = True
                item = getattr(item, "response", None)
                if item is None:
                    return
            model = getattr(item, "model", None)
            if isinstance(model, str) and model:
                self.model = model
            usage = getattr(item, "usage", None)
            if usage is not None:
                self.usage = usage
        except Exception:  # noqa: BLE001 - observing must never disturb the caller's stream
            logger.debug("costportal: could not read usage from %r", type(item), exc_info=True)

    @property
    def saw_usage(self) -> bool:
        return self.usage is not None

    def finish_early(self) -> None:
        """The caller stopped reading: fine if usage already arrived, otherwise cancelled."""
        self.finish(STATUS_OK if self.saw_usage else STATUS_CANCELLED)

    def finish(self, status: str) -> None:
        """Report the call once; later calls are ignored. Never raises."""
        if self.finished:
            return
        self.finished = True
        try:
            if status == STATUS_OK and self._failed:
                status = STATUS_ERROR
            record = build_usage_record(
                request_id=self.request_id,
                timestamp=self.timestamp,
                model=self.model,
                provider=self.provider,
                status=status,
                latency_ms=int(round((time.perf_counter() - self._started) * 1000)),
                usage=self.usage,
                attribution=self.attribution,
            )
            reporter = self._reporter_source()
            if reporter is not None:
                reporter.report(record)
        except Exception:  # noqa: BLE001 - reporting must never raise into the caller
            logger.exception("costportal: could not report an LLM call")
