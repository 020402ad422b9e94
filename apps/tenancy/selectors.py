"""Reads of tenants: key lookup, cost-center resolution and the cost centers a member may see."""

from django.db import connection
from django.utils import timezone

from apps.tenancy.models import UNALLOCATED, ApiKey, CostCenter, Membership, Organization, Role
from apps.tenancy.services import hash_api_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The live key for a presented secret, or None when unknown, revoked or expired."""
    if not raw_key.startswith(ApiKey.PREFIX) or len(raw_key) > 128:
        return None
    api_key = (
        ApiKey.objects.select_related("organization", "default_cost_center")
        .filter(key_hash=hash_api_key(raw_key))
        .first()
    )
    if api_key is None or api_key.revoked_at is not None:
        return None
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        return None
    return api_key


def cost_center_codes(*, organization: Organization) -> dict[str, int]:
    """Active cost centers by code, for attributing a batch of usage in one query (plain SQL: every ingest reads it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT code, id FROM {CostCenter._meta.db_table} WHERE organization_id = %s AND active",
            [organization.pk],
        )
        return dict(cursor.fetchall())


def cost_center_unallocated(*, organization: Organization) -> CostCenter:
    return CostCenter.objects.for_org(organization).get(code=UNALLOCATED)


def cost_center_descendant_ids(*, organization: Organization, roots: list[int]) -> set[int]:
    """The given cost centers and every one below them in the hierarchy."""
    return set().union(*cost_center_subtrees(organization=organization, roots=roots).values())


def cost_center_subtrees(*, organization: Organization, roots: list[int]) -> dict[int, set[int]]:
    """For each of the given cost centers, it and every one below it in the hierarchy (one query for all)."""
    return cost_center_subtrees_of(CostCenter.objects.for_org(organization).values_list("id", "parent_id"), roots)


def cost_center_subtrees_of(pairs, roots: list[int]) -> dict[int, set[int]]:
    """`cost_center_subtrees` from (id, parent_id) pairs already read."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in pairs:
        children.setdefault(parent_id, []).append(pk)
    subtrees = {}
    for root in roots:
        seen: set[int] = set()
        stack = [root]
        while stack:
            pk = stack.pop()
            if pk not in seen:
                seen.add(pk)
                stack.extend(children.get(pk, ()))
        subtrees[root] = seen
    return subtrees


def membership_get(*, organization: Organization, user) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.for_org(organization).filter(user=user).first()


def membership_visible_cost_center_ids(*, membership: Membership | None) -> set[int] | None:
    """None means every cost center of the organization; owners see what they own and its children."""
    if membership is None or membership.role != Role.OWNER:
        return None
    roots = list(membership.cost_centers.values_list("id", flat=True))
    return cost_center_descendant_ids(organization=membership.organization, roots=roots)


def organizations_of_user(*, user):
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)
