"""Reads of prices: the cached price book of an organization, FX rates, price lists."""

import threading

from django.db import connection
from django.db.models import Q

from apps.pricing.engine import FxTable, PriceBook
from apps.pricing.models import PRICE_FIELDS, FxRate, ModelPrice, PriceList, PricingRevision

_PRICE_FIELDS = (
    "id",
    "organization_id",
    "provider",
    "model",
    "match_pattern",
    "currency",
    *PRICE_FIELDS,
    "effective_from",
    "effective_to",
)

_cache_lock = threading.Lock()
_books: dict[int, tuple[int, PriceBook]] = {}
_fx: tuple[int, FxTable] | None = None


def pricing_revision() -> int:
    """Read on every ingest request: plain SQL, since the ORM would cost more than the query."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT revision FROM {PricingRevision._meta.db_table} WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def price_book_for(*, organization, revision: int | None = None) -> PriceBook:
    """The organization's price book, rebuilt only when prices changed since it was loaded."""
    revision = pricing_revision() if revision is None else revision
    cached = _books.get(organization.pk)
    if cached is not None and cached[0] == revision:
        return cached[1]
    rows = ModelPrice.objects.filter(Q(organization=organization) | Q(organization__isnull=True)).values(*_PRICE_FIELDS)
    book = PriceBook(rows)
    with _cache_lock:
        _books[organization.pk] = (revision, book)
    return book


def fx_table(*, revision: int | None = None) -> FxTable:
    global _fx
    revision = pricing_revision() if revision is None else revision
    if _fx is not None and _fx[0] == revision:
        return _fx[1]
    table = FxTable(FxRate.objects.values("date", "from_currency", "to_currency", "rate"))
    with _cache_lock:
        _fx = (revision, table)
    return table


def price_lists_visible(*, organization):
    """The organization's own lists and the global ones."""
    return PriceList.objects.filter(Q(organization=organization) | Q(organization__isnull=True))


def model_prices_visible(*, organization):
    return ModelPrice.objects.filter(Q(organization=organization) | Q(organization__isnull=True))
