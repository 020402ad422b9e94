"""Tenants and who may act for them: organizations, memberships, cost centers, API keys."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Now

from apps.common.models import TenantManager
from apps.common.money import is_currency

UNALLOCATED = "unallocated"


def validate_currency(value):
    if not is_currency(value):
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code.")


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone.") from None


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    billing_currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    strict_attribution = models.BooleanField(
        default=False, help_text="Reject usage that names an unknown cost center instead of booking it to unallocated."
    )
    grace_days = models.PositiveSmallIntegerField(
        default=3, help_text="Days after month end before the month is closed."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Role(models.TextChoices):
    ADMIN = "admin", "Organization admin"
    FINANCE = "finance", "Finance"
    OWNER = "owner", "Cost-center owner"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    cost_centers = models.ManyToManyField(
        "CostCenter", blank=True, related_name="owner_memberships", help_text="For owners: the cost centers they own."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user")]

    def __str__(self):
        return f"{self.user} @ {self.organization.slug} ({self.role})"


class CostCenter(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="cost_centers")
    code = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[A-Za-z0-9_.:-]+$", "Use letters, digits and _ . : - only.")],
    )
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="costcenter_unique_code")]

    def __str__(self):
        return self.code


class ApiKeyScope(models.TextChoices):
    INGEST = "ingest", "Ingest usage"
    READ = "read", "Read costs"


class ApiKey(models.Model):
    PREFIX = "cpk_"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    scopes = models.JSONField(default=list)
    default_cost_center = models.ForeignKey(
        CostCenter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(db_default=Now())

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.PREFIX}…{self.last_four})"

    @property
    def display(self) -> str:
        return f"{self.PREFIX}…{self.last_four}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
