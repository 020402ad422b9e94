"""Reactions of usage to pricing events: price what waited for a price, convert what waited for a rate."""

import logging

from django.dispatch import receiver

from apps.pricing.signals import fx_rates_changed, prices_changed
from apps.tenancy.models import Organization

logger = logging.getLogger(__name__)


def _enqueue(task, *args):
    try:
        task.delay(*args)
    except Exception:  # the broker is down: the periodic sweep catches up
        logger.warning("could not enqueue %s%r; the periodic sweep will do it", task.name, args, exc_info=True)


@receiver(prices_changed)
def price_waiting_usage(sender, organization=None, since=None, **kwargs):
    from apps.usage.tasks import price_unpriced

    organization_ids = (
        [organization.pk] if organization is not None else Organization.objects.values_list("pk", flat=True)
    )
    for organization_id in organization_ids:
        _enqueue(price_unpriced, organization_id)


@receiver(fx_rates_changed)
def convert_waiting_usage(sender, since=None, **kwargs):
    from apps.usage.tasks import reconvert

    for organization_id in Organization.objects.values_list("pk", flat=True):
        _enqueue(reconvert, organization_id, since.isoformat() if since else None)
