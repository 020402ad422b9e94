"""Back office view of usage: read-only, with filters and search, cut to the member's cost centers."""

from django.contrib import admin

from apps.tenancy.backoffice import ReadOnlyTenantAdmin
from apps.usage.models import UsageCostChange, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyTenantAdmin):
    cost_center_path = "cost_center_id"
    list_display = (
        "timestamp",
        "request_id",
        "cost_center",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "billing_cost",
        "pricing_status",
        "user_id",
        "feature",
    )
    list_filter = ("pricing_status", "cost_center", "provider", "environment", "model")
    search_fields = ("request_id", "user_id", "feature", "session_id", "model")
    date_hierarchy = "timestamp"
    list_select_related = ("cost_center",)
    show_full_result_count = False
    ordering = ("-timestamp",)


@admin.register(UsageCostChange)
class UsageCostChangeAdmin(ReadOnlyTenantAdmin):
    cost_center_path = "record__cost_center_id"
    list_display = (
        "changed_at",
        "record",
        "reason",
        "old_status",
        "new_status",
        "old_billing_cost",
        "new_billing_cost",
    )
    list_filter = ("reason",)
    date_hierarchy = "changed_at"
    list_select_related = ("record",)
