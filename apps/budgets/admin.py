"""Back office for budgets, alerts and the approval queue of budget change requests."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from apps.budgets.models import Alert, Budget, BudgetChangeRequest, RequestState, RequestTransition
from apps.budgets.services import budget_request_decide
from apps.tenancy.backoffice import ReadOnlyTenantAdmin, TenantAdmin
from apps.tenancy.models import Role

FINANCE = (Role.ADMIN, Role.FINANCE)


@admin.register(Budget)
class BudgetAdmin(TenantAdmin):
    cost_center_path = "cost_center_id"
    change_roles = add_roles = FINANCE
    list_display = ("__str__", "cost_center", "period_kind", "amount", "enforcement", "thresholds", "active")
    list_filter = ("period_kind", "enforcement", "active")
    fields = (
        "cost_center",
        "period_kind",
        "amount",
        "thresholds",
        "forecast_threshold",
        "enforcement",
        "recipients",
        "webhook_url",
        "webhook_secret",
        "active",
    )


@admin.register(Alert)
class AlertAdmin(ReadOnlyTenantAdmin):
    cost_center_path = "budget__cost_center_id"
    list_display = ("created_at", "budget", "kind", "threshold", "spent", "limit", "forecast", "period_start")
    list_filter = ("kind",)


class RequestTransitionInline(admin.TabularInline):
    model = RequestTransition
    fields = ("at", "from_state", "to_state", "actor_label", "note")
    readonly_fields = fields
    extra = max_num = 0
    can_delete = False


@admin.register(BudgetChangeRequest)
class BudgetChangeRequestAdmin(TenantAdmin):
    """The approval queue: finance members other than the requester approve or reject."""

    cost_center_path = "budget__cost_center_id"
    list_display = ("created_at", "budget", "amount", "until", "requested_by", "state", "decided_by")
    list_filter = ("state",)
    readonly_fields = (
        "budget",
        "amount",
        "until",
        "reason",
        "requested_by",
        "state",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    fields = readonly_fields
    inlines = (RequestTransitionInline,)
    actions = ("approve", "reject")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._allowed(request, FINANCE):
            actions.pop("approve", None)
            actions.pop("reject", None)
        return actions

    def _decide(self, request, queryset, approve: bool):
        for change in queryset.filter(state=RequestState.PENDING):
            try:
                budget_request_decide(
                    request=change,
                    user=request.user,
                    approve=approve,
                    note="approved in the back office" if approve else "rejected in the back office",
                )
                messages.success(request, f"Request {change.pk} {'approved' if approve else 'rejected'}.")
            except (PermissionDenied, ValidationError) as exc:
                messages.error(request, f"Request {change.pk}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")

    @admin.action(description="Approve (not your own requests)")
    def approve(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        self._decide(request, queryset, False)
