"""The Celery application; periodic work is declared here in code."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costportal.settings.base")

app = Celery("costportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "close-due-periods": {
        "task": "billing.close_due_periods",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    "retry-due-webhooks": {
        "task": "integrations.retry_due_webhooks",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "evaluate-budgets": {
        "task": "budgets.evaluate_all",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    "evaluate-budgets-after-ingest": {
        "task": "budgets.evaluate_recent",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "refresh-rollups": {
        "task": "usage.refresh_rollups",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "price-unpriced-usage": {
        "task": "usage.price_unpriced_all",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
}
