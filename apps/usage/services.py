"""State changes of usage: priced, idempotent ingest, pricing of unpriced records, re-rating."""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.common.locks import BILLING, advisory_xact_lock
from apps.common.money import COST_PLACES
from apps.pricing.engine import FxTable, PriceBook, compute_cost
from apps.pricing.selectors import fx_table, price_book_for, pricing_revision
from apps.tenancy.models import UNALLOCATED, ApiKey, Organization
from apps.tenancy.selectors import cost_center_codes
from apps.usage.models import CostChangeReason, PricingStatus, UsageCostChange, UsageRecord
from apps.usage.normalize import CleanRecord, RecordInvalid, clean_record
from apps.usage.rollups import (
    LOCK_DAYS_SQL,
    increments_params,
    insert_with_increments_sql,
    lock_days_params,
    lock_days_shared,
    mark_days_dirty,
)

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }


@dataclass(slots=True)
class Priced:
    status: str
    price_id: int | None = None
    cost: Decimal | None = None
    cost_currency: str = ""
    fx_rate: Decimal | None = None
    billing_cost: Decimal | None = None


def price_usage(
    *,
    book: PriceBook,
    fx: FxTable,
    organization: Organization,
    provider: str,
    model: str,
    timestamp: datetime,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> Priced:
    """Price one call and convert it to the billing currency at the rate of its day (organization's time zone)."""
    prices = book.lookup(provider=provider, model=model, at=timestamp)
    if prices is None:
        return Priced(PricingStatus.UNPRICED)
    cost = compute_cost(
        prices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    day = timestamp.astimezone(organization.tz).date()
    rate = fx.rate(from_currency=prices.currency, to_currency=organization.billing_currency, on=day)
    if rate is None:
        return Priced(PricingStatus.NO_FX_RATE, prices.id, cost, prices.currency)
    billing_cost = cost if rate == 1 else (cost * rate).quantize(COST_PLACES)
    return Priced(PricingStatus.PRICED, prices.id, cost, prices.currency, rate, billing_cost)


def price_record(*, book: PriceBook, fx: FxTable, organization: Organization, record) -> Priced:
    """price_usage for anything that carries a call's provider, model, time and tokens (ingested or stored)."""
    return price_usage(
        book=book,
        fx=fx,
        organization=organization,
        provider=record.provider,
        model=record.model,
        timestamp=record.timestamp,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
    )


# Column order of an ingested row, shared by the COPY path and the ORM path.
INGEST_COLUMNS = (
    "organization_id",
    "request_id",
    "timestamp",
    "received_at",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_center_id",
    "unknown_cost_center",
    "user_id",
    "session_id",
    "feature",
    "feature_flag",
    "environment",
    "tags",
    "latency_ms",
    "status",
    "api_key_id",
    "reported_cost",
    "reported_currency",
    "pricing_status",
    "price_id",
    "cost",
    "cost_currency",
    "fx_rate",
    "billing_cost",
    "priced_at",
)


def usage_ingest(*, organization: Organization, api_key: ApiKey | None, raw_records: list) -> IngestResult:
    """Validate, attribute, price and store a batch; a request_id already stored counts as a duplicate.

    Valid records are stored even when others of the batch are rejected. Needs only the database:
    no cache, broker or worker is on this path.
    """
    now = timezone.now()
    revision = pricing_revision()
    book = price_book_for(organization=organization, revision=revision)
    fx = fx_table(revision=revision)
    codes = cost_center_codes(organization=organization)
    unallocated_id = codes[UNALLOCATED]
    default_cc_id = unallocated_id
    if api_key is not None and api_key.default_cost_center_id in codes.values():
        default_cc_id = api_key.default_cost_center_id
    strict = organization.strict_attribution
    api_key_id = api_key.pk if api_key is not None else None
    org_id = organization.pk

    result = IngestResult()
    rows: list[tuple] = []
    seen: set[str] = set()
    days: set = set()
    tz = organization.tz
    for index, raw in enumerate(raw_records):
        try:
            record = clean_record(raw, now=now)
            cost_center_id, unknown_code = _attribute(record, codes, default_cc_id, unallocated_id, strict)
        except RecordInvalid as exc:
            result.errors.append({"index": index, "request_id": exc.request_id, "errors": exc.errors})
            continue
        if record.request_id in seen:
            result.duplicates += 1
            continue
        seen.add(record.request_id)
        days.add(record.timestamp.astimezone(tz).date())
        priced = price_record(book=book, fx=fx, organization=organization, record=record)
        rows.append(
            (
                org_id,
                record.request_id,
                record.timestamp,
                now,
                record.provider,
                record.model,
                record.input_tokens,
                record.output_tokens,
                record.cache_read_tokens,
                record.cache_write_tokens,
                record.reasoning_tokens,
                cost_center_id,
                unknown_code,
                record.user_id,
                record.session_id,
                record.feature,
                record.feature_flag,
                record.environment,
                record.tags,
                record.latency_ms,
                record.status,
                api_key_id,
                record.reported_cost,
                record.reported_currency,
                priced.status,
                priced.price_id,
                priced.cost,
                priced.cost_currency,
                priced.fx_rate,
                priced.billing_cost,
                now if priced.price_id else None,
            )
        )
    result.rejected = len(result.errors)
    if rows:
        if connection.vendor == "postgresql":
            inserted = _insert_rows_postgres(organization, rows, days)
        else:
            inserted = _insert_rows_orm(rows)
        result.accepted = inserted
        result.duplicates += len(rows) - inserted
    return result


def _attribute(record: CleanRecord, codes, default_cc_id, unallocated_id, strict) -> tuple[int, str]:
    if record.cost_center is None:
        return default_cc_id, ""
    cost_center_id = codes.get(record.cost_center)
    if cost_center_id is not None:
        return cost_center_id, ""
    if strict:
        raise RecordInvalid(
            {
                "cost_center": [
                    f"Unknown or inactive cost center {record.cost_center!r}; this organization requires a known one."
                ]
            },
            request_id=record.request_id,
        )
    return unallocated_id, record.cost_center


_STAGE = "usage_ingest_stage"


# Up to this many rows go in as one INSERT ... VALUES; more are staged with COPY.
SMALL_BATCH = 50


def _insert_rows_values(organization: Organization, rows: list[tuple], days: set) -> int:
    """A few rows in one round trip: the insert with its rollup increments, then the day locks, as one
    implicit transaction.

    Sorted by request_id like the staged path, so concurrent resends lock in the same order. The
    insert comes first so that the cursor's result is its count of stored rows.
    """
    rows = sorted(rows, key=lambda row: row[1])
    tags_at = INGEST_COLUMNS.index("tags")
    one_row = "(" + ", ".join(["%s"] * len(INGEST_COLUMNS)) + ")"
    values = ", ".join([one_row] * len(rows))
    params = [orjson.dumps(value).decode() if i == tags_at else value for row in rows for i, value in enumerate(row)]
    insert = insert_with_increments_sql(
        f"INSERT INTO usage_usagerecord ({', '.join(INGEST_COLUMNS)}) VALUES {values} "
        f"ON CONFLICT (organization_id, request_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert}; {LOCK_DAYS_SQL}",
            [
                *params,
                *increments_params(organization=organization),
                *lock_days_params(organization_id=organization.pk, days=days),
            ],
        )
        return cursor.fetchone()[0]


def _insert_rows_postgres(organization: Organization, rows: list[tuple], days: set) -> int:
    """COPY into a session temp table, then insert what is new in request_id order, with its rollup increments.

    Sorting makes concurrent batches with the same ids take row locks in the same order, so a batch
    resent concurrently waits for the first copy to commit and then counts its rows as duplicates
    instead of deadlocking.
    """
    columns = ", ".join(INGEST_COLUMNS)
    if len(rows) <= SMALL_BATCH:
        return _insert_rows_values(organization, rows, days)
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        lock_days_shared(organization_id=organization.pk, days=days)
        raw = cursor.cursor
        raw.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM usage_usagerecord WITH NO DATA"
        )
        if nested:  # inside an outer transaction the previous batch's rows are still staged
            raw.execute(f"TRUNCATE {_STAGE}")
        with raw.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
            tags_at = INGEST_COLUMNS.index("tags")
            for row in rows:
                if row[tags_at] is not None:
                    row = (*row[:tags_at], orjson.dumps(row[tags_at]).decode(), *row[tags_at + 1 :])
                copy.write_row(row)
        raw.execute(
            insert_with_increments_sql(
                f"INSERT INTO usage_usagerecord ({columns}) SELECT {columns} FROM {_STAGE} ORDER BY request_id "
                f"ON CONFLICT (organization_id, request_id) DO NOTHING"
            ),
            increments_params(organization=organization),
        )
        return raw.fetchone()[0]


def _insert_rows_orm(rows: list[tuple]) -> int:
    """The portable path (the SQLite demo): skip ids already stored, then insert the rest."""
    org_id = rows[0][0]
    ids = [row[1] for row in rows]
    with transaction.atomic():
        existing = set(
            UsageRecord.objects.filter(organization_id=org_id, request_id__in=ids).values_list("request_id", flat=True)
        )
        new = [UsageRecord(**dict(zip(INGEST_COLUMNS, row, strict=True))) for row in rows if row[1] not in existing]
        UsageRecord.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return len(new)


@dataclass
class RerateLine:
    provider: str
    model: str
    records: int = 0
    old_cost: Decimal = Decimal(0)
    new_cost: Decimal = Decimal(0)

    @property
    def delta(self) -> Decimal:
        return self.new_cost - self.old_cost


@dataclass
class RerateReport:
    """What re-pricing a range changes, in the billing currency; a dry run computes it without writing."""

    currency: str
    start: datetime | None
    end: datetime | None
    dry_run: bool
    examined: int = 0
    changed: int = 0
    newly_priced: int = 0
    still_unpriced: int = 0
    old_total: Decimal = Decimal(0)
    new_total: Decimal = Decimal(0)
    lines: dict[tuple[str, str], RerateLine] = field(default_factory=dict)

    @property
    def delta(self) -> Decimal:
        return self.new_total - self.old_total


_RERATE_FIELDS = ("pricing_status", "price_id", "cost", "cost_currency", "fx_rate", "billing_cost", "priced_at")


class _ChangeWriter:
    """Writes re-priced records in batches, each with a UsageCostChange row saying what it cost before."""

    def __init__(self, *, organization: Organization, now: datetime, fields: tuple[str, ...], batch_size: int = 500):
        self.organization, self.now, self.fields, self.batch_size = organization, now, fields, batch_size
        self.records: list[UsageRecord] = []
        self.changes: list[UsageCostChange] = []

    def add(self, record: UsageRecord, *, reason: str, old_status: str, old_billing_cost: Decimal | None) -> None:
        self.records.append(record)
        self.changes.append(
            UsageCostChange(
                organization=self.organization,
                record_id=record.pk,
                reason=reason,
                old_status=old_status,
                new_status=record.pricing_status,
                old_billing_cost=old_billing_cost,
                new_billing_cost=record.billing_cost,
                changed_at=self.now,
            )
        )
        if len(self.records) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.records:
            tz = self.organization.tz
            mark_days_dirty(
                organization_id=self.organization.pk, days={r.timestamp.astimezone(tz).date() for r in self.records}
            )
            UsageRecord.objects.bulk_update(self.records, self.fields)
            UsageCostChange.objects.bulk_create(self.changes)
            self.records, self.changes = [], []


def usage_rerate(
    *,
    organization: Organization,
    start: datetime | None = None,
    end: datetime | None = None,
    dry_run: bool = True,
    only_not_priced: bool = False,
    chunk_size: int = 2000,
) -> RerateReport:
    """Re-price the organization's usage in [start, end) with today's prices and FX rates.

    The dry run returns the diff finance reviews first; applying writes only the records whose
    price, cost or status changes, each with a UsageCostChange row, so that months already invoiced
    are corrected by adjustment lines on the next invoice instead of by editing the invoice.
    """
    with transaction.atomic():
        if not dry_run:
            advisory_xact_lock(BILLING, organization.pk)
        return _rerate(organization, start, end, dry_run, only_not_priced, chunk_size)


def _rerate(organization, start, end, dry_run, only_not_priced, chunk_size) -> RerateReport:
    revision = pricing_revision()
    book = price_book_for(organization=organization, revision=revision)
    fx = fx_table(revision=revision)
    report = RerateReport(currency=organization.billing_currency, start=start, end=end, dry_run=dry_run)
    records = UsageRecord.objects.for_org(organization)
    if start is not None:
        records = records.filter(timestamp__gte=start)
    if end is not None:
        records = records.filter(timestamp__lt=end)
    if only_not_priced:
        records = records.exclude(pricing_status=PricingStatus.PRICED)
    now = timezone.now()
    writer = _ChangeWriter(organization=organization, now=now, fields=_RERATE_FIELDS)
    fields = (
        "id",
        "provider",
        "model",
        "timestamp",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        *_RERATE_FIELDS,
    )
    for record in records.only(*fields).order_by("id").iterator(chunk_size=chunk_size):
        report.examined += 1
        priced = price_record(book=book, fx=fx, organization=organization, record=record)
        if priced.status != PricingStatus.PRICED:
            report.still_unpriced += 1
        unchanged = (
            priced.status == record.pricing_status
            and priced.price_id == record.price_id
            and priced.cost == record.cost
            and priced.billing_cost == record.billing_cost
        )
        if unchanged:
            continue
        report.changed += 1
        was_priced = record.pricing_status == PricingStatus.PRICED
        if not was_priced and priced.status == PricingStatus.PRICED:
            report.newly_priced += 1
        line = report.lines.setdefault((record.provider, record.model), RerateLine(record.provider, record.model))
        line.records += 1
        line.old_cost += record.billing_cost or 0
        line.new_cost += priced.billing_cost or 0
        report.old_total += record.billing_cost or 0
        report.new_total += priced.billing_cost or 0
        if not dry_run:
            old_status, old_billing_cost = record.pricing_status, record.billing_cost
            record.pricing_status, record.price_id, record.cost = priced.status, priced.price_id, priced.cost
            record.cost_currency, record.fx_rate = priced.cost_currency, priced.fx_rate
            record.billing_cost = priced.billing_cost
            record.priced_at = now if priced.price_id else None
            reason = CostChangeReason.RERATED if was_priced else CostChangeReason.PRICED
            writer.add(record, reason=reason, old_status=old_status, old_billing_cost=old_billing_cost)
    writer.flush()
    return report


def usage_price_unpriced(*, organization: Organization) -> RerateReport:
    """Price every record that waited for a price or an FX rate; safe to run any number of times."""
    return usage_rerate(organization=organization, dry_run=False, only_not_priced=True)


_FX_FIELDS = ("pricing_status", "fx_rate", "billing_cost")


@transaction.atomic
def usage_reconvert(*, organization: Organization, since=None) -> int:
    """Convert priced costs to the billing currency again after FX rates changed; prices stay as they are.

    Takes records in a foreign currency from `since` (a date, in the organization's time zone) and every
    record still waiting for a rate.
    """
    advisory_xact_lock(BILLING, organization.pk)
    fx = fx_table()
    tz = organization.tz
    records = UsageRecord.objects.for_org(organization).filter(cost__isnull=False)
    waiting = Q(pricing_status=PricingStatus.NO_FX_RATE)
    if since is not None:
        moment = datetime.combine(since, datetime.min.time(), tzinfo=tz)
        records = records.filter(waiting | (Q(timestamp__gte=moment) & ~Q(cost_currency=organization.billing_currency)))
    else:
        records = records.filter(waiting)
    writer = _ChangeWriter(organization=organization, now=timezone.now(), fields=_FX_FIELDS)
    count = 0
    for record in records.only("id", "timestamp", "cost", "cost_currency", *_FX_FIELDS).iterator(chunk_size=2000):
        rate = fx.rate(
            from_currency=record.cost_currency,
            to_currency=organization.billing_currency,
            on=record.timestamp.astimezone(tz).date(),
        )
        status = PricingStatus.PRICED if rate is not None else PricingStatus.NO_FX_RATE
        billing_cost = None if rate is None else (record.cost * rate).quantize(COST_PLACES)
        if status == record.pricing_status and billing_cost == record.billing_cost and rate == record.fx_rate:
            continue
        old_status, old_billing_cost = record.pricing_status, record.billing_cost
        record.pricing_status, record.fx_rate, record.billing_cost = status, rate, billing_cost
        reason = CostChangeReason.RECONVERTED if old_status == PricingStatus.PRICED else CostChangeReason.PRICED
        writer.add(record, reason=reason, old_status=old_status, old_billing_cost=old_billing_cost)
        count += 1
    writer.flush()
    return count
