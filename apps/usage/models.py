"""One priced LLM call per row; keys lead with the organization so the table can be sharded by tenant."""

from django.db import models
from django.db.models import Q

from apps.common.models import TenantManager


class PricingStatus(models.TextChoices):
    PRICED = "priced", "Priced"
    UNPRICED = "unpriced", "No price for this model"
    NO_FX_RATE = "no_fx_rate", "No FX rate to the billing currency"


class UsageRecord(models.Model):
    # Ingest resolves every reference from the organization's own data; the database keeps the tenant and
    # cost-center constraints, and no single-column index the composite (organization, ...) ones cover.
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    request_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200)

    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)

    cost_center = models.ForeignKey("tenancy.CostCenter", on_delete=models.PROTECT, related_name="+", db_index=False)
    unknown_cost_center = models.CharField(
        max_length=64, blank=True, help_text="The code the caller sent when no such cost center exists."
    )
    user_id = models.CharField(max_length=256, blank=True)
    session_id = models.CharField(max_length=256, blank=True)
    feature = models.CharField(max_length=256, blank=True)
    feature_flag = models.CharField(max_length=256, blank=True)
    environment = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, blank=True)
    api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )

    reported_cost = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    reported_currency = models.CharField(max_length=3, blank=True)

    pricing_status = models.CharField(max_length=16, choices=PricingStatus.choices)
    price = models.ForeignKey(
        "pricing.ModelPrice", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    cost = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True, help_text="In the price's currency."
    )
    cost_currency = models.CharField(max_length=3, blank=True)
    fx_rate = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    billing_cost = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True, help_text="In the organization's billing currency."
    )
    priced_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "request_id"], name="usage_unique_request"),
            models.CheckConstraint(
                condition=Q(input_tokens__gte=0)
                & Q(output_tokens__gte=0)
                & Q(cache_read_tokens__gte=0)
                & Q(cache_write_tokens__gte=0)
                & Q(reasoning_tokens__gte=0),
                name="usage_tokens_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(pricing_status="priced", billing_cost__isnull=False) | ~Q(pricing_status="priced"),
                name="usage_priced_has_cost",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "timestamp"], name="usage_org_time"),
            models.Index(fields=["organization", "cost_center", "timestamp"], name="usage_org_cc_time"),
            models.Index(
                fields=["organization", "timestamp"], condition=~Q(pricing_status="priced"), name="usage_org_not_priced"
            ),
        ]

    def __str__(self):
        return f"{self.request_id} {self.model} {self.timestamp:%Y-%m-%d %H:%M}"


class CostChangeReason(models.TextChoices):
    PRICED = "priced", "Priced after waiting for a price or rate"
    RERATED = "rerated", "Re-rated after a price change"
    RECONVERTED = "reconverted", "Converted again after an FX rate change"


class UsageCostChange(models.Model):
    """What a stored record cost in the billing currency before and after a re-pricing.

    Billing turns the changes of months already invoiced into adjustment lines on the next invoice.
    """

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    record = models.ForeignKey(UsageRecord, on_delete=models.CASCADE, related_name="cost_changes")
    reason = models.CharField(max_length=16, choices=CostChangeReason.choices)
    old_status = models.CharField(max_length=16, choices=PricingStatus.choices)
    new_status = models.CharField(max_length=16, choices=PricingStatus.choices)
    old_billing_cost = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    new_billing_cost = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    changed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        indexes = [models.Index(fields=["organization", "changed_at"], name="usage_change_org_time")]

    def __str__(self):
        return f"{self.record_id}: {self.old_billing_cost} -> {self.new_billing_cost} ({self.reason})"

    @property
    def delta(self):
        return (self.new_billing_cost or 0) - (self.old_billing_cost or 0)


class UsageDirtyDay(models.Model):
    """A day (in the organization's time zone) whose usage changed since its rollups were computed."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    objects = TenantManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day"], name="dirtyday_unique")]


class _DailyMeasures(models.Model):
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    cost_center = models.ForeignKey("tenancy.CostCenter", on_delete=models.CASCADE, related_name="+")
    requests = models.BigIntegerField()
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    cost = models.DecimalField(max_digits=30, decimal_places=12, help_text="Priced usage, billing currency.")
    unpriced_requests = models.BigIntegerField()
    unconverted_requests = models.BigIntegerField()
    latency_sum = models.BigIntegerField()
    latency_count = models.BigIntegerField()
    increment = models.BooleanField(
        default=False,
        help_text="Added by ingest beside the day's totals and merged into them within a minute; summed alike.",
    )

    objects = TenantManager()

    class Meta:
        abstract = True


class UsageDailyByCostCenter(_DailyMeasures):
    """Daily totals per cost center: totals, days, cost centers and budgets (a few rows a day)."""

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day"], name="daily_cc_org_day"),
            models.Index(fields=["organization", "day"], condition=Q(increment=True), name="daily_cc_increments"),
        ]


class UsageDailyByModel(_DailyMeasures):
    """Daily totals per cost center, provider, model, environment and feature: what most cost questions
    group or filter by (a few hundred rows a day)."""

    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200)
    environment = models.CharField(max_length=64, blank=True)
    feature = models.CharField(max_length=256, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day"], name="daily_model_org_day"),
            models.Index(fields=["organization", "day"], condition=Q(increment=True), name="daily_model_increments"),
        ]


class UsageDailyByUser(_DailyMeasures):
    """Daily totals per cost center and user: the top users."""

    user_id = models.CharField(max_length=256, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day"], name="daily_user_org_day"),
            models.Index(fields=["organization", "day"], condition=Q(increment=True), name="daily_user_increments"),
        ]
