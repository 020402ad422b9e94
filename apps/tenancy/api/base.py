"""Base API views that resolve the organization and scope every query to it.

An API key belongs to one organization; a logged-in member names one with the `X-Organization`
header (or `?organization=`) unless they belong to exactly one. Anything of another organization
answers 404, so that its existence does not leak.
"""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions, generics
from rest_framework.permissions import SAFE_METHODS
from rest_framework.views import APIView

from apps.tenancy.models import ApiKey, Membership, Organization, Role
from apps.tenancy.selectors import membership_visible_cost_center_ids

ORGANIZATION_HEADER = "HTTP_X_ORGANIZATION"


class OrganizationScopedMixin:
    # The scope an API key needs for each kind of request; None refuses API keys outright.
    read_scope: str | None = "read"
    write_scope: str | None = None
    # The roles a logged-in member needs to change things; reads are open to every member.
    write_roles: tuple[str, ...] = (Role.ADMIN, Role.FINANCE)
    # False: changes through this endpoint need an API key (usage ingest), not a browser session.
    session_write = True

    organization: Organization
    membership: Membership | None
    api_key: ApiKey | None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiKey):
            self._resolve_from_key(request, request.auth)
        else:
            self._resolve_from_session(request)

    def _resolve_from_key(self, request, api_key: ApiKey):
        scope = self.read_scope if request.method in SAFE_METHODS else self.write_scope
        if scope is None:
            raise exceptions.PermissionDenied("API keys cannot do this; sign in as a member of the organization.")
        if not api_key.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")
        self.organization, self.membership, self.api_key = api_key.organization, None, api_key

    def _resolve_from_session(self, request):
        user = request.user
        if request.method not in SAFE_METHODS and not self.session_write:
            raise exceptions.PermissionDenied(f"Send this with an API key of scope '{self.write_scope}'.")
        slug = request.META.get(ORGANIZATION_HEADER) or request.query_params.get("organization")
        memberships = Membership.objects.select_related("organization").filter(user=user)
        if slug:
            membership = memberships.filter(organization__slug=slug).first()
            if membership is None and not user.is_superuser:
                raise exceptions.NotFound("Organization not found.")
            organization = membership.organization if membership else Organization.objects.filter(slug=slug).first()
            if organization is None:
                raise exceptions.NotFound("Organization not found.")
        else:
            found = list(memberships[:2])
            if len(found) != 1:
                raise exceptions.ValidationError(
                    {"organization": ["Name the organization with the X-Organization header or ?organization=."]}
                )
            membership, organization = found[0], found[0].organization
        if request.method not in SAFE_METHODS and not user.is_superuser:
            if membership is None or membership.role not in self.write_roles:
                raise exceptions.PermissionDenied("Your role in this organization cannot change this.")
        self.organization, self.membership, self.api_key = organization, membership, None

    def visible_cost_center_ids(self) -> set[int] | None:
        """None: all of the organization's cost centers; otherwise only these (cost-center owners)."""
        if not hasattr(self, "_visible_cost_center_ids"):
            self._visible_cost_center_ids = membership_visible_cost_center_ids(membership=self.membership)
        return self._visible_cost_center_ids


class OrganizationAPIView(OrganizationScopedMixin, APIView):
    pass


class OrganizationGenericAPIView(OrganizationScopedMixin, generics.GenericAPIView):
    """Generic views whose queryset is always the organization's: set `tenant_model`, not `queryset`."""

    tenant_model = None

    def get_queryset(self):
        if self.tenant_model is None or getattr(self, "queryset", None) is not None:
            raise ImproperlyConfigured(f"{type(self).__name__} must set tenant_model and no queryset.")
        if getattr(self, "swagger_fake_view", False):
            return self.tenant_model.objects.none()
        return self.scope_queryset(self.tenant_model.objects.for_org(self.organization))

    def scope_queryset(self, queryset):
        return queryset
