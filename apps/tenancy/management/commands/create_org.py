"""Create an organization with its `unallocated` cost center."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.tenancy.models import Organization
from apps.tenancy.services import organization_create


class Command(BaseCommand):
    help = "Create an organization (tenant) with its unallocated cost center."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--currency", default="USD", help="Billing currency, ISO 4217 (default USD).")
        parser.add_argument("--timezone", default="UTC", help="Reporting time zone, IANA name (default UTC).")
        parser.add_argument("--strict", action="store_true", help="Reject usage naming an unknown cost center.")
        parser.add_argument("--grace-days", type=int, default=3)

    def handle(self, *args, slug, name, currency, timezone, strict, grace_days, **options):
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"Organization {slug!r} already exists.")
        try:
            organization = organization_create(
                slug=slug,
                name=name,
                billing_currency=currency.upper(),
                timezone_name=timezone,
                strict_attribution=strict,
                grace_days=grace_days,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(
            f"Created organization {organization.slug} ({organization.billing_currency}, {organization.timezone})."
        )
