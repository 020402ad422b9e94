"""Celery tasks of budgets: evaluation every 15 minutes and within a minute of new usage."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.budgets.models import Alert, Budget
from apps.budgets.selectors import budgets_covering
from apps.budgets.services import alert_send_email, budget_evaluate
from apps.tenancy.models import CostCenter
from apps.usage.models import UsageRecord


@shared_task(name="budgets.evaluate", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def evaluate(budget_id: int) -> int:
    budget = Budget.objects.select_related("organization", "cost_center").filter(pk=budget_id, active=True).first()
    return len(budget_evaluate(budget=budget)) if budget else 0


@shared_task(
    name="budgets.notify_alert",
    autoretry_for=(OSError, ConnectionError),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=10,
)
def notify_alert(alert_id: int) -> bool:
    return alert_send_email(alert_id=alert_id)


@shared_task(name="budgets.evaluate_all")
def evaluate_all() -> int:
    """Every 15 minutes: evaluate every active budget, and send alert emails that never went out."""
    ids = list(Budget.objects.filter(active=True).values_list("id", flat=True))
    for budget_id in ids:
        evaluate.delay(budget_id)
    stale = timezone.now() - timedelta(minutes=5)
    for alert_id in Alert.objects.filter(notified_at__isnull=True, created_at__lt=stale).values_list("id", flat=True):
        notify_alert.delay(alert_id)
    return len(ids)


@shared_task(name="budgets.evaluate_recent")
def evaluate_recent(window_seconds: int = 120) -> int:
    """Every minute: the budgets over cost centers that received usage lately (one evaluation per budget)."""
    since = timezone.now() - timedelta(seconds=window_seconds)
    pairs = UsageRecord.objects.filter(received_at__gte=since).values_list("cost_center_id", flat=True).distinct()
    budget_ids: set[int] = set()
    for cost_center in CostCenter.objects.filter(pk__in=list(pairs)).select_related("organization", "parent"):
        budget_ids.update(
            b.pk for b in budgets_covering(organization=cost_center.organization, cost_center=cost_center)
        )
    for budget_id in sorted(budget_ids):
        evaluate.delay(budget_id)
    return len(budget_ids)
