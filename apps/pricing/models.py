"""Versioned price lists (global or negotiated per organization) and FX rates."""

import re
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.common.models import TenantManager
from apps.tenancy.models import validate_currency

# A model's first price applies to all earlier usage: its versions start at this instant.
PRICING_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

UNIT_PRICE = {"max_digits": 30, "decimal_places": 15}

# A price version's prices, per 1M tokens, and its long-context tier: what every reader and writer of prices lists.
PRICE_FIELDS = (
    "input_price",
    "cached_input_price",
    "cache_write_price",
    "output_price",
    "long_context_threshold",
    "long_input_price",
    "long_cached_input_price",
    "long_cache_write_price",
    "long_output_price",
)


def validate_pattern(value):
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"Not a regular expression: {exc}.") from None


class PriceList(models.Model):
    organization = models.ForeignKey(
        "tenancy.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="price_lists",
        help_text="Empty for a global list; set for an organization's negotiated prices.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="pricelist_unique_name"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(organization__isnull=True), name="pricelist_unique_global_name"
            ),
        ]

    def __str__(self):
        return self.name if self.organization_id is None else f"{self.name} ({self.organization.slug})"

    @property
    def is_global(self) -> bool:
        return self.organization_id is None


class ModelPrice(models.Model):
    """Unit prices per 1M tokens of one model at one provider, from `effective_from` (inclusive)."""

    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="prices")
    organization = models.ForeignKey(
        "tenancy.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+", editable=False
    )
    provider = models.CharField(
        max_length=64, blank=True, help_text="Empty: the price listed under the bare model name."
    )
    model = models.CharField(max_length=200)
    match_pattern = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_pattern],
        help_text="Optional regex (full match) for names such as dated snapshots.",
    )
    currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    input_price = models.DecimalField(**UNIT_PRICE)
    cached_input_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    cache_write_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    output_price = models.DecimalField(**UNIT_PRICE)
    long_context_threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="Above this many input tokens, the whole request is priced at the long prices."
    )
    long_input_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    long_cached_input_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    long_cache_write_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    long_output_price = models.DecimalField(**UNIT_PRICE, null=True, blank=True)
    effective_from = models.DateTimeField(default=PRICING_EPOCH)
    effective_to = models.DateTimeField(null=True, blank=True, help_text="Exclusive; empty while current.")
    source = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "provider", "model", "effective_from"], name="modelprice_unique_version"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=models.F("effective_from")),
                name="modelprice_effective_range",
            ),
            models.CheckConstraint(
                condition=Q(input_price__gte=0) & Q(output_price__gte=0), name="modelprice_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(long_context_threshold__isnull=True)
                | (Q(long_input_price__isnull=False) & Q(long_output_price__isnull=False)),
                name="modelprice_long_tier_complete",
            ),
        ]
        indexes = [models.Index(fields=["organization", "model"], name="modelprice_org_model")]

    def __str__(self):
        name = f"{self.provider}/{self.model}" if self.provider else self.model
        return f"{name} from {self.effective_from:%Y-%m-%d}"


class FxRate(models.Model):
    """How many units of `to_currency` one unit of `from_currency` buys on `date`."""

    date = models.DateField()
    from_currency = models.CharField(max_length=3, validators=[validate_currency])
    to_currency = models.CharField(max_length=3, validators=[validate_currency])
    rate = models.DecimalField(max_digits=24, decimal_places=10)
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "from_currency", "to_currency"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(fields=["from_currency", "to_currency", "date"], name="fxrate_unique_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fxrate_positive"),
        ]

    def __str__(self):
        return f"{self.date} 1 {self.from_currency} = {self.rate} {self.to_currency}"


class PricingRevision(models.Model):
    """One row whose counter moves with every price or FX change, so processes can cache the price book."""

    revision = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "pricing revision"
