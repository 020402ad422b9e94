"""Base classes for tenant-owned models."""

from django.db import models


class TenantQuerySet(models.QuerySet):
    def for_org(self, organization):
        if organization is None:
            raise ValueError("A tenant-owned query needs an organization.")
        return self.filter(organization=organization)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    pass


class AuditEntry(models.Model):
    """Who changed what and when, for prices, budgets, invoices and keys."""

    organization = models.ForeignKey(
        "tenancy.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="User, API key or system task that made the change.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type} {self.object_id}"
