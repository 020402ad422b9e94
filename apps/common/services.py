"""Shared state changes: the audit trail."""

from apps.common.models import AuditEntry


def audit_record(*, organization=None, actor, action: str, object_type: str, object_id="", changes=None) -> AuditEntry:
    return AuditEntry.objects.create(
        organization=organization,
        actor=str(actor) if actor else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=changes or {},
    )
