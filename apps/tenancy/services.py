"""State changes of tenants: organizations, cost centers, API keys, memberships."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.tenancy.models import UNALLOCATED, ApiKey, ApiKeyScope, CostCenter, Membership, Organization, Role


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def organization_create(
    *,
    slug: str,
    name: str,
    billing_currency: str = "USD",
    timezone_name: str = "UTC",
    strict_attribution: bool = False,
    grace_days: int = 3,
) -> Organization:
    organization = Organization(
        slug=slug,
        name=name,
        billing_currency=billing_currency,
        timezone=timezone_name,
        strict_attribution=strict_attribution,
        grace_days=grace_days,
    )
    organization.full_clean()
    organization.save()
    CostCenter.objects.create(organization=organization, code=UNALLOCATED, name="Unallocated")
    return organization


def cost_center_create(
    *, organization: Organization, code: str, name: str, parent: CostCenter | None = None, active: bool = True
) -> CostCenter:
    if parent is not None and parent.organization_id != organization.id:
        raise ValidationError({"parent": ["Unknown cost center."]})
    cost_center = CostCenter(organization=organization, code=code, name=name, parent=parent, active=active)
    cost_center.full_clean()
    cost_center.save()
    return cost_center


def cost_center_update(*, cost_center: CostCenter, **fields) -> CostCenter:
    if cost_center.code == UNALLOCATED and ("code" in fields and fields["code"] != UNALLOCATED):
        raise ValidationError({"code": ["The unallocated cost center cannot be renamed."]})
    if cost_center.code == UNALLOCATED and fields.get("active") is False:
        raise ValidationError({"active": ["The unallocated cost center cannot be deactivated."]})
    parent = fields.get("parent", cost_center.parent)
    if parent is not None:
        if parent.organization_id != cost_center.organization_id:
            raise ValidationError({"parent": ["Unknown cost center."]})
        ancestor = parent
        while ancestor is not None:
            if ancestor.pk == cost_center.pk:
                raise ValidationError({"parent": ["A cost center cannot be its own ancestor."]})
            ancestor = ancestor.parent
    for field, value in fields.items():
        setattr(cost_center, field, value)
    cost_center.full_clean()
    cost_center.save()
    return cost_center


def cost_center_deactivate(*, cost_center: CostCenter) -> CostCenter:
    """Cost centers are never deleted: usage and invoices keep pointing at them."""
    return cost_center_update(cost_center=cost_center, active=False)


def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    default_cost_center: CostCenter | None = None,
    expires_at: datetime | None = None,
    created_by=None,
) -> tuple[ApiKey, str]:
    """Issue a key; the plaintext is returned once and only its SHA-256 is stored."""
    valid = {choice.value for choice in ApiKeyScope}
    unknown = sorted(set(scopes) - valid)
    if not scopes or unknown:
        raise ValidationError(
            {"scopes": [f"Choose from {', '.join(sorted(valid))}; got {', '.join(unknown) or 'none'}."]}
        )
    if default_cost_center is not None and default_cost_center.organization_id != organization.id:
        raise ValidationError({"default_cost_center": ["Unknown cost center."]})
    raw_key = ApiKey.PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        key_hash=hash_api_key(raw_key),
        last_four=raw_key[-4:],
        scopes=sorted(set(scopes)),
        default_cost_center=default_cost_center,
        expires_at=expires_at,
        created_by=created_by,
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use at most once per resolution window, so a busy key does not write on every request."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
    ).update(last_used_at=now)
    api_key.last_used_at = now


def membership_set(
    *, organization: Organization, user, role: str, cost_centers: list[CostCenter] | None = None
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": [f"Choose from {', '.join(Role.values)}."]})
    membership, _ = Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    if cost_centers is not None:
        if any(cc.organization_id != organization.id for cc in cost_centers):
            raise ValidationError({"cost_centers": ["Unknown cost center."]})
        membership.cost_centers.set(cost_centers)
    return membership
