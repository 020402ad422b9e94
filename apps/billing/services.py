"""Month close and the life of an invoice: draft, approved by a second finance member, issued, void."""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from apps.billing.models import (
    Invoice,
    InvoiceLine,
    InvoiceLineChange,
    InvoiceLineRecord,
    InvoiceState,
    InvoiceTransition,
    LineKind,
)
from apps.billing.periods import month_start, next_month, period_bounds
from apps.common.locks import BILLING, advisory_xact_lock
from apps.common.money import round_money
from apps.common.services import audit_record
from apps.integrations.webhooks import webhook_broadcast
from apps.tenancy.models import Organization, Role
from apps.tenancy.selectors import membership_get
from apps.usage.models import PricingStatus, UsageCostChange, UsageRecord

logger = logging.getLogger(__name__)

# Ingest transactions finish well within this; usage received later than (close - settle) is late usage.
INGEST_SETTLE = timedelta(minutes=5)


def _live_invoices(organization):
    return Invoice.objects.for_org(organization).exclude(state=InvoiceState.VOID)


def _transition(invoice: Invoice, *, from_state: str, to_state: str, actor=None, reason: str = "") -> None:
    InvoiceTransition.objects.create(
        invoice=invoice,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        actor_label=str(actor) if actor else "system",
        reason=reason,
    )
    audit_record(
        organization=invoice.organization,
        actor=actor,
        action=f"invoice.{to_state}",
        object_type="Invoice",
        object_id=invoice.pk,
        changes={"from": from_state, "to": to_state, "reason": reason},
    )


def invoice_close(*, organization: Organization, period: date, actor=None, now: datetime | None = None) -> Invoice:
    """Close a month into one draft invoice; closing it again, even concurrently, returns the same invoice.

    Usage lines: one per cost center x provider x model, of the month's priced usage received before the
    cutoff. Adjustment lines: usage of earlier invoiced months that arrived late, and cost changes (re-rating,
    prices or FX rates that arrived later) of usage already billed, each linked to the records or changes
    it bills. Everything happens in one transaction: a worker killed midway leaves no invoice at all.
    """
    period = month_start(period)
    now = now or timezone.now()
    start, end = period_bounds(organization=organization, period=period)
    if end > now:
        raise ValidationError({"period": [f"{period:%Y-%m} has not ended yet in {organization.timezone}."]})
    with transaction.atomic():
        advisory_xact_lock(BILLING, organization.pk)
        existing = _live_invoices(organization).filter(period=period).first()
        if existing is not None:
            return existing
        invoice = Invoice.objects.create(
            organization=organization,
            period=period,
            currency=organization.billing_currency,
            closed_at=now,
            cutoff_at=now - INGEST_SETTLE,
            prepared_by=actor if getattr(actor, "pk", None) else None,
        )
        _add_usage_lines(invoice, start, end)
        for earlier in _live_invoices(organization).filter(period__lt=period).order_by("period"):
            _add_late_usage_lines(invoice, earlier)
        _add_repricing_lines(invoice)
        _set_totals(invoice)
        _transition(invoice, from_state="", to_state=InvoiceState.DRAFT, actor=actor, reason="month closed")
    return invoice


def _line_amounts(invoice: Invoice, exact: Decimal) -> dict:
    return {"exact_amount": exact, "amount": round_money(exact, invoice.currency)}


def _add_usage_lines(invoice: Invoice, start: datetime, end: datetime) -> None:
    month = UsageRecord.objects.for_org(invoice.organization).filter(
        timestamp__gte=start, timestamp__lt=end, received_at__lt=invoice.cutoff_at
    )
    rows = (
        month.filter(pricing_status=PricingStatus.PRICED)
        .values("cost_center_id", "provider", "model")
        .annotate(exact=Sum("billing_cost"), inp=Sum("input_tokens"), out=Sum("output_tokens"), n=Count("id"))
        .order_by("cost_center_id", "provider", "model")
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            kind=LineKind.USAGE,
            usage_period=invoice.period,
            cost_center_id=row["cost_center_id"],
            provider=row["provider"],
            model=row["model"],
            input_tokens=row["inp"],
            output_tokens=row["out"],
            requests=row["n"],
            **_line_amounts(invoice, row["exact"]),
        )
        for row in rows
    )
    waiting = month.exclude(pricing_status=PricingStatus.PRICED).aggregate(
        unpriced=Count("id", filter=Q(pricing_status=PricingStatus.UNPRICED)),
        unconverted=Count("id", filter=Q(pricing_status=PricingStatus.NO_FX_RATE)),
    )
    invoice.unpriced_requests, invoice.unconverted_requests = waiting["unpriced"], waiting["unconverted"]


