"""Celery tasks of billing: thin, idempotent wrappers around the services."""

from datetime import date

from celery import shared_task

from apps.billing.services import invoice_close, periods_due
from apps.tenancy.models import Organization


@shared_task(name="billing.close_period", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def close_period(organization_id: int, period: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return invoice_close(organization=organization, period=date.fromisoformat(period)).pk


@shared_task(name="billing.close_due_periods")
def close_due_periods() -> int:
    """Hourly: close every month that ended more than its organization's grace days ago."""
    count = 0
    for organization in Organization.objects.all():
        for period in periods_due(organization=organization):
            close_period.delay(organization.pk, period.isoformat())
            count += 1
    return count


@shared_task(
    name="billing.send_chargebacks", autoretry_for=(ConnectionError, OSError), retry_backoff=True, max_retries=8
)
def send_chargebacks(invoice_id: int) -> int:
    from apps.billing.chargeback import chargebacks_send

    return chargebacks_send(invoice_id=invoice_id)
