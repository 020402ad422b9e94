"""State changes of prices and FX rates; every change moves the pricing revision and is audited."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.common.services import audit_record
from apps.pricing.importers import PriceEntry, parse_default_prices
from apps.pricing.models import PRICE_FIELDS, PRICING_EPOCH, FxRate, ModelPrice, PriceList, PricingRevision
from apps.pricing.signals import fx_rates_changed, prices_changed

_PRICE_VALUE_FIELDS = (
    "match_pattern",
    "currency",
    *PRICE_FIELDS,
    "effective_to",
)


def pricing_revision_bump() -> None:
    """Tell every process that its cached price books are stale."""
    updated = PricingRevision.objects.filter(pk=1).update(revision=F("revision") + 1)
    if not updated:
        PricingRevision.objects.get_or_create(pk=1, defaults={"revision": 1})


def price_list_get_or_create(*, organization=None, name: str, description: str = "") -> PriceList:
    price_list, _ = PriceList.objects.get_or_create(
        organization=organization, name=name, defaults={"description": description}
    )
    return price_list


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    earliest_change: datetime | None = None
    changed_models: list[str] = field(default_factory=list)


def _entry_values(entry: PriceEntry) -> dict:
    return {
        "match_pattern": entry.match_pattern,
        "currency": entry.currency,
        "input_price": entry.input,
        "cached_input_price": entry.cached_input,
        "cache_write_price": entry.cache_write,
        "output_price": entry.output,
        "long_context_threshold": entry.long_context_threshold,
        "long_input_price": entry.long_input,
        "long_cached_input_price": entry.long_cached_input,
        "long_cache_write_price": entry.long_cache_write,
        "long_output_price": entry.long_output,
        "effective_to": entry.effective_to,
    }


def _check_entry(entry: PriceEntry) -> None:
    """What the table's check constraints refuse, said per field before anything is written."""
    name = f"{entry.provider}/{entry.model}" if entry.provider else entry.model
    prices = (
        "input",
        "output",
        "cached_input",
        "cache_write",
        "long_input",
        "long_cached_input",
        "long_cache_write",
        "long_output",
    )
    for field_name in prices:
        value = getattr(entry, field_name)
        if value is not None and value < 0:
            raise ValidationError({field_name: [f"{name}: must not be negative."]})
    if entry.long_context_threshold is not None and (entry.long_input is None or entry.long_output is None):
        raise ValidationError({"long_context_threshold": [f"{name}: needs long input and output prices."]})
    if entry.effective_from and entry.effective_to and entry.effective_to <= entry.effective_from:
        raise ValidationError({"effective_to": [f"{name}: must be after effective_from."]})


def _same_prices(price: ModelPrice, values: dict) -> bool:
    for name in _PRICE_VALUE_FIELDS:
        current, new = getattr(price, name), values[name]
        if isinstance(current, Decimal) and isinstance(new, Decimal):
            if current.compare(new) != 0:
                return False
        elif current != new:
            return False
    return True


def default_effective_from(*, price_list: PriceList, today: date | None = None) -> datetime:
    """Imports apply from the start of the day of import, in the list owner's time zone (UTC for global)."""
    tz = price_list.organization.tz if price_list.organization_id else UTC
    today = today or timezone.now().astimezone(tz).date()
    return datetime.combine(today, time.min, tzinfo=tz)


