"""Change an organization's reporting time zone and have its daily rollups cut anew."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.tenancy.models import Organization
from apps.usage.rollups import rollups_invalidate


class Command(BaseCommand):
    help = "Change ORG's reporting time zone (IANA name). Invoiced months keep the periods they were closed with."

    def add_arguments(self, parser):
        parser.add_argument("org")
        parser.add_argument("timezone")

    def handle(self, *args, org, timezone, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}.")
        organization.timezone = timezone
        try:
            organization.full_clean()
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        with transaction.atomic():
            organization.save(update_fields=["timezone"])
            rollups_invalidate(organization=organization)
        self.stdout.write(f"{organization.slug} now reports in {timezone}; its daily rollups are being recomputed.")
