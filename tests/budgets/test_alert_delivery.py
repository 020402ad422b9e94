"""An alert email that cannot be sent is not lost: it stays unsent and the periodic run sends it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.test import override_settings

from apps.budgets.models import Alert
from apps.budgets.services import budget_create, budget_evaluate
from apps.budgets.tasks import evaluate_all
from tests.budgets.support import spend


@override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=1)
def send_while_mail_is_down(budget, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return budget_evaluate(budget=budget, now=datetime(2026, 4, 30, tzinfo=UTC))


def test_an_alert_email_that_failed_is_sent_by_the_next_periodic_run(org, tree, mailoutbox,
                                                                    django_capture_on_commit_callbacks):
    product, _, _ = tree
    budget = budget_create(organization=org, cost_center=product, amount=Decimal("10"), thresholds=[50],
                           forecast_threshold=None, recipients=["cfo@example.com"])
    spend(org, "6.00", cost_center="cc_product", at="2026-04-10T10:00:00Z")
    [alert] = send_while_mail_is_down(budget, django_capture_on_commit_callbacks)
    assert mailoutbox == [] and Alert.objects.get(pk=alert.pk).notified_at is None
    Alert.objects.filter(pk=alert.pk).update(created_at=alert.created_at - timedelta(minutes=10))
    evaluate_all()
    [email] = mailoutbox
    assert email.to == ["cfo@example.com"] and "50%" in email.subject
    assert Alert.objects.get(pk=alert.pk).notified_at is not None
    evaluate_all()
    assert len(mailoutbox) == 1
