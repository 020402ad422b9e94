"""The process-wide default reporter, configured in code or from COSTPORTAL_* environment variables."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .attribution import set_default_attribution
from .reporter import Reporter

logger = logging.getLogger("costportal_client")

_lock = threading.Lock()
_default_reporter: Reporter | None = None
_warned_unconfigured = False


def configure(
    portal_url: str | None = None,
    api_key: str | None = None,
    *,
    environment: str | None = None,
    **reporter_options: Any,
) -> Reporter:
    """Create the default reporter (COSTPORTAL_URL / COSTPORTAL_API_KEY fill in missing arguments).

    `environment` (or COSTPORTAL_ENVIRONMENT) becomes the default environment of every record.
    Other keyword arguments go to `Reporter`. Calling it again replaces (and closes) the previous one.
    """
    global _default_reporter
    portal_url = portal_url or os.environ.get("COSTPORTAL_URL")
    api_key = api_key or os.environ.get("COSTPORTAL_API_KEY")
    if not portal_url or not api_key:
        raise ValueError("configure() needs portal_url and api_key, or COSTPORTAL_URL and COSTPORTAL_API_KEY")
    environment = environment or os.environ.get("COSTPORTAL_ENVIRONMENT")
    if environment:
        set_default_attribution(environment=environment)
    reporter = Reporter(portal_url, api_key, **reporter_options)
    with _lock:
        previous, _default_reporter = _default_reporter, reporter
    if previous is not None:
        previous.close()
    return reporter


def get_default_reporter() -> Reporter | None:
    """The configured reporter; created from the environment on first use; None (warned once) when unconfigured."""
    global _default_reporter, _warned_unconfigured
    if _default_reporter is not None:
        return _default_reporter
    with _lock:
        if _default_reporter is not None:
            return _default_reporter
        portal_url = os.environ.get("COSTPORTAL_URL")
        api_key = os.environ.get("COSTPORTAL_API_KEY")
        if portal_url and api_key:
            environment = os.environ.get("COSTPORTAL_ENVIRONMENT")
            if environment:
                set_default_attribution(environment=environment)
            _default_reporter = Reporter(portal_url, api_key)
            return _default_reporter
        if not _warned_unconfigured:
            _warned_unconfigured = True
            logger.warning(
                "costportal: no reporter configured (call costportal_client.configure() or set "
                "COSTPORTAL_URL and COSTPORTAL_API_KEY); LLM usage is not being reported"
            )
        return None


def reset_default_reporter() -> None:
    """Close and forget the default reporter (for tests and reconfiguration)."""
    global _default_reporter
    with _lock:
        previous, _default_reporter = _default_reporter, None
    if previous is not None:
        previous.close()
