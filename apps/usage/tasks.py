"""Celery tasks of usage: thin wrappers that take ids and are safe to run twice."""

from datetime import date

from celery import shared_task

from apps.tenancy.models import Organization
from apps.usage import rollups
from apps.usage.models import PricingStatus, UsageRecord
from apps.usage.services import usage_price_unpriced, usage_reconvert


@shared_task(name="usage.price_unpriced", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def price_unpriced(organization_id: int) -> int:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    return usage_price_unpriced(organization=organization).changed


@shared_task(name="usage.price_unpriced_all")
def price_unpriced_all() -> int:
    """The periodic sweep: catches records that arrived while a price was being imported."""
    organization_ids = (
        UsageRecord.objects.exclude(pricing_status=PricingStatus.PRICED)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    count = 0
    for organization_id in organization_ids:
        price_unpriced.delay(organization_id)
        count += 1
    return count


@shared_task(name="usage.reconvert", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def reconvert(organization_id: int, since: str | None = None) -> int:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    return usage_reconvert(organization=organization, since=date.fromisoformat(since) if since else None)


@shared_task(name="usage.refresh_rollups")
def refresh_rollups() -> dict[str, int]:
    """Every minute: recompute the daily rollups of the days whose usage changed, merge ingest's increments."""
    return rollups.rollups_refresh()
