"""Import prices from LiteLLM's model cost map or a CSV into a global or organization price list."""

import json
from datetime import UTC, datetime, time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date

from apps.pricing.importers import CSV_COLUMNS, parse_litellm, parse_price_csv
from apps.pricing.services import price_list_get_or_create, prices_import
from apps.tenancy.models import Organization


class Command(BaseCommand):
    help = (
        "Import prices. Formats: litellm (model_prices_and_context_window.json) or csv (columns: "
        + ", ".join(CSV_COLUMNS)
        + "). New prices apply from the start of today unless --effective-from says "
        "otherwise; a model's first price applies to all earlier usage too."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", choices=("litellm", "csv"), help="Default: by file extension.")
        parser.add_argument("--org", help="Import into this organization's negotiated list instead of a global one.")
        parser.add_argument("--list", dest="list_name", help="Price list name (default: by format).")
        parser.add_argument("--effective-from", help="Date (YYYY-MM-DD) from which the prices apply.")

    def handle(self, *args, file, format, org, list_name, effective_from, **options):
        path = Path(file)
        if not path.exists():
            raise CommandError(f"No such file: {file}")
        format = format or ("csv" if path.suffix.lower() == ".csv" else "litellm")
        organization = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization {org!r}.")
        start = None
        if effective_from:
            try:
                day = parse_date(effective_from)
            except ValueError:  # well formed but impossible, such as 2026-02-30
                day = None
            if day is None:
                raise CommandError("--effective-from takes a date, YYYY-MM-DD.")
            start = datetime.combine(day, time.min, tzinfo=organization.tz if organization else UTC)
        if format == "litellm":
            try:
                parsed = parse_litellm(json.loads(path.read_text()))
            except json.JSONDecodeError as exc:
                raise CommandError(f"{file} is not JSON: {exc}") from None
            default_name = "LiteLLM community prices"
        else:
            parsed = parse_price_csv(path.read_text(encoding="utf-8-sig"), tz=organization.tz if organization else UTC)
            default_name = "Imported prices"
        if parsed.errors:
            for error in parsed.errors[:50]:
                self.stderr.write(f"  {error}")
            if not parsed.entries:
                raise CommandError(f"Nothing imported: {len(parsed.errors)} error(s).")
        price_list = price_list_get_or_create(organization=organization, name=list_name or default_name)
        try:
            summary = prices_import(
                price_list=price_list, entries=parsed.entries, effective_from=start, actor="import_prices"
            )
        except ValidationError as exc:
            raise CommandError(f"Nothing imported: {exc}") from None
        self.stdout.write(
            f"{price_list}: {summary.created} new price(s), {summary.updated} corrected, "
            f"{summary.unchanged} unchanged; {len(parsed.skipped)} entries without token prices skipped, "
            f"{len(parsed.errors)} malformed."
        )
        if summary.earliest_change is not None and (summary.created or summary.updated):
            self.stdout.write(
                f"Unpriced usage of these models is priced now. Usage already priced since "
                f"{summary.earliest_change:%Y-%m-%d} keeps its price until re-rated: "
                f"manage.py rerate_usage ORG --start {summary.earliest_change:%Y-%m-%d} shows the diff."
            )
