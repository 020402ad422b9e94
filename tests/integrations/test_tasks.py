"""Celery tasks of integrations: webhook delivery and the sweep that retries what is due (run eagerly)."""

from datetime import timedelta

from django.utils import timezone

from apps.integrations.models import DeliveryState, WebhookDelivery
from apps.integrations.tasks import deliver_webhook, retry_due_webhooks


def make_delivery(org, url, *, next_attempt_at=None, state=DeliveryState.PENDING, attempts=0):
    return WebhookDelivery.objects.create(
        organization=org,
        event="budget.alert",
        url=url,
        secret="s",
        payload={"text": "hi"},
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at or timezone.now(),
    )


def test_deliver_webhook_delivers_and_is_safe_to_run_twice(org, webhook_receiver):
    delivery = make_delivery(org, webhook_receiver.url())
    assert deliver_webhook.delay(delivery.pk).get() == DeliveryState.DELIVERED
    assert deliver_webhook.delay(delivery.pk).get() == DeliveryState.DELIVERED
    assert len(webhook_receiver.requests) == 1
    assert deliver_webhook.delay(10**9).get() == "missing"


def test_a_failed_attempt_run_eagerly_stays_pending_for_the_sweep(org, webhook_receiver):
    webhook_receiver.status = 500
    delivery = make_delivery(org, webhook_receiver.url())
    assert deliver_webhook.delay(delivery.pk).get() == DeliveryState.PENDING
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, 500)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert len(webhook_receiver.requests) == 1


def test_retry_due_webhooks_attempts_every_overdue_pending_delivery(org, webhook_receiver):
    long_ago = timezone.now() - timedelta(minutes=10)
    overdue = make_delivery(org, webhook_receiver.url("/up"), next_attempt_at=long_ago, attempts=1)
    # the newest first, so the sweep meets the failing delivery before the other one
    failing = make_delivery(org, webhook_receiver.url("/down"), next_attempt_at=long_ago, attempts=1)
    not_yet = make_delivery(org, webhook_receiver.url("/later"), next_attempt_at=timezone.now() + timedelta(minutes=5))
    just_due = make_delivery(org, webhook_receiver.url("/recent"), next_attempt_at=timezone.now())
    done = make_delivery(org, webhook_receiver.url("/done"), next_attempt_at=long_ago, state=DeliveryState.FAILED)

    webhook_receiver.status_for = lambda path: 503 if path == "/down" else 200
    # the sweep takes only deliveries overdue by two minutes: their task was lost
    assert retry_due_webhooks() == 2
    assert sorted(r.path for r in webhook_receiver.requests) == ["/down", "/up"]
    for delivery in (failing, overdue, not_yet, just_due, done):
        delivery.refresh_from_db()
    assert (failing.state, failing.attempts, failing.last_status) == (DeliveryState.PENDING, 2, 503)
    assert (overdue.state, overdue.attempts) == (DeliveryState.DELIVERED, 2)
    assert (not_yet.attempts, just_due.attempts, done.attempts) == (0, 0, 0)
