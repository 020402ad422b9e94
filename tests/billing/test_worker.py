"""A real Celery worker on the Redis broker closes a month: the task path production takes."""

import os
import subprocess
import sys
import time
from datetime import date

import pytest
from django.conf import settings
from django.db import connection

from apps.billing.models import Invoice
from apps.billing.tasks import close_period
from costportal.celery import app as celery_app
from tests.billing.conftest import ingest
from tests.factories import usage_payload

BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def worker(transactional_db):
    """A worker process of this checkout, on its own Redis database, using the test database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "costportal.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": BROKER,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    subprocess.run(["redis-cli", "-n", "14", "flushdb"], check=False, capture_output=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "costportal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield process
    finally:
        celery_app.conf.task_always_eager = previous
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output[-3000:])


def send(org):
    with celery_app.connection_for_write(BROKER) as conn:
        close_period.apply_async(args=(org.pk, "2026-03-01"), connection=conn)


@pytest.mark.worker
def test_a_worker_closes_the_month_from_the_broker(org, worker):
    from tests.factories import ModelPriceFactory, PriceListFactory

    ModelPriceFactory(price_list=PriceListFactory(), model="test-model")
    ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
    send(org)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not Invoice.objects.filter(organization=org).exists():
        assert worker.poll() is None, "the worker died"
        time.sleep(0.25)
    invoice = Invoice.objects.get(organization=org)
    assert invoice.period == date(2026, 3, 1) and invoice.lines.count() == 1
    send(org)  # a retry of the same task changes nothing
    time.sleep(2)
    assert Invoice.objects.filter(organization=org).count() == 1
