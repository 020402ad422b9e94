"""Celery tasks of integrations: webhook delivery with backoff, and the sweep that catches up."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.integrations.models import DeliveryState, WebhookDelivery
from apps.integrations.webhooks import webhook_attempt


@shared_task(name="integrations.deliver_webhook", bind=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> str:
    delivery = webhook_attempt(delivery_id=delivery_id)
    if delivery is not None and delivery.state == DeliveryState.PENDING and delivery.next_attempt_at:
        if self.request.is_eager:
            # Run in-process (no broker): Celery would re-run or raise at once, ignoring the countdown,
            # so the retry is left to the retry_due_webhooks sweep.
            return delivery.state
        countdown = max(1, (delivery.next_attempt_at - timezone.now()).total_seconds())
        raise self.retry(countdown=countdown)
    return delivery.state if delivery else "missing"


@shared_task(name="integrations.retry_due_webhooks")
def retry_due_webhooks() -> int:
    """Deliveries whose retry is due but whose task was lost (a broker restart, a killed worker)."""
    overdue = timezone.now() - timedelta(minutes=2)
    due = WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=overdue)
    count = 0
    for delivery_id in due.values_list("id", flat=True)[:500]:
        deliver_webhook.delay(delivery_id)
        count += 1
    return count
