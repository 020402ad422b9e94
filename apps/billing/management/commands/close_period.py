"""Close an organization's month into a draft invoice by hand (the beat schedule does it after grace days)."""

import re
from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import invoice_close
from apps.tenancy.models import Organization


class Command(BaseCommand):
    help = "Close ORG's month YYYY-MM into one draft invoice; closing it again returns the same invoice."

    def add_arguments(self, parser):
        parser.add_argument("org")
        parser.add_argument("period", help="YYYY-MM")

    def handle(self, *args, org, period, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}.")
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise CommandError("period takes the form YYYY-MM, e.g. 2026-03.")
        try:
            invoice = invoice_close(organization=organization, period=date.fromisoformat(f"{period}-01"))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"Invoice {invoice.number} ({invoice.state}): {invoice.lines.count()} lines, usage {invoice.usage_total}, "
            f"adjustments {invoice.adjustments_total}, total {invoice.total} {invoice.currency}; "
            f"{invoice.unpriced_requests} unpriced and {invoice.unconverted_requests} unconverted not billed."
        )
