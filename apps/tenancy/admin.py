"""Back office for organizations, members, cost centers and API keys."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from apps.tenancy.backoffice import TenantAdmin, current_organization
from apps.tenancy.models import ApiKey, ApiKeyScope, CostCenter, Membership, Organization, Role
from apps.tenancy.services import api_key_create, api_key_revoke

ADMIN_ONLY = (Role.ADMIN,)
FINANCE_OR_ADMIN = (Role.ADMIN, Role.FINANCE)


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    tenant_path = "pk"
    change_roles = ADMIN_ONLY
    list_display = ("slug", "name", "billing_currency", "timezone", "strict_attribution", "grace_days")
    search_fields = ("slug", "name")

    def get_readonly_fields(self, request, obj=None):
        # The time zone cuts days, months and invoices: it changes with `manage.py change_timezone`.
        if obj is None:
            return ()
        return ("timezone",) if request.user.is_superuser else ("slug", "billing_currency", "timezone")

    def has_add_permission(self, request):
        return request.user.is_superuser


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "role", "cost_centers")

    def clean(self):
        data = super().clean()
        if data.get("role") == Role.OWNER and not data.get("cost_centers"):
            self.add_error("cost_centers", "An owner owns at least one cost center.")
        return data


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    form = MembershipForm
    view_roles = ADMIN_ONLY
    change_roles = add_roles = delete_roles = ADMIN_ONLY
    list_display = ("user", "role", "owned", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email")
    filter_horizontal = ("cost_centers",)
    autocomplete_fields = ()

    @admin.display(description="Owns")
    def owned(self, obj):
        return ", ".join(obj.cost_centers.values_list("code", flat=True)) or "-"


@admin.register(CostCenter)
class CostCenterAdmin(TenantAdmin):
    cost_center_path = "pk"
    change_roles = add_roles = FINANCE_OR_ADMIN
    list_display = ("tree_code", "name", "parent", "active")
    list_filter = ("active",)
    search_fields = ("code", "name")
    fields = ("code", "name", "parent", "active")

    @admin.display(description="Code", ordering="code")
    def tree_code(self, obj):
        depth, node = 0, obj.parent
        while node is not None and depth < 20:
            depth, node = depth + 1, node.parent
        return f"{'— ' * depth}{obj.code}"

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None and obj.code == "unallocated" else ()


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "default_cost_center", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    """Keys are issued here and shown once; afterwards only the last four characters are known."""

    form = ApiKeyForm
    view_roles = FINANCE_OR_ADMIN
    change_roles = add_roles = ADMIN_ONLY
    list_display = ("name", "display", "scopes", "default_cost_center", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "last_four")
    actions = ("revoke",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "scopes", "default_cost_center", "expires_at", "display", "revoked_at", "last_used_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes", "default_cost_center", "expires_at")
        return ("name", "display", "scopes", "default_cost_center", "expires_at", "revoked_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            return
        organization = current_organization(request)
        if organization is None:
            messages.error(request, "Choose an organization first.")
            return
        api_key, raw_key = api_key_create(
            organization=organization,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            default_cost_center=form.cleaned_data.get("default_cost_center"),
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
        )
        obj.pk = api_key.pk
        messages.warning(request, f"Copy the new key now; it is not shown again: {raw_key}")

    def log_addition(self, request, obj, message):
        if obj.pk:
            return super().log_addition(request, ApiKey.objects.get(pk=obj.pk), message)

    def response_add(self, request, obj, post_url_continue=None):
        if not obj.pk:
            return HttpResponseRedirect(reverse("admin:tenancy_apikey_changelist"))
        return super().response_add(request, ApiKey.objects.get(pk=obj.pk), post_url_continue)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        if not self.has_change_permission(request):
            messages.error(request, "Only organization admins revoke keys.")
            return
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked at {timezone.now():%Y-%m-%d %H:%M} UTC.")
