"""Import FX rates from a CSV of date, from, to, rate, source."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.pricing.importers import parse_fx_csv
from apps.pricing.services import fx_rates_import


class Command(BaseCommand):
    help = "Import FX rates from a CSV with columns date, from, to, rate, source."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.exists():
            raise CommandError(f"No such file: {file}")
        rows, errors = parse_fx_csv(path.read_text(encoding="utf-8-sig"))
        if errors:
            for error in errors[:50]:
                self.stderr.write(f"  {error}")
            raise CommandError(f"Nothing imported: {len(errors)} malformed line(s).")
        summary = fx_rates_import(rows=rows, actor="import_fx_rates")
        self.stdout.write(
            f"FX rates: {summary.created} new, {summary.updated} corrected, {summary.unchanged} unchanged."
        )
