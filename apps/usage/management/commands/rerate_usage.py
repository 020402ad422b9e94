"""Re-price an organization's usage after a price change: a dry-run diff first, --apply to write."""

from django.core.management.base import BaseCommand, CommandError
from django.forms import ValidationError

from apps.tenancy.models import Organization
from apps.usage.filters import parse_moment
from apps.usage.services import usage_rerate


class Command(BaseCommand):
    help = "Show (and with --apply, write) what re-pricing a range with today's prices changes."

    def add_arguments(self, parser):
        parser.add_argument("org")
        parser.add_argument("--start", help="Date or RFC 3339 time (default: all usage).")
        parser.add_argument("--end", help="Date (inclusive) or RFC 3339 time.")
        parser.add_argument("--apply", action="store_true", help="Write the new prices; without it nothing changes.")

    def handle(self, *args, org, start, end, apply, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}.")
        try:
            start_at = parse_moment(start, tz=organization.tz, end=False) if start else None
            end_at = parse_moment(end, tz=organization.tz, end=True) if end else None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        report = usage_rerate(organization=organization, start=start_at, end=end_at, dry_run=not apply)
        currency = report.currency
        self.stdout.write(
            f"{'Re-rated' if apply else 'Dry run'}: {report.examined} record(s) examined, "
            f"{report.changed} change, {report.newly_priced} newly priced, {report.still_unpriced} still unpriced."
        )
        for line in sorted(report.lines.values(), key=lambda item: abs(item.delta), reverse=True):
            name = f"{line.provider}/{line.model}" if line.provider else line.model
            self.stdout.write(
                f"  {name:<40} {line.records:>8} records  "
                f"{line.old_cost:>16.4f} -> {line.new_cost:>16.4f} {currency}  ({line.delta:+.4f})"
            )
        self.stdout.write(f"Total: {report.old_total:.4f} -> {report.new_total:.4f} {currency} ({report.delta:+.4f})")
        if not apply and report.changed:
            self.stdout.write("Nothing was written; run again with --apply to re-rate.")
