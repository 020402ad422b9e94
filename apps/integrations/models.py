"""Logged, signed outgoing webhooks, and providers' usage imported for reconciliation."""

from django.db import models

from apps.common.models import TenantManager


class WebhookEndpoint(models.Model):
    """Where an organization wants its events (invoice issued, budget alerts) posted, and the signing secret."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    url = models.URLField()
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, help_text='Event names, e.g. ["invoice.issued", "budget.alert"].')
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    def __str__(self):
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed after all retries"


class WebhookDelivery(models.Model):
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=64)
    url = models.URLField()
    secret = models.CharField(max_length=128, help_text="The signing secret of the endpoint at the time of sending.")
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"


class ProviderUsageImport(models.Model):
    """One provider usage or cost export, uploaded to compare with what was ingested."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=64)
    filename = models.CharField(max_length=255)
    imported_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]


class ProviderUsageLine(models.Model):
    """What the provider says one day of one model cost and used."""

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(ProviderUsageImport, on_delete=models.CASCADE, related_name="lines")
    day = models.DateField()
    model = models.CharField(max_length=200)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["day", "model"]
        constraints = [models.UniqueConstraint(fields=["source", "day", "model"], name="provider_line_unique")]
