"""Budget changes and evaluation: alerts raised once per threshold, change requests approved by finance."""

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.budgets.models import (
    Alert,
    AlertKind,
    Budget,
    BudgetChangeRequest,
    BudgetOverride,
    RequestState,
    RequestTransition,
)
from apps.budgets.selectors import BudgetStatus, budget_status, period_window
from apps.common.services import audit_record
from apps.integrations.webhooks import webhook_broadcast, webhook_send
from apps.tenancy.models import CostCenter, Membership, Organization, Role
from apps.tenancy.selectors import membership_get, membership_visible_cost_center_ids

logger = logging.getLogger(__name__)


def budget_create(
    *,
    organization: Organization,
    amount: Decimal,
    cost_center: CostCenter | None = None,
    period_kind: str = "month",
    thresholds: list[int] | None = None,
    forecast_threshold: int | None = 100,
    enforcement: str = "soft",
    recipients: list[str] | None = None,
    webhook_url: str = "",
    webhook_secret: str = "",
    actor=None,
) -> Budget:
    if cost_center is not None and cost_center.organization_id != organization.pk:
        raise ValidationError({"cost_center": ["Unknown cost center."]})
    thresholds = sorted(set(thresholds if thresholds is not None else [50, 80, 100]))
    if any(not isinstance(t, int) or not 1 <= t <= 1000 for t in thresholds):
        raise ValidationError({"thresholds": ["Whole percentages between 1 and 1000."]})
    if webhook_url and not webhook_secret:
        raise ValidationError({"webhook_secret": ["A webhook needs a secret to sign its deliveries."]})
    budget = Budget(
        organization=organization,
        cost_center=cost_center,
        period_kind=period_kind,
        amount=amount,
        thresholds=thresholds,
        forecast_threshold=forecast_threshold,
        enforcement=enforcement,
        recipients=recipients or [],
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    budget.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise ValidationError({"cost_center": ["An active budget for this scope and period already exists."]}) from None
    audit_record(
        organization=organization,
        actor=actor,
        action="budget.created",
        object_type="Budget",
        object_id=budget.pk,
        changes={"amount": str(amount), "period": period_kind},
    )
    return budget


def budget_evaluate(*, budget: Budget, now: datetime | None = None) -> list[Alert]:
    """Raise the alerts whose thresholds the spend (or its forecast) has crossed, each once per period.

    Once is enforced by a unique constraint, so evaluations racing each other raise each alert once.
    """
    status = budget_status(budget=budget, now=now)
    if status.limit <= 0:
        return []
    crossed = [(AlertKind.ACTUAL, t) for t in budget.thresholds if status.spent >= status.limit * t / 100]
    if budget.forecast_threshold and status.forecast >= status.limit * budget.forecast_threshold / 100:
        crossed.append((AlertKind.FORECAST, budget.forecast_threshold))
    raised = []
    for kind, threshold in crossed:
        with transaction.atomic():
            alert, created = Alert.objects.get_or_create(
                budget=budget,
                period_start=status.period_start,
                kind=kind,
                threshold=threshold,
                defaults={
                    "organization": budget.organization,
                    "spent": status.spent,
                    "limit": status.limit,
                    "forecast": status.forecast,
                    "days_elapsed": status.days_elapsed,
                    "days_in_period": status.days_in_period,
                },
            )
            if created:
                _notify(alert, status)
                raised.append(alert)
    return raised


def _recipients(budget: Budget) -> list[str]:
    emails = list(budget.recipients)
    if budget.cost_center_id is not None:
        owners = Membership.objects.for_org(budget.organization).filter(
            role=Role.OWNER, cost_centers=budget.cost_center_id
        )
    else:
        owners = Membership.objects.for_org(budget.organization).filter(role__in=(Role.FINANCE, Role.ADMIN))
    emails += [m.user.email for m in owners.select_related("user") if m.user.email]
    return sorted(set(emails))


def alert_explanation(alert: Alert, status: BudgetStatus) -> dict:
    budget = alert.budget
    scope = budget.cost_center.code if budget.cost_center_id else budget.organization.name
    what = "forecast" if alert.kind == AlertKind.FORECAST else "spend"
    return {
        "scope": scope,
        "headline": f"{scope}: {what} reached {alert.threshold}% of its {budget.period_kind} budget",
        "alert": alert,
        "status": status,
        "currency": status.currency,
        "forecast_formula": (
            f"forecast = spent so far / days elapsed x days in period = {status.spent:.2f} / "
            f"{max(status.days_elapsed, Decimal(1)):.2f} x {status.days_in_period} = {status.forecast:.2f}"
        ),
    }


def _notify(alert: Alert, status: BudgetStatus) -> None:
    budget = alert.budget
    context = alert_explanation(alert, status)
    alert_id = alert.pk
    transaction.on_commit(lambda: _enqueue_email(alert_id))
    payload = {
        "text": f"{context['headline']}: {status.spent:.2f} of {status.limit:.2f} {status.currency} spent; "
        f"{context['forecast_formula']}.",
        "event": "budget.alert",
        "alert": {
            "budget_id": budget.pk,
            "cost_center": budget.cost_center.code if budget.cost_center_id else None,
            "kind": alert.kind,
            "threshold": alert.threshold,
            "period_start": status.period_start.isoformat(),
            "spent": f"{status.spent:.4f}",
            "limit": f"{status.limit:.4f}",
            "forecast": f"{status.forecast:.4f}",
            "currency": status.currency,
        },
    }
    if budget.webhook_url:
        webhook_send(
            organization=budget.organization,
            event="budget.alert",
            url=budget.webhook_url,
            secret=budget.webhook_secret,
            payload=payload,
        )
    webhook_broadcast(organization=budget.organization, event="budget.alert", payload=payload)


def _enqueue_email(alert_id: int) -> None:
    from apps.budgets.tasks import notify_alert

    try:
        notify_alert.delay(alert_id)
    except Exception:  # the broker is down: the periodic evaluation sends unsent alert emails
        logger.warning("could not enqueue the email of alert %s", alert_id, exc_info=True)


def alert_send_email(*, alert_id: int) -> bool:
    """Send an alert's email once; a failure raises so that the task retries, and nothing is marked sent."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("budget__organization", "budget__cost_center")
            .filter(pk=alert_id, notified_at__isnull=True)
            .first()
        )
        if alert is None:
            return False
        start, end = period_window(period_kind=alert.budget.period_kind, day=alert.period_start)
        status = BudgetStatus(
            budget=alert.budget,
            currency=alert.budget.organization.billing_currency,
            period_start=start,
            period_end=end - timedelta(days=1),
            spent=alert.spent,
            limit=alert.limit,
            days_elapsed=alert.days_elapsed,
            days_in_period=alert.days_in_period,
        )
        context = alert_explanation(alert, status)
        recipients = _recipients(alert.budget)
        if recipients:
            send_mail(
                f"[costportal] {context['headline']}",
                render_to_string("budgets/alert_email.txt", context),
                settings.DEFAULT_FROM_EMAIL,
                recipients,
                html_message=render_to_string("budgets/alert_email.html", context),
            )
        alert.notified_at = timezone.now()
        alert.save(update_fields=["notified_at"])
    return True


def _request_transition(request: BudgetChangeRequest, *, from_state: str, to_state: str, actor, note=""):
    RequestTransition.objects.create(
        request=request, from_state=from_state, to_state=to_state, actor=actor, actor_label=str(actor), note=note
    )
    audit_record(
        organization=request.organization,
        actor=actor,
        action=f"budget_request.{to_state}",
        object_type="BudgetChangeRequest",
        object_id=request.pk,
        changes={"from": from_state, "to": to_state, "note": note},
    )


@transaction.atomic
def budget_request_change(
    *, budget: Budget, user, amount: Decimal, reason: str, until: date | None = None
) -> BudgetChangeRequest:
    """An owner of the budget's cost center (or finance) asks for another amount, permanently or until a date."""
    membership = membership_get(organization=budget.organization, user=user)
    if membership is None:
        raise PermissionDenied("Only members of the organization can ask for a budget change.")
    if membership.role == Role.OWNER:
        visible = membership_visible_cost_center_ids(membership=membership)
        if budget.cost_center_id is None or budget.cost_center_id not in visible:
            raise PermissionDenied("Owners ask for changes of their own cost centers' budgets.")
    elif membership.role not in (Role.FINANCE, Role.ADMIN):
        raise PermissionDenied("Viewers cannot ask for budget changes.")
    if amount is None or amount < 0:
        raise ValidationError({"amount": ["A non-negative amount in the billing currency."]})
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Say why the budget should change."]})
    today = timezone.now().astimezone(budget.organization.tz).date()
    if until is not None and until < today:
        raise ValidationError({"until": ["Must be today or later."]})
    request = BudgetChangeRequest.objects.create(
        organization=budget.organization,
        budget=budget,
        requested_by=user,
        amount=amount,
        until=until,
        reason=reason.strip(),
    )
    _request_transition(request, from_state="", to_state=RequestState.PENDING, actor=user, note=reason.strip())
    return request


@transaction.atomic
def budget_request_decide(*, request: BudgetChangeRequest, user, approve: bool, note: str = "") -> BudgetChangeRequest:
    """A finance member other than the requester approves or rejects; approval changes the budget."""
    request = (
        BudgetChangeRequest.objects.select_for_update().select_related("budget", "organization").get(pk=request.pk)
    )
    membership = membership_get(organization=request.organization, user=user)
    if not user.is_superuser and (membership is None or membership.role not in (Role.FINANCE, Role.ADMIN)):
        raise PermissionDenied("Only finance members decide budget change requests.")
    if request.requested_by_id == user.pk:
        raise PermissionDenied("Four eyes: the requester cannot decide their own request.")
    if request.state != RequestState.PENDING:
        raise ValidationError({"state": [f"This request is {request.state} already."]})
    to_state = RequestState.APPROVED if approve else RequestState.REJECTED
    request.state, request.decided_by, request.decided_at, request.decision_note = to_state, user, timezone.now(), note
    request.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    if approve:
        budget = Budget.objects.select_for_update().get(pk=request.budget_id)
        if request.until is None:
            old = budget.amount
            budget.amount = request.amount
            budget.save(update_fields=["amount"])
            audit_record(
                organization=request.organization,
                actor=user,
                action="budget.amount_changed",
                object_type="Budget",
                object_id=budget.pk,
                changes={"from": str(old), "to": str(request.amount), "request": request.pk},
            )
        else:
            today = timezone.now().astimezone(request.organization.tz).date()
            BudgetOverride.objects.create(
                budget=budget, amount=request.amount, starts_on=today, until=request.until, request=request
            )
    _request_transition(request, from_state=RequestState.PENDING, to_state=to_state, actor=user, note=note)
    return request


@transaction.atomic
def budget_request_cancel(*, request: BudgetChangeRequest, user, note: str = "") -> BudgetChangeRequest:
    request = BudgetChangeRequest.objects.select_for_update().get(pk=request.pk)
    if request.requested_by_id != user.pk:
        raise PermissionDenied("Only the requester can cancel a request.")
    if request.state != RequestState.PENDING:
        raise ValidationError({"state": [f"This request is {request.state} already."]})
    request.state = RequestState.CANCELLED
    request.save(update_fields=["state"])
    _request_transition(
        request, from_state=RequestState.PENDING, to_state=RequestState.CANCELLED, actor=user, note=note
    )
    return request
