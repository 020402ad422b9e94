"""costportal client: attribute LLM calls to cost centers, users and features, and report their usage."""

from ._version import __version__
from .attribution import (
    Attribution,
    attribute_to,
    current_attribution,
    reset_attribution,
    set_attribution,
    set_default_attribution,
)
from .config import configure, get_default_reporter, reset_default_reporter
from .headers import DEFAULT_HEADER_NAMES, HeaderNames
from .middleware import AttributionASGIMiddleware, AttributionWSGIMiddleware
from .openai_integration import instrument
from .propagation import ContextThreadPoolExecutor, bind_context, start_thread, submit_with_context
from .reporter import Reporter, ReporterStats
from .transport import RetryPolicy

__all__ = [
    "Attribution",
    "AttributionASGIMiddleware",
    "AttributionWSGIMiddleware",
    "ContextThreadPoolExecutor",
    "DEFAULT_HEADER_NAMES",
    "HeaderNames",
    "Reporter",
    "ReporterStats",
    "RetryPolicy",
    "__version__",
    "attribute_to",
    "bind_context",
    "configure",
    "current_attribution",
    "get_default_reporter",
    "instrument",
    "reset_attribution",
    "reset_default_reporter",
    "set_attribution",
    "set_default_attribution",
    "start_thread",
    "submit_with_context",
]
