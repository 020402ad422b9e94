"""The Celery application; periodic work is declared here in code."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costportal.settings.base")

app = Celery("costportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "price-unpriced-usage": {
        "task": "usage.price_unpriced_all",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
}
