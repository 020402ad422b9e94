"""Outgoing webhooks: Slack-compatible JSON, HMAC-SHA256 signed, retried with backoff, every attempt logged.

The signature header is `X-Costportal-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
keyed with the endpoint's secret, so a receiver can check both origin and freshness.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.integrations.models import DeliveryState, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 5


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(*, secret: str, body: bytes, header: str, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature and refuse stale or altered deliveries."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret=secret, body=body, timestamp=timestamp)
    return hmac.compare_digest(expected, header)


def backoff_seconds(attempt: int) -> int:
    """30 s, 2 min, 8 min, 32 min, ~2 h after failed attempts 1..5."""
    return 30 * 4 ** (attempt - 1)


def webhook_send(*, organization, event: str, url: str, secret: str, payload: dict) -> WebhookDelivery:
    """Log a delivery now and post it after the surrounding transaction commits."""
    delivery = WebhookDelivery.objects.create(
        organization=organization,
        event=event,
        url=url,
        secret=secret,
        payload=payload,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _enqueue_delivery(delivery.pk))
    return delivery


def webhook_broadcast(*, organization, event: str, payload: dict) -> list[WebhookDelivery]:
    """Send an event to every active endpoint of the organization that subscribed to it."""
    endpoints = WebhookEndpoint.objects.for_org(organization).filter(active=True)
    return [
        webhook_send(organization=organization, event=event, url=e.url, secret=e.secret, payload=payload)
        for e in endpoints
        if event in e.events
    ]


def _enqueue_delivery(delivery_id: int) -> None:
    from apps.integrations.tasks import deliver_webhook

    try:
        deliver_webhook.delay(delivery_id)
    except Exception:  # the broker is down: the periodic sweep retries pending deliveries
        logger.warning("could not enqueue webhook delivery %s", delivery_id, exc_info=True)


def webhook_attempt(*, delivery_id: int) -> WebhookDelivery:
    """One attempt: POST the signed JSON; on failure schedule the next attempt or give up after MAX_ATTEMPTS."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(skip_locked=True).filter(pk=delivery_id).first()
        if delivery is None or delivery.state != DeliveryState.PENDING:
            return delivery
        if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now() + timedelta(seconds=1):
            return delivery  # a duplicate trigger before the retry is due
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        request = urllib.request.Request(
            delivery.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "costportal-webhooks/1",
                "X-Costportal-Event": delivery.event,
                "X-Costportal-Delivery": str(delivery.pk),
                "X-Costportal-Signature": sign(secret=delivery.secret, body=body, timestamp=int(time.time())),
            },
        )
        delivery.attempts += 1
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (configured URL)
                delivery.last_status, delivery.last_error = response.status, ""
        except urllib.error.HTTPError as exc:
            delivery.last_status, delivery.last_error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            delivery.last_status, delivery.last_error = None, str(getattr(exc, "reason", exc))[:500]
        now = timezone.now()
        if delivery.last_status is not None and 200 <= delivery.last_status < 300:
            delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.DELIVERED, now, None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.save()
    return delivery