def _billed_by_live_line(field: str):
    """Records (or changes) already linked to a line of an invoice that is not void."""
    model = InvoiceLineRecord if field == "record" else InvoiceLineChange
    return Exists(model.objects.filter(**{field: OuterRef("pk")}).exclude(line__invoice__state=InvoiceState.VOID))


def _add_late_usage_lines(invoice: Invoice, earlier: Invoice) -> None:
    start, end = period_bounds(organization=invoice.organization, period=earlier.period)
    late = (
        UsageRecord.objects.for_org(invoice.organization)
        .filter(timestamp__gte=start, timestamp__lt=end, pricing_status=PricingStatus.PRICED)
        .filter(received_at__gte=earlier.cutoff_at, received_at__lt=invoice.cutoff_at)
        .exclude(_billed_by_live_line("record"))
        .values_list("id", "cost_center_id", "provider", "model", "billing_cost", "input_tokens", "output_tokens")
    )
    groups: dict[tuple, list] = defaultdict(list)
    for record_id, cost_center_id, provider, model, cost, inp, out in late.iterator(chunk_size=5000):
        groups[(cost_center_id, provider, model)].append((record_id, cost, inp, out))
    for (cost_center_id, provider, model), records in sorted(groups.items()):
        line = InvoiceLine.objects.create(
            invoice=invoice,
            kind=LineKind.LATE_USAGE,
            usage_period=earlier.period,
            cost_center_id=cost_center_id,
            provider=provider,
            model=model,
            input_tokens=sum(r[2] for r in records),
            output_tokens=sum(r[3] for r in records),
            requests=len(records),
            **_line_amounts(invoice, sum((r[1] for r in records), Decimal(0))),
        )
        InvoiceLineRecord.objects.bulk_create(InvoiceLineRecord(line=line, record_id=r[0]) for r in records)


def _add_repricing_lines(invoice: Invoice) -> None:
    """Cost changes of usage that an earlier invoice already billed, made after that invoice was closed."""
    organization = invoice.organization
    earlier = list(_live_invoices(organization).filter(period__lt=invoice.period))
    if not earlier:
        return
    changes = UsageCostChange.objects.for_org(organization).filter(changed_at__lt=invoice.closed_at)
    billed_by_invoice = Q()
    for other in earlier:
        start, end = period_bounds(organization=organization, period=other.period)
        billed_by_invoice |= Q(
            record__timestamp__gte=start,
            record__timestamp__lt=end,
            record__received_at__lt=other.cutoff_at,
            changed_at__gt=other.closed_at,
        )
    billed_late = Exists(
        InvoiceLineRecord.objects.filter(record=OuterRef("record"), line__invoice__closed_at__lt=OuterRef("changed_at"))
        .exclude(line__invoice__state=InvoiceState.VOID)
        .exclude(line__invoice=invoice)
    )
    rows = (
        changes.filter(billed_by_invoice | Q(billed_late))
        .exclude(_billed_by_live_line("change"))
        .annotate(
            cost_center_id=F("record__cost_center_id"),
            provider=F("record__provider"),
            model=F("record__model"),
        )
        .values_list(
            "id",
            "cost_center_id",
            "provider",
            "model",
            "old_billing_cost",
            "new_billing_cost",
            "record_id",
            "record__timestamp",
        )
    )
    groups: dict[tuple, list] = defaultdict(list)
    tz = organization.tz
    for change_id, cost_center_id, provider, model, old, new, record_id, moment in rows.iterator(chunk_size=5000):
        usage_period = month_start(moment.astimezone(tz).date())
        groups[(usage_period, cost_center_id, provider, model)].append((change_id, (new or 0) - (old or 0), record_id))
    for (usage_period, cost_center_id, provider, model), items in sorted(groups.items()):
        line = InvoiceLine.objects.create(
            invoice=invoice,
            kind=LineKind.REPRICING,
            usage_period=usage_period,
            cost_center_id=cost_center_id,
            provider=provider,
            model=model,
            requests=len({i[2] for i in items}),
            **_line_amounts(invoice, sum((i[1] for i in items), Decimal(0))),
        )
        InvoiceLineChange.objects.bulk_create(InvoiceLineChange(line=line, change_id=i[0]) for i in items)


def _set_totals(invoice: Invoice) -> None:
    sums = invoice.lines.aggregate(
        usage=Sum("amount", filter=Q(kind=LineKind.USAGE)), adjustments=Sum("amount", filter=~Q(kind=LineKind.USAGE))
    )
    invoice.usage_total = sums["usage"] or Decimal(0)
    invoice.adjustments_total = sums["adjustments"] or Decimal(0)
    invoice.total = invoice.usage_total + invoice.adjustments_total
    invoice.save(
        update_fields=["usage_total", "adjustments_total", "total", "unpriced_requests", "unconverted_requests"]
    )


