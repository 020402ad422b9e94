"""Invoices per organization and month, their lines, and every transition they went through."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.common.models import TenantManager

AMOUNT = {"max_digits": 20, "decimal_places": 4}  # rounded to the currency's precision (at most 3 places)
EXACT = {"max_digits": 30, "decimal_places": 12}


class InvoiceState(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    ISSUED = "issued", "Issued"
    VOID = "void", "Void"


class Invoice(models.Model):
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="invoices")
    period = models.DateField(help_text="First day of the billed month, in the organization's time zone.")
    state = models.CharField(max_length=16, choices=InvoiceState.choices, default=InvoiceState.DRAFT)
    currency = models.CharField(max_length=3)
    usage_total = models.DecimalField(**AMOUNT, default=0)
    adjustments_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT, default=0)
    unpriced_requests = models.PositiveIntegerField(default=0, help_text="Usage of the month without a price at close.")
    unconverted_requests = models.PositiveIntegerField(default=0, help_text="Usage of the month without an FX rate.")
    closed_at = models.DateTimeField(help_text="When the month was closed: later cost changes become adjustments.")
    cutoff_at = models.DateTimeField(help_text="Usage received before this instant is on the invoice; later is late.")
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-period", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period"], condition=~Q(state="void"), name="invoice_one_live_per_period"
            ),
        ]

    def __str__(self):
        return f"{self.number} ({self.state})"

    @property
    def number(self) -> str:
        return f"{self.organization.slug.upper()}-{self.period:%Y%m}-{self.pk}"


class LineKind(models.TextChoices):
    USAGE = "usage", "Usage of the month"
    LATE_USAGE = "late_usage", "Late usage of an invoiced month"
    REPRICING = "repricing", "Re-pricing of an invoiced month"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=16, choices=LineKind.choices, default=LineKind.USAGE)
    usage_period = models.DateField(
        help_text="The month the usage belongs to; earlier than the invoice's for adjustments."
    )
    cost_center = models.ForeignKey("tenancy.CostCenter", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    exact_amount = models.DecimalField(**EXACT)
    amount = models.DecimalField(**AMOUNT, help_text="Rounded once, half-even, to the currency's precision.")

    class Meta:
        ordering = ["kind", "usage_period", "cost_center__code", "-amount", "model"]

    def __str__(self):
        return f"{self.cost_center} {self.model} {self.amount}"


class InvoiceLineRecord(models.Model):
    """An adjustment line's link to a late record it bills."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="record_links")
    record = models.ForeignKey("usage.UsageRecord", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["line", "record"], name="linerecord_unique")]


class InvoiceLineChange(models.Model):
    """A re-pricing adjustment line's link to a cost change it bills."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="change_links")
    change = models.ForeignKey("usage.UsageCostChange", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["line", "change"], name="linechange_unique")]


class InvoiceTransition(models.Model):
    """Who moved an invoice from which state to which, when and why."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=InvoiceState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=InvoiceState.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]


class ChargebackEmail(models.Model):
    """One chargeback report sent to one cost-center owner for one issued invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="chargeback_emails")
    cost_center = models.ForeignKey("tenancy.CostCenter", on_delete=models.PROTECT, related_name="+")
    recipient = models.EmailField()
    resend = models.BooleanField(default=False)
    sent_by = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "cost_center", "recipient"],
                condition=Q(resend=False),
                name="chargeback_sent_once",
            )
        ]
