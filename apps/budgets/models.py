"""A budget caps the spend of a cost center (and its children) or of the whole organization per period."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.common.models import TenantManager

AMOUNT = {"max_digits": 20, "decimal_places": 4}


class PeriodKind(models.TextChoices):
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    YEAR = "year", "Year"


class Enforcement(models.TextChoices):
    SOFT = "soft", "Soft: alert only"
    HARD = "hard", "Hard: budgets/check refuses calls once spent"


def default_thresholds():
    return [50, 80, 100]


class Budget(models.Model):
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="budgets")
    cost_center = models.ForeignKey(
        "tenancy.CostCenter",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="budgets",
        help_text="Empty: the whole organization.",
    )
    period_kind = models.CharField(max_length=8, choices=PeriodKind.choices, default=PeriodKind.MONTH)
    amount = models.DecimalField(**AMOUNT, validators=[MinValueValidator(0)], help_text="In the billing currency.")
    thresholds = models.JSONField(default=default_thresholds, help_text="Percent of actual spend that alert.")
    forecast_threshold = models.PositiveSmallIntegerField(
        null=True, blank=True, default=100, help_text="Percent of the run-rate forecast that alerts; empty: none."
    )
    enforcement = models.CharField(max_length=8, choices=Enforcement.choices, default=Enforcement.SOFT)
    recipients = models.JSONField(default=list, blank=True, help_text="Email addresses beside the owners.")
    webhook_url = models.URLField(blank=True, help_text="Slack-compatible incoming webhook; signed with the secret.")
    webhook_secret = models.CharField(max_length=128, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["cost_center__code", "period_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "cost_center", "period_kind"],
                condition=Q(active=True),
                name="budget_one_active_per_scope",
            ),
            models.UniqueConstraint(
                fields=["organization", "period_kind"],
                condition=Q(active=True, cost_center__isnull=True),
                name="budget_one_active_org_wide",
            ),
        ]

    def __str__(self):
        scope = self.cost_center.code if self.cost_center_id else "organization"
        return f"{scope} {self.period_kind} {self.amount}"


class BudgetOverride(models.Model):
    """A temporary amount from an approved change request, in force until a date (inclusive)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="overrides")
    amount = models.DecimalField(**AMOUNT)
    starts_on = models.DateField()
    until = models.DateField()
    request = models.OneToOneField("BudgetChangeRequest", on_delete=models.PROTECT, related_name="override")

    class Meta:
        ordering = ["-starts_on", "-id"]


class AlertKind(models.TextChoices):
    ACTUAL = "actual", "Actual spend"
    FORECAST = "forecast", "Forecast (run rate)"


class Alert(models.Model):
    """Raised once per budget, threshold, kind and period: the unique constraint makes it so under concurrency."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField()
    kind = models.CharField(max_length=8, choices=AlertKind.choices)
    threshold = models.PositiveSmallIntegerField()
    spent = models.DecimalField(**AMOUNT)
    limit = models.DecimalField(**AMOUNT)
    forecast = models.DecimalField(**AMOUNT)
    days_elapsed = models.DecimalField(max_digits=8, decimal_places=3)
    days_in_period = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the alert email went out.")

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "kind", "threshold"], name="alert_once_per_threshold"
            )
        ]

    def __str__(self):
        return f"{self.budget} {self.kind} {self.threshold}% ({self.period_start})"


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class BudgetChangeRequest(models.Model):
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="change_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**AMOUNT, validators=[MinValueValidator(0)])
    until = models.DateField(null=True, blank=True, help_text="Empty: a permanent change.")
    reason = models.TextField()
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]


class RequestTransition(models.Model):
    request = models.ForeignKey(BudgetChangeRequest, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=RequestState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=RequestState.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
