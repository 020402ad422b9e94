"""The back office: Django's admin, scoped to the organization a member works in and to their role.

Members sign in with their account (no staff flag needed); each request works in one organization,
chosen from the user's memberships and kept in the session. Every tenant-owned admin inherits
TenantAdmin, whose queryset, forms, filters and permissions are cut to that organization: another
organization's object answers 404, never a redirect that would confirm it exists. The operator
(superuser) sees every organization.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.tenancy.models import CostCenter, Membership, Organization, Role
from apps.tenancy.selectors import membership_visible_cost_center_ids

SESSION_KEY = "backoffice_organization"


class MemberAuthenticationForm(AdminAuthenticationForm):
    """Any active member of an organization may sign in; the staff flag plays no part."""

    def confirm_login_allowed(self, user):
        if not user.is_active or not (user.is_superuser or Membership.objects.filter(user=user).exists()):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class BackofficeSite(admin.AdminSite):
    site_header = "costportal back office"
    site_title = "costportal"
    index_title = "Back office"
    login_form = MemberAuthenticationForm

    def has_permission(self, request):
        user = request.user
        return (
            user.is_active and user.is_authenticated and (user.is_superuser or current_membership(request) is not None)
        )

    def get_urls(self):
        return [
            path("organization/<slug:slug>/", self.admin_view(self.switch_organization), name="switch-organization"),
            *super().get_urls(),
        ]

    def switch_organization(self, request, slug):
        if not Membership.objects.filter(user=request.user, organization__slug=slug).exists():
            if not (request.user.is_superuser and Organization.objects.filter(slug=slug).exists()):
                raise Http404("No such organization.")
        request.session[SESSION_KEY] = slug
        target = request.GET.get("next") or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("admin:index")
        return HttpResponseRedirect(target)

    def each_context(self, request):
        context = super().each_context(request)
        if request.user.is_authenticated:
            membership = current_membership(request)
            context["current_organization"] = current_organization(request)
            context["current_role"] = membership.get_role_display() if membership else "Operator"
            context["my_organizations"] = (
                Organization.objects.all()
                if request.user.is_superuser
                else Organization.objects.filter(memberships__user=request.user)
            )
        return context


def current_membership(request) -> Membership | None:
    """The membership the request works under: the organization chosen in the session, else the first."""
    if not request.user.is_authenticated:
        return None
    if not hasattr(request, "_backoffice_membership"):
        memberships = (
            Membership.objects.select_related("organization").filter(user=request.user).order_by("organization__slug")
        )
        slug = request.session.get(SESSION_KEY)
        chosen = memberships.filter(organization__slug=slug).first() if slug else None
        request._backoffice_membership = chosen or memberships.first()
    return request._backoffice_membership


def current_organization(request) -> Organization | None:
    membership = current_membership(request)
    if membership is not None:
        return membership.organization
    if request.user.is_superuser and request.session.get(SESSION_KEY):
        return Organization.objects.filter(slug=request.session[SESSION_KEY]).first()
    return None


def role_of(request) -> str | None:
    membership = current_membership(request)
    return membership.role if membership else None


ALL_ROLES = (Role.ADMIN, Role.FINANCE, Role.OWNER, Role.VIEWER)


class TenantAdmin(admin.ModelAdmin):
    """A model admin cut to the request's organization and role.

    - `tenant_path`: the lookup from the model to its organization (None: not tenant-owned).
    - `cost_center_path`: the lookup to a cost center, so owners see only theirs.
    - `view_roles` / `change_roles` / `add_roles` / `delete_roles`: who may do what.
    - `global_rows`: rows without organization (global price lists) visible read-only to members.
    """

    tenant_path: str | None = "organization"
    cost_center_path: str | None = None
    view_roles: tuple = ALL_ROLES
    change_roles: tuple = ()
    add_roles: tuple = ()
    delete_roles: tuple = ()
    global_rows = False

    # -- scoping -------------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            organization = current_organization(request)
            if organization is not None and self.tenant_path:
                return queryset.filter(self._org_condition(organization))
            return queryset
        organization = current_organization(request)
        if organization is None or not self.tenant_path:
            return queryset.none() if self.tenant_path else queryset
        queryset = queryset.filter(self._org_condition(organization))
        visible = membership_visible_cost_center_ids(membership=current_membership(request))
        if visible is not None and self.cost_center_path:
            queryset = queryset.filter(**{f"{self.cost_center_path}__in": visible})
        return queryset

    def _org_condition(self, organization):
        condition = Q(**{self.tenant_path: organization.pk})
        if self.global_rows:
            condition |= Q(**{f"{self.tenant_path}__isnull": True})
        return condition

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("Not found.")
        return obj

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404("Not found.")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        organization = current_organization(request)
        related = db_field.related_model
        if organization is not None:
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(pk=organization.pk)
            elif hasattr(related, "organization"):
                kwargs["queryset"] = related._default_manager.filter(organization=organization)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        organization = current_organization(request)
        if organization is not None and hasattr(db_field.related_model, "organization"):
            kwargs["queryset"] = db_field.related_model._default_manager.filter(organization=organization)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        """Relation filters list only what the scoped queryset holds, never another tenant's names."""
        scoped = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and self._is_relation(item):
                scoped.append((item, RelatedOnlyFieldListFilter))
            else:
                scoped.append(item)
        return scoped

    def _is_relation(self, name: str) -> bool:
        model = self.model
        for part in name.split("__"):
            field = model._meta.get_field(part)
            if not field.is_relation:
                return False
            model = field.related_model
        return True

    def save_model(self, request, obj, form, change):
        if not change and self.tenant_path == "organization" and getattr(obj, "organization_id", None) is None:
            obj.organization = current_organization(request)
        super().save_model(request, obj, form, change)

    # -- permissions -----------------------------------------------------------------------------

    def _allowed(self, request, roles, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if role_of(request) not in roles:
            return False
        if obj is not None and self.tenant_path:
            return self.get_queryset(request).filter(pk=obj.pk).exists()
        return True

    def has_module_permission(self, request):
        return self._allowed(request, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, self.view_roles, obj) or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is not None and self.global_rows and getattr(obj, "organization_id", 1) is None:
            return request.user.is_superuser
        return self._allowed(request, self.change_roles, obj)

    def has_add_permission(self, request):
        return self._allowed(request, self.add_roles)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, self.delete_roles, obj)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows written only by the product (usage, audit, alerts): listed and read, never edited here."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def visible_cost_centers(request):
    organization = current_organization(request)
    queryset = CostCenter.objects.for_org(organization) if organization else CostCenter.objects.none()
    visible = membership_visible_cost_center_ids(membership=current_membership(request))
    return queryset if visible is None else queryset.filter(pk__in=visible)
