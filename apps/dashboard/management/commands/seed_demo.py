"""A demo organization with cost centers, members and 90 days of realistic usage."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.billing.periods import period_bounds
from apps.billing.services import invoice_close
from apps.budgets.models import Budget
from apps.budgets.services import budget_create
from apps.dashboard.demo_data import COST_CENTERS, FEATURES, PROVIDERS, SHAPES
from apps.pricing.services import prices_load_default
from apps.tenancy.models import CostCenter, Organization, Role
from apps.tenancy.services import api_key_create, cost_center_create, membership_set, organization_create
from apps.usage.models import UsageRecord
from apps.usage.services import usage_ingest

DEMO_SLUG = "acme"
DEMO_PASSWORD = "costportal-demo"


class Command(BaseCommand):
    help = "Create the demo organization 'acme' with members, keys and 90 days of usage (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--scale", type=float, default=1.0, help="Multiply the daily request volume.")

    def handle(self, *args, days, scale, **options):
        prices_load_default()
        organization = Organization.objects.filter(slug=DEMO_SLUG).first()
        with transaction.atomic():
            if organization is None:
                organization = organization_create(
                    slug=DEMO_SLUG, name="Acme Analytics", billing_currency="USD", timezone_name="Europe/Berlin"
                )
            codes = self._cost_centers(organization)
            self._members(organization, codes)
        _, ingest_key = api_key_create(organization=organization, name="demo ingest+read", scopes=["ingest", "read"])
        total = self._usage(organization, days=days, scale=scale)
        self._budgets(organization, codes)
        invoices = self._close_past_months(organization)
        self.stdout.write(
            f"Demo organization {organization.slug}: {total['accepted']} new usage record(s), "
            f"{total['duplicates']} already there."
        )
        self.stdout.write(
            "Back office at /admin/ for admin@, finance@, controller@, search-lead@, product-lead@ and "
            f"viewer@acme.example, password {DEMO_PASSWORD}."
        )
        if invoices:
            self.stdout.write(f"Closed into draft invoices: {', '.join(i.number for i in invoices)}.")
        self.stdout.write(f"API key (ingest, read): {ingest_key}")

    def _budgets(self, organization, codes):
        """Monthly budgets that the demo's spend crosses, so that burn, alerts and change requests show."""
        wanted = {
            "cc_support_bot": ("250", "soft"),
            "cc_search": ("90", "hard"),
            "cc_marketing_analytics": ("80", "soft"),
        }
        for code, (amount, enforcement) in wanted.items():
            if not Budget.objects.for_org(organization).filter(cost_center=codes[code], active=True).exists():
                budget_create(
                    organization=organization, cost_center=codes[code], amount=Decimal(amount), enforcement=enforcement
                )
        if not Budget.objects.for_org(organization).filter(cost_center__isnull=True, active=True).exists():
            budget_create(organization=organization, amount=Decimal("800"))

    def _close_past_months(self, organization) -> list:
        """The months that ended (in the demo's time zone) become draft invoices for finance to approve."""
        # The demo stands for history: each call reached the portal when it happened, not just now.
        UsageRecord.objects.for_org(organization).filter(request_id__startswith="demo-").update(
            received_at=F("timestamp")
        )
        today = timezone.now().astimezone(organization.tz).date()
        last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        invoices = []
        for period in ((last_month - timedelta(days=1)).replace(day=1), last_month):
            start, end = period_bounds(organization=organization, period=period)
            if UsageRecord.objects.for_org(organization).filter(timestamp__gte=start, timestamp__lt=end).exists():
                invoices.append(invoice_close(organization=organization, period=period))
        return invoices

    def _cost_centers(self, organization) -> dict[str, CostCenter]:
        existing = {cc.code: cc for cc in CostCenter.objects.for_org(organization)}
        for code, name, parent, _, _ in COST_CENTERS:
            if code not in existing:
                existing[code] = cost_center_create(
                    organization=organization, code=code, name=name, parent=existing.get(parent) if parent else None
                )
        return existing

    def _members(self, organization, codes):
        User = get_user_model()
        people = [
            ("admin@acme.example", Role.ADMIN, []),
            ("finance@acme.example", Role.FINANCE, []),
            ("controller@acme.example", Role.FINANCE, []),
            ("search-lead@acme.example", Role.OWNER, ["cc_search"]),
            ("product-lead@acme.example", Role.OWNER, ["cc_product"]),
            ("viewer@acme.example", Role.VIEWER, []),
        ]
        for email, role, owned in people:
            user = User.objects.filter(username=email).first()
            if user is None:
                user = User.objects.create_user(username=email, email=email, password=DEMO_PASSWORD)
            membership_set(organization=organization, user=user, role=role, cost_centers=[codes[c] for c in owned])

    def _usage(self, organization, *, days: int, scale: float) -> dict:
        rng = random.Random(20260101)
        now = timezone.now().astimezone(organization.tz)
        totals = {"accepted": 0, "duplicates": 0}
        batch: list[dict] = []
        users = [f"u{n:03d}" for n in range(1, 61)]
        for day_offset in range(days, -1, -1):
            day = (now - timedelta(days=day_offset)).replace(hour=0, minute=0, second=0, microsecond=0)
            growth = 0.6 + 0.4 * (days - day_offset) / max(days, 1)
            weekend = 0.35 if day.weekday() >= 5 else 1.0
            for code, _, _, daily, models in COST_CENTERS:
                if not daily:
                    continue
                count = int(daily * scale * growth * weekend * rng.uniform(0.85, 1.15))
                names, weights = zip(*models.items(), strict=True)
                for n in range(count):
                    moment = day + timedelta(seconds=rng.betavariate(2.5, 2.5) * 86400)
                    if moment > now:
                        continue
                    model = rng.choices(names, weights)[0]
                    mean_in, mean_out, cached_share = SHAPES[model]
                    input_tokens = max(50, int(rng.lognormvariate(0, 0.6) * mean_in))
                    cache_read = int(input_tokens * cached_share * rng.random())
                    output_tokens = max(1, int(rng.lognormvariate(0, 0.7) * mean_out))
                    batch.append(
                        {
                            "request_id": f"demo-{code}-{day:%Y%m%d}-{n}",
                            "timestamp": moment.isoformat(),
                            "model": model,
                            "provider": next(p for prefix, p in PROVIDERS.items() if model.startswith(prefix)),
                            "input_tokens": input_tokens,
                            "output_tokens": output_tokens,
                            "cache_read_tokens": cache_read,
                            "cost_center": code,
                            "user_id": rng.choice(users[: 20 if code != "cc_support_bot" else 60]),
                            "feature": rng.choice(FEATURES[code]),
                            "environment": "production" if rng.random() < 0.85 else "staging",
                            "latency_ms": int(rng.lognormvariate(0, 0.4) * (350 + output_tokens * 2)),
                            "status": "ok" if rng.random() < 0.985 else "error",
                            "session_id": f"s-{rng.randrange(10**6)}",
                            "tags": {"team": code.removeprefix("cc_")},
                        }
                    )
                    if len(batch) == 5000:
                        self._send(organization, batch, totals)
            if day_offset % 15 == 0:
                self.stdout.write(f"  {day:%Y-%m-%d}: {totals['accepted'] + len(batch)} records so far")
        if batch:
            self._send(organization, batch, totals)
        return totals

    def _send(self, organization, batch, totals):
        result = usage_ingest(organization=organization, api_key=None, raw_records=batch)
        if result.rejected:
            raise RuntimeError(f"demo usage rejected: {result.errors[:3]}")
        totals["accepted"] += result.accepted
        totals["duplicates"] += result.duplicates
        batch.clear()
