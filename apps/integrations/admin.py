"""Back office for webhook endpoints, the delivery log and imported provider usage."""

from django.contrib import admin

from apps.integrations.models import ProviderUsageImport, WebhookDelivery, WebhookEndpoint
from apps.tenancy.backoffice import ReadOnlyTenantAdmin, TenantAdmin
from apps.tenancy.models import Role

FINANCE = (Role.ADMIN, Role.FINANCE)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdmin):
    view_roles = change_roles = add_roles = delete_roles = (Role.ADMIN,)
    list_display = ("url", "events", "active", "created_at")
    fields = ("url", "secret", "events", "active")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    view_roles = FINANCE
    list_display = ("created_at", "event", "url", "state", "attempts", "last_status", "last_error", "delivered_at")
    list_filter = ("state", "event")
    exclude = ("secret",)


@admin.register(ProviderUsageImport)
class ProviderUsageImportAdmin(ReadOnlyTenantAdmin):
    view_roles = FINANCE
    list_display = ("created_at", "provider", "filename", "imported_by")