def _require_finance(invoice: Invoice, user) -> None:
    if user is None or not user.is_authenticated:
        raise PermissionDenied("A finance member of the organization must do this.")
    if user.is_superuser:
        return
    membership = membership_get(organization=invoice.organization, user=user)
    if membership is None or membership.role not in (Role.FINANCE, Role.ADMIN):
        raise PermissionDenied("Only finance members of the organization can do this.")


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)


@transaction.atomic
def invoice_approve(*, invoice: Invoice, user) -> Invoice:
    """Four eyes: a finance member other than the one who prepared the draft approves it."""
    invoice = _locked(invoice)
    _require_finance(invoice, user)
    if invoice.state != InvoiceState.DRAFT:
        raise ValidationError({"state": [f"Only a draft can be approved; this invoice is {invoice.state}."]})
    if invoice.prepared_by_id is not None and invoice.prepared_by_id == user.pk:
        raise PermissionDenied("Four eyes: the member who prepared this invoice cannot approve it.")
    invoice.state, invoice.approved_by, invoice.approved_at = InvoiceState.APPROVED, user, timezone.now()
    invoice.save(update_fields=["state", "approved_by", "approved_at"])
    _transition(invoice, from_state=InvoiceState.DRAFT, to_state=InvoiceState.APPROVED, actor=user)
    return invoice


@transaction.atomic
def invoice_issue(*, invoice: Invoice, user) -> Invoice:
    """Issue an approved invoice; each cost-center owner then gets their chargeback report, once."""
    invoice = _locked(invoice)
    _require_finance(invoice, user)
    if invoice.state != InvoiceState.APPROVED:
        raise ValidationError({"state": [f"Only an approved invoice can be issued; this invoice is {invoice.state}."]})
    invoice.state, invoice.issued_at = InvoiceState.ISSUED, timezone.now()
    invoice.save(update_fields=["state", "issued_at"])
    _transition(invoice, from_state=InvoiceState.APPROVED, to_state=InvoiceState.ISSUED, actor=user)
    from apps.billing.tasks import send_chargebacks

    invoice_id = invoice.pk
    transaction.on_commit(lambda: _enqueue(send_chargebacks, invoice_id))
    webhook_broadcast(
        organization=invoice.organization,
        event="invoice.issued",
        payload={
            "text": f"Invoice {invoice.number} issued: {invoice.total} {invoice.currency} for {invoice.period:%B %Y}.",
            "event": "invoice.issued",
            "invoice": {
                "id": invoice.pk,
                "number": invoice.number,
                "period": f"{invoice.period:%Y-%m}",
                "total": str(invoice.total),
                "currency": invoice.currency,
            },
        },
    )
    return invoice


def _enqueue(task, *args):
    try:
        task.delay(*args)
    except Exception:  # the broker is down: the periodic sweep sends what is still unsent
        logger.warning("could not enqueue %s%r", task.name, args, exc_info=True)


@dataclass
class VoidResult:
    voided: Invoice
    new_draft: Invoice


def invoice_void(*, invoice: Invoice, user, reason: str) -> VoidResult:
    """Void an invoice with a reason and close its month again into a new draft.

    Only the organization's latest month can be voided: later invoices may already bill its late usage.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Say why the invoice is void."]})
    with transaction.atomic():
        advisory_xact_lock(BILLING, invoice.organization_id)
        invoice = _locked(invoice)
        _require_finance(invoice, user)
        if invoice.state == InvoiceState.VOID:
            raise ValidationError({"state": ["This invoice is already void."]})
        if _live_invoices(invoice.organization).filter(period__gt=invoice.period).exists():
            raise ValidationError({"state": ["A later month is invoiced already; void the later invoices first."]})
        from_state = invoice.state
        invoice.state, invoice.voided_at, invoice.void_reason = InvoiceState.VOID, timezone.now(), reason.strip()
        invoice.save(update_fields=["state", "voided_at", "void_reason"])
        _transition(invoice, from_state=from_state, to_state=InvoiceState.VOID, actor=user, reason=reason.strip())
        new_draft = invoice_close(organization=invoice.organization, period=invoice.period, actor=user)
    return VoidResult(voided=invoice, new_draft=new_draft)


def periods_due(*, organization: Organization, now: datetime | None = None) -> list[date]:
    """Months that ended more than the organization's grace days ago and have no invoice yet."""
    now = now or timezone.now()
    today = now.astimezone(organization.tz).date()
    last_month = month_start(month_start(today) - timedelta(days=1))
    if today < month_start(today) + timedelta(days=organization.grace_days):
        return []
    has_usage = UsageRecord.objects.for_org(organization).filter(
        timestamp__lt=datetime.combine(next_month(last_month), time.min, tzinfo=organization.tz)
    )
    if _live_invoices(organization).filter(period=last_month).exists() or not has_usage.exists():
        return []
    return [last_month]
