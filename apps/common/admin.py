"""Back office view of the audit trail."""

from django.contrib import admin

from apps.common.models import AuditEntry
from apps.tenancy.backoffice import ReadOnlyTenantAdmin
from apps.tenancy.models import Role


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyTenantAdmin):
    view_roles = (Role.ADMIN, Role.FINANCE)
    list_display = ("created_at", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor", "object_id")
    readonly_fields = ("created_at", "actor", "action", "object_type", "object_id", "changes")
