"""The cost formula and the in-memory price book that finds the price of a call.

A price book holds every price that can apply to one organization (its own list and the global
lists) and every FX rate, loaded once per pricing revision, so that pricing a batch of 5,000 calls
costs no query per call.
"""

import bisect
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from apps.common.money import COST_PLACES, PER_MILLION


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """One price version, per 1M tokens."""

    id: int
    currency: str
    input: Decimal
    cached_input: Decimal | None
    cache_write: Decimal | None
    output: Decimal
    long_context_threshold: int | None = None
    long_input: Decimal | None = None
    long_cached_input: Decimal | None = None
    long_cache_write: Decimal | None = None
    long_output: Decimal | None = None


def compute_cost(
    prices: UnitPrices,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """PRODUCT.md section 3: input counts cache reads and writes; without a cache price they cost input.

    Above a long-context threshold every token of the request is priced at the tier's prices.
    """
    if prices.long_context_threshold is not None and input_tokens > prices.long_context_threshold:
        input_price = prices.long_input
        cached_price = prices.long_cached_input if prices.long_cached_input is not None else input_price
        write_price = prices.long_cache_write if prices.long_cache_write is not None else input_price
        output_price = prices.long_output
    else:
        input_price = prices.input
        cached_price = prices.cached_input if prices.cached_input is not None else input_price
        write_price = prices.cache_write if prices.cache_write is not None else input_price
        output_price = prices.output
    uncached = input_tokens - cache_read_tokens - cache_write_tokens
    total = (
        uncached * input_price
        + cache_read_tokens * cached_price
        + cache_write_tokens * write_price
        + output_tokens * output_price
    )
    return (total / PER_MILLION).quantize(COST_PLACES)


@dataclass(frozen=True, slots=True)
class _Version:
    effective_from: datetime
    effective_to: datetime | None
    prices: UnitPrices


def _recency(version: _Version) -> tuple[datetime, int]:
    return version.effective_from, version.prices.id


def _pick(versions: list[_Version], at: datetime) -> UnitPrices | None:
    """The newest version whose range holds `at`; versions are sorted newest first."""
    for version in versions:
        if version.effective_from <= at:
            if version.effective_to is None or at < version.effective_to:
                return version.prices
            return None
    return None


class PriceBook:
    """Prices of one organization: its own list first, then the global lists."""

    def __init__(self, rows):
        # scope 0 = the organization's list, 1 = global; key (scope, provider, model)
        self._exact: dict[tuple[int, str, str], list[_Version]] = {}
        self._patterns: dict[tuple[int, str], list[tuple[re.Pattern, list[_Version]]]] = {}
        pattern_index: dict[tuple[int, str, str], list[_Version]] = {}
        for row in rows:
            scope = 1 if row["organization_id"] is None else 0
            provider = row["provider"].lower()
            version = _Version(row["effective_from"], row["effective_to"], _unit_prices(row))
            self._exact.setdefault((scope, provider, row["model"].lower()), []).append(version)
            if row["match_pattern"]:
                pattern_index.setdefault((scope, provider, row["match_pattern"]), []).append(version)
        # Two global lists may price a model from the same instant: the price created last wins, not
        # whichever row the database happens to return first.
        for versions in self._exact.values():
            versions.sort(key=_recency, reverse=True)
        for (scope, provider, pattern), versions in pattern_index.items():
            versions.sort(key=_recency, reverse=True)
            compiled = re.compile(pattern, re.IGNORECASE)
            self._patterns.setdefault((scope, provider), []).append((compiled, versions))
        self._candidates: dict[tuple[str, str], list[list[_Version]]] = {}

    def _candidate_lists(self, provider: str, model: str) -> list[list[_Version]]:
        """Version lists in lookup order; memoised because a batch repeats few (provider, model) pairs."""
        key = (provider, model)
        found = self._candidates.get(key)
        if found is None:
            found = []
            providers = (provider, "") if provider else ("",)
            for scope in (0, 1):
                for prov in providers:
                    exact = self._exact.get((scope, prov, model))
                    if exact:
                        found.append(exact)
                    for compiled, versions in self._patterns.get((scope, prov), ()):
                        if compiled.fullmatch(model):
                            found.append(versions)
            self._candidates[key] = found
        return found

    def lookup(self, *, provider: str, model: str, at: datetime) -> UnitPrices | None:
        for versions in self._candidate_lists(provider.lower(), model.lower()):
            prices = _pick(versions, at)
            if prices is not None:
                return prices
        if not provider and "/" in model:
            # A client that names the model as price lists do (`gemini/gemini-2.5-flash`) means that provider.
            named_provider, bare_model = model.split("/", 1)
            return self.lookup(provider=named_provider, model=bare_model, at=at)
        return None


class FxTable:
    """FX rates by pair: the latest rate on or before a day, or None when there is none."""

    def __init__(self, rows):
        pairs: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
        for row in rows:
            pairs.setdefault((row["from_currency"], row["to_currency"]), []).append((row["date"], row["rate"]))
        self._dates: dict[tuple[str, str], list[date]] = {}
        self._rates: dict[tuple[str, str], list[Decimal]] = {}
        for pair, items in pairs.items():
            items.sort()
            self._dates[pair] = [d for d, _ in items]
            self._rates[pair] = [r for _, r in items]

    def rate(self, *, from_currency: str, to_currency: str, on: date) -> Decimal | None:
        if from_currency == to_currency:
            return Decimal(1)
        dates = self._dates.get((from_currency, to_currency))
        if not dates:
            return None
        i = bisect.bisect_right(dates, on)
        return self._rates[(from_currency, to_currency)][i - 1] if i else None


def _unit_prices(row) -> UnitPrices:
    return UnitPrices(
        id=row["id"],
        currency=row["currency"],
        input=row["input_price"],
        cached_input=row["cached_input_price"],
        cache_write=row["cache_write_price"],
        output=row["output_price"],
        long_context_threshold=row["long_context_threshold"],
        long_input=row["long_input_price"],
        long_cached_input=row["long_cached_input_price"],
        long_cache_write=row["long_cache_write_price"],
        long_output=row["long_output_price"],
    )
