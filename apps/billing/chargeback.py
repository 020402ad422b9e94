"""Chargeback reports: one email per cost-center owner when an invoice is issued, with a chart and a CSV."""

import csv
import io
import logging
from email.mime.image import MIMEImage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from apps.billing.models import ChargebackEmail, Invoice, InvoiceState
from apps.billing.selectors import CHARGEBACK_CSV_HEADER, chargeback_csv_rows, chargeback_report
from apps.common.services import audit_record
from apps.tenancy.models import CostCenter, Membership, Role
from apps.tenancy.selectors import cost_center_descendant_ids

logger = logging.getLogger(__name__)


def daily_chart_png(daily: list[tuple], currency: str) -> bytes:
    """A bar chart of cost per day, rendered on the server so that mail clients need nothing else."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 2.6), dpi=110)
    days = [d for d, _ in daily]
    axis.bar(days, [float(c) for _, c in daily], color="#4f46e5", width=0.8)  # float only to draw
    axis.set_ylabel(currency)
    axis.spines[["top", "right"]].set_visible(False)
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def chargeback_csv(*, invoice: Invoice, cost_center: CostCenter) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CHARGEBACK_CSV_HEADER)
    writer.writerows(chargeback_csv_rows(invoice=invoice, cost_center=cost_center))
    return out.getvalue()


def chargeback_message(*, invoice: Invoice, cost_center: CostCenter, recipient: str) -> EmailMultiAlternatives:
    report = chargeback_report(invoice=invoice, cost_center=cost_center)
    context = {"report": report, "invoice": invoice, "organization": invoice.organization}
    subject = f"[costportal] {cost_center.code}: {report.total} {report.currency} for {invoice.period:%B %Y}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("billing/chargeback_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
    )
    message.attach_alternative(render_to_string("billing/chargeback_email.html", context), "text/html")
    message.mixed_subtype = "related"
    if report.daily:
        image = MIMEImage(daily_chart_png(report.daily, report.currency), "png")
        image.add_header("Content-ID", "<daily-cost>")
        image.add_header("Content-Disposition", "inline", filename="daily-cost.png")
        message.attach(image)
    message.attach(
        f"{invoice.organization.slug}-{cost_center.code}-{invoice.period:%Y-%m}.csv",
        chargeback_csv(invoice=invoice, cost_center=cost_center),
        "text/csv",
    )
    return message


def chargeback_recipients(*, invoice: Invoice) -> list[tuple[CostCenter, str]]:
    """(cost center, email) for every owner of a cost center that the invoice charges (or of its parent)."""
    charged = set(invoice.lines.values_list("cost_center_id", flat=True))
    pairs = []
    owners = Membership.objects.for_org(invoice.organization).filter(role=Role.OWNER).select_related("user")
    for membership in owners:
        if not membership.user.email:
            continue
        for cost_center in membership.cost_centers.all():
            subtree = cost_center_descendant_ids(organization=invoice.organization, roots=[cost_center.pk])
            if subtree & charged:
                pairs.append((cost_center, membership.user.email))
    return sorted(pairs, key=lambda p: (p[0].code, p[1]))


def chargebacks_send(*, invoice_id: int) -> int:
    """Send each owner's report of an issued invoice once; a retry sends only what was not sent yet."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    if invoice.state != InvoiceState.ISSUED:
        return 0
    sent = 0
    for cost_center, recipient in chargeback_recipients(invoice=invoice):
        try:
            with transaction.atomic():
                ChargebackEmail.objects.create(
                    invoice=invoice, cost_center=cost_center, recipient=recipient, sent_by="system"
                )
                chargeback_message(invoice=invoice, cost_center=cost_center, recipient=recipient).send()
        except IntegrityError:
            continue  # sent before
        sent += 1
    return sent


def chargeback_resend(*, invoice: Invoice, cost_center: CostCenter, user) -> int:
    """An explicit, logged resend of one cost center's report to its owners."""
    if invoice.state != InvoiceState.ISSUED:
        raise ValidationError({"state": ["Only issued invoices have chargeback reports."]})
    sent = 0
    for owned, recipient in chargeback_recipients(invoice=invoice):
        if owned.pk != cost_center.pk:
            continue
        with transaction.atomic():
            ChargebackEmail.objects.create(
                invoice=invoice, cost_center=owned, recipient=recipient, resend=True, sent_by=str(user)
            )
            chargeback_message(invoice=invoice, cost_center=owned, recipient=recipient).send()
        sent += 1
    audit_record(
        organization=invoice.organization,
        actor=user,
        action="chargeback.resent",
        object_type="Invoice",
        object_id=invoice.pk,
        changes={"cost_center": cost_center.code, "emails": sent},
    )
    return sent