@transaction.atomic
def prices_import(
    *, price_list: PriceList, entries: list[PriceEntry], effective_from: datetime | None = None, actor=None
) -> ImportSummary:
    """Add price versions; unchanged prices add nothing, so importing the same file twice is a no-op.

    A model without any price yet gets one that applies to all earlier usage too; otherwise the new
    version starts at `effective_from` (default: start of today). A version with the same start is a
    correction and is updated in place.
    """
    summary = ImportSummary()
    default_from = effective_from or default_effective_from(price_list=price_list)
    existing: dict[tuple[str, str], list[ModelPrice]] = {}
    for price in ModelPrice.objects.filter(price_list=price_list).order_by("-effective_from"):
        existing.setdefault((price.provider, price.model), []).append(price)
    to_create = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry.provider, entry.model)
        if key in seen:
            continue  # a file naming a model twice: the first entry wins
        seen.add(key)
        versions = existing.get(key, [])
        start = entry.effective_from or (default_from if versions else PRICING_EPOCH)
        _check_entry(entry)
        values = _entry_values(entry)
        current = next((v for v in versions if v.effective_from <= start), None)
        if current is not None and _same_prices(current, values):
            summary.unchanged += 1
            continue
        same_start = next((v for v in versions if v.effective_from == start), None)
        if same_start is not None:
            old = {name: str(getattr(same_start, name)) for name in _PRICE_VALUE_FIELDS}
            for name, value in values.items():
                setattr(same_start, name, value)
            same_start.source = entry.source or same_start.source
            same_start.full_clean(exclude=["price_list"])
            same_start.save()
            summary.updated += 1
            audit_record(
                organization=price_list.organization,
                actor=actor,
                action="price.corrected",
                object_type="ModelPrice",
                object_id=same_start.pk,
                changes={"before": old, "after": {k: str(v) for k, v in values.items()}},
            )
        else:
            price = ModelPrice(
                price_list=price_list,
                organization=price_list.organization,
                provider=entry.provider,
                model=entry.model,
                effective_from=start,
                source=entry.source,
                **values,
            )
            # The parsers check what the constraints check; the database stays the backstop.
            price.full_clean(exclude=["price_list"], validate_unique=False, validate_constraints=False)
            to_create.append(price)
            summary.created += 1
        summary.changed_models.append(f"{entry.provider}/{entry.model}" if entry.provider else entry.model)
        if summary.earliest_change is None or start < summary.earliest_change:
            summary.earliest_change = start
    ModelPrice.objects.bulk_create(to_create, batch_size=1000)
    if summary.created or summary.updated:
        audit_record(
            organization=price_list.organization,
            actor=actor,
            action="prices.imported",
            object_type="PriceList",
            object_id=price_list.pk,
            changes={
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "earliest_change": summary.earliest_change.isoformat() if summary.earliest_change else None,
            },
        )
        pricing_revision_bump()
        organization = price_list.organization
        since = summary.earliest_change
        transaction.on_commit(lambda: prices_changed.send(sender=PriceList, organization=organization, since=since))
    return summary


def model_price_set(*, price_list: PriceList, entry: PriceEntry, actor=None) -> ImportSummary:
    """One price added or corrected by hand: the same rules as an import of one line."""
    if entry.effective_from is None:
        raise ValidationError({"effective_from": ["Say from when the price applies."]})
    return prices_import(price_list=price_list, entries=[entry], effective_from=entry.effective_from, actor=actor)


@dataclass
class FxImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    earliest_change: date | None = None


@transaction.atomic
def fx_rates_import(*, rows: list[dict], actor=None) -> FxImportSummary:
    """Rows of date, from, to, rate, source; a rate already known for the day is corrected in place."""
    summary = FxImportSummary()
    for row in rows:
        rate, created = FxRate.objects.get_or_create(
            date=row["date"],
            from_currency=row["from_currency"],
            to_currency=row["to_currency"],
            defaults={"rate": row["rate"], "source": row.get("source", "")},
        )
        if created:
            summary.created += 1
        elif rate.rate.compare(row["rate"]) != 0:
            audit_record(
                actor=actor,
                action="fx.corrected",
                object_type="FxRate",
                object_id=rate.pk,
                changes={"before": str(rate.rate), "after": str(row["rate"])},
            )
            rate.rate, rate.source = row["rate"], row.get("source", rate.source)
            rate.save(update_fields=["rate", "source"])
            summary.updated += 1
        else:
            summary.unchanged += 1
            continue
        if summary.earliest_change is None or row["date"] < summary.earliest_change:
            summary.earliest_change = row["date"]
    if summary.created or summary.updated:
        audit_record(
            actor=actor,
            action="fx.imported",
            object_type="FxRate",
            changes={"created": summary.created, "updated": summary.updated},
        )
        pricing_revision_bump()
        since = summary.earliest_change
        transaction.on_commit(lambda: fx_rates_changed.send(sender=FxRate, since=since))
    return summary


def prices_load_default(*, actor="default price list") -> ImportSummary:
    """The price list that ships with the product (apps/pricing/data/default_prices.json); idempotent."""
    document, parsed = parse_default_prices()
    price_list = price_list_get_or_create(organization=None, name=document["name"], description=document["description"])
    return prices_import(price_list=price_list, entries=parsed.entries, actor=actor)
