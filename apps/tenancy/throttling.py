"""Per-key rate limits that fail open: ingest never depends on the cache being up."""

import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from apps.tenancy.models import ApiKey

logger = logging.getLogger(__name__)

_client = None


def _redis_client():
    """One client per process (it pools its connections), on the Redis of REDIS_URL; None without one."""
    global _client
    if _client is None and settings.REDIS_URL:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _client


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'6000/min' -> (6000, 60)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


class ApiKeyRateThrottle(BaseThrottle):
    """A fixed-window counter per API key (or per logged-in user): one INCR per request."""

    scope = "api_key"

    def __init__(self):
        self.num_requests, self.duration = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        self.window_ends = 0.0

    def ident(self, request) -> str | None:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return None

    def allow_request(self, request, view):
        ident = self.ident(request)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:throttle:{self.scope}:{ident}:{window}"
        try:
            client = _redis_client()
            if client is None:  # no Redis configured (the demo): the process's own cache
                try:
                    return cache.incr(key) <= self.num_requests
                except ValueError:  # first request of the window
                    cache.add(key, 1, timeout=self.duration + 1)
                    return True
            # One round trip: count, and let the window's key expire with it.
            count, _ = client.pipeline(transaction=False).incr(key).expire(key, self.duration + 1, nx=True).execute()
            return count <= self.num_requests
        except Exception:  # the cache is down: serve the request rather than lose usage
            logger.warning("rate limit cache unavailable; request allowed", exc_info=True)
            return True

    def wait(self):
        return max(1.0, self.window_ends - time.time())
