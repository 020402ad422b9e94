"""Reads of billing: invoice subtotals and the numbers of a cost center's chargeback report."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from apps.billing.models import Invoice, InvoiceLine
from apps.billing.periods import period_bounds
from apps.budgets.models import Budget, PeriodKind
from apps.budgets.selectors import budget_effective_amount
from apps.common.money import round_money
from apps.tenancy.models import CostCenter
from apps.tenancy.selectors import cost_center_descendant_ids
from apps.usage.models import PricingStatus, UsageRecord


def invoice_subtotals(*, invoice: Invoice) -> list[dict]:
    """Per cost center: the sum of its rounded lines (usage and adjustments), in the invoice currency."""
    rows = (
        invoice.lines.values("cost_center__code")
        .annotate(amount=Sum("amount"), requests=Sum("requests"))
        .order_by("cost_center__code")
    )
    return [{"cost_center": r["cost_center__code"], "amount": r["amount"], "requests": r["requests"]} for r in rows]


def invoice_billed_records(*, invoice: Invoice, cost_center_ids: set[int] | None = None):
    """The usage records the invoice's usage lines bill: its month, priced, received before the cutoff."""
    start, end = period_bounds(organization=invoice.organization, period=invoice.period)
    records = UsageRecord.objects.for_org(invoice.organization).filter(
        timestamp__gte=start,
        timestamp__lt=end,
        received_at__lt=invoice.cutoff_at,
        pricing_status=PricingStatus.PRICED,
    )
    if cost_center_ids is not None:
        records = records.filter(cost_center_id__in=cost_center_ids)
    return records


@dataclass
class ChargebackReport:
    invoice: Invoice
    cost_center: CostCenter
    currency: str
    total: Decimal
    usage_total: Decimal
    adjustments_total: Decimal
    budget: Decimal | None
    lines: list[InvoiceLine]
    top_models: list[dict] = field(default_factory=list)
    top_users: list[dict] = field(default_factory=list)
    top_features: list[dict] = field(default_factory=list)
    daily: list[tuple] = field(default_factory=list)

    @property
    def burn_percent(self) -> Decimal | None:
        if not self.budget:
            return None
        return (self.total / self.budget * 100).quantize(Decimal("0.1"))


def chargeback_report(*, invoice: Invoice, cost_center: CostCenter, top: int = 5) -> ChargebackReport:
    """What one cost center (with its children) is charged on an invoice, and where it came from."""
    ids = cost_center_descendant_ids(organization=invoice.organization, roots=[cost_center.pk])
    lines = list(invoice.lines.filter(cost_center_id__in=ids).select_related("cost_center"))
    usage_total = sum((line.amount for line in lines if line.kind == "usage"), Decimal(0))
    adjustments = sum((line.amount for line in lines if line.kind != "usage"), Decimal(0))
    budget = (
        Budget.objects.for_org(invoice.organization)
        .filter(cost_center=cost_center, period_kind=PeriodKind.MONTH, active=True)
        .first()
    )
    records = invoice_billed_records(invoice=invoice, cost_center_ids=ids)

    def ranked(field_name):
        rows = (
            records.values(field_name).annotate(cost=Sum("billing_cost"), requests=Count("id")).order_by("-cost")[:top]
        )
        return [
            {
                "name": r[field_name] or "(none)",
                "cost": round_money(r["cost"], invoice.currency),
                "requests": r["requests"],
            }
            for r in rows
        ]

    tz = invoice.organization.tz
    daily = [
        (r["day"], r["cost"])
        for r in records.annotate(day=TruncDate("timestamp", tzinfo=tz))
        .values("day")
        .annotate(cost=Sum("billing_cost"))
        .order_by("day")
    ]
    return ChargebackReport(
        invoice=invoice,
        cost_center=cost_center,
        currency=invoice.currency,
        total=usage_total + adjustments,
        usage_total=usage_total,
        adjustments_total=adjustments,
        budget=budget_effective_amount(budget=budget, on=invoice.period) if budget else None,
        lines=lines,
        top_models=ranked("model"),
        top_users=ranked("user_id"),
        top_features=ranked("feature"),
        daily=daily,
    )


CHARGEBACK_CSV_HEADER = (
    "date",
    "cost_center",
    "provider",
    "model",
    "user_id",
    "feature",
    "requests",
    "input_tokens",
    "output_tokens",
    "cost",
    "currency",
)


def chargeback_csv_rows(*, invoice: Invoice, cost_center: CostCenter):
    """Per day x model x user x feature, the billed usage of the month; adjustments are lines of the invoice."""
    ids = cost_center_descendant_ids(organization=invoice.organization, roots=[cost_center.pk])
    tz = invoice.organization.tz
    rows = (
        invoice_billed_records(invoice=invoice, cost_center_ids=ids)
        .annotate(day=TruncDate("timestamp", tzinfo=tz))
        .values("day", "cost_center__code", "provider", "model", "user_id", "feature")
        .annotate(requests=Count("id"), inp=Sum("input_tokens"), out=Sum("output_tokens"), cost=Sum("billing_cost"))
        .order_by("day", "cost_center__code", "model", "user_id", "feature")
    )
    for r in rows.iterator(chunk_size=5000):
        yield (
            r["day"].isoformat(),
            r["cost_center__code"],
            r["provider"],
            r["model"],
            r["user_id"],
            r["feature"],
            r["requests"],
            r["inp"],
            r["out"],
            f"{r['cost']:.10f}",
            invoice.currency,
        )
