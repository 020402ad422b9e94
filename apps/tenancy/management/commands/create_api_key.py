"""Issue an API key; the key is printed once, alone on the last line."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.tenancy.models import CostCenter, Organization
from apps.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Issue an API key for an organization. The key is shown once, alone on the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("org", help="Organization slug.")
        parser.add_argument("--scopes", default="ingest", help="Comma-separated: ingest,read (default ingest).")
        parser.add_argument("--cost-center", help="Default cost center code for usage that names none.")
        parser.add_argument("--name", default="", help="What the key is for (default: generated).")
        parser.add_argument("--expires-in-days", type=int, help="Expire the key after this many days.")

    def handle(self, *args, org, scopes, cost_center, name, expires_in_days, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}.")
        default_cc = None
        if cost_center:
            default_cc = CostCenter.objects.for_org(organization).filter(code=cost_center).first()
            if default_cc is None:
                raise CommandError(f"No cost center {cost_center!r} in {org}.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            api_key, raw_key = api_key_create(
                organization=organization,
                name=name or f"{'+'.join(scope_list)} key",
                scopes=scope_list,
                default_cost_center=default_cc,
                expires_at=expires_at,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stderr.write(
            f"API key {api_key.display} for {organization.slug}, scopes {','.join(api_key.scopes)}. "
            "Store it now: it is not shown again."
        )
        self.stdout.write(raw_key)
