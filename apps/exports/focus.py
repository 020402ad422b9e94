"""FinOps FOCUS 1.2 cost-and-usage rows of one billing period, as CSV lines.

One row is one usage charge: the priced usage of one day (in the organization's time zone) x cost
center x provider x model x price, in the billing currency. Why these choices:

- A single usage charge per group, not one per token class. Its BilledCost is the exact sum of the
  stored cost of its records, with all twelve places: the amounts the ERP CSV, /api/v1/costs and
  invoice lines are made of, so they reconcile to the last decimal. Splitting a charge into input,
  cached-input, cache-write and output charges would re-derive each class's share from the price
  (long-context tiers, fallbacks, FX rates): a second implementation of the pricing rules, and
  rounding residue between the two.
- Hence no unit-price columns: the tokens of a charge are priced at several unit prices. SkuPriceId
  names the price (ModelPrice) that priced the records and SkuPriceDetails carries its unit prices,
  per 1M tokens in its currency (PricingCurrency), so finance can look each one up.
  ConsumedQuantity is the tokens (input, cache reads and writes included, plus output);
  PricingQuantity the same tokens counted in the price list's unit of 1M tokens.
- The portal prices each call once, at the organization's negotiated price or the global one, and
  knows no discounts or commitments: ListCost = ContractedCost = EffectiveCost = BilledCost.
- Who is who (FOCUS 1.2): the organization makes LLM APIs available to its cost centers and bills
  them through the portal, so it is both ProviderName and InvoiceIssuerName (BillingAccount = the
  organization, SubAccount = the cost center); the LLM vendor that produced the service (OpenAI,
  Anthropic...) is PublisherName. With the vendor as ProviderName the spec reads the charge as a
  third-party marketplace sale whose BilledCost must be 0, which is not what the invoice says.
- A file holds what its billing period's invoice bills, so that every priced record is in exactly
  one file and BilledCost per InvoiceId adds up to the invoice's usage and late-usage lines before
  their rounding: the month's usage (once the month is
  closed, the usage received before the invoice's cutoff) as usage charges, and the late usage of
  earlier, invoiced months that the invoice bills as adjustment lines, as charges of ChargeClass
  "Correction" (their ChargePeriod is in the earlier month). InvoiceId is the invoice's number on
  every row, or empty on every row while the month is open. Costs are the records' current ones:
  a price corrected after the close shows in the month's charges, not as a correction (the
  invoice's re-pricing lines are left out, so the sum over all months stays right).
- Only priced usage is exported: a record without a price or FX rate has no cost yet and is never
  billed at zero. The view reports how many such records the month holds.
- Tags holds the user tags that every record of the charge carries with the same value (user tags
  only, so without a prefix: the portal defines no tags of its own).
- Times are UTC (YYYY-MM-DDTHH:MM:SSZ), decimals always carry a decimal point, and ids that are
  numbers in the database get a prefix (SkuPriceId `price-12`): CSV carries no types, so the
  validator infers them from the text. CommitmentDiscountStatus is present and empty (no commitment
  discounts), because the validator's ConsumedQuantity rules read it.
- Custom columns (x_ prefix, as FOCUS requires) give the record model and the token breakdown.
"""

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from operator import itemgetter

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate

from apps.billing.models import Invoice, InvoiceLineRecord, InvoiceState, LineKind
from apps.billing.periods import month_start, period_bounds
from apps.common.money import COST_PLACES
from apps.pricing.selectors import model_prices_visible
from apps.tenancy.models import CostCenter, Organization
from apps.usage.models import PricingStatus, UsageRecord

FOCUS_VERSION = "1.2"

FOCUS_COLUMNS = (
    # The 21 columns FOCUS 1.2 makes mandatory
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    # Recommended
    "ChargeFrequency",
    "InvoiceId",
    "ServiceSubcategory",
    # Conditional: sub accounts, usage measurement, unit pricing, pricing currency, tagging
    "CommitmentDiscountStatus",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingCurrency",
    "PricingCurrencyEffectiveCost",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    # Custom
    "x_Model",
    "x_Requests",
    "x_InputTokens",
    "x_CacheReadTokens",
    "x_CacheWriteTokens",
    "x_OutputTokens",
)

# What the FOCUS applicability criteria call the features this dataset has (focus-validator
# --applicability-criteria): the file is validated against the rules these switch on. Pricing in a
# currency other than the billing currency is supported too, but focus-validator 2.2.1 would then
# also expect unit-price columns that it ties to published list prices (see SkuPriceDetails above).
FOCUS_APPLICABILITY_CRITERIA = (
    "ACCOUNT_NAMING_SUPPORTED",
    "SUB_ACCOUNT_SUPPORTED",
    "TAGGING_SUPPORTED",
    "UNIT_PRICING_SUPPORTED",
    "USAGE_MEASUREMENT_SUPPORTED",
)

SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
PRICING_UNIT = "1000000 Tokens"  # FOCUS unit format for "per 1M tokens", the unit of every price list
TOKENS_PER_PRICING_UNIT = Decimal(1_000_000)
QUANTITY_PLACES = Decimal("1e-6")  # tokens / 1M is exact at six places

# Vendors by the provider names usage and prices carry; an unknown provider is shown as written.
_PUBLISHERS = {
    "openai": "OpenAI",
    "azure": "Microsoft",
    "azure_ai": "Microsoft",
    "anthropic": "Anthropic",
    "gemini": "Google",
    "google": "Google",
    "vertex_ai": "Google",
    "bedrock": "Amazon Web Services",
    "deepseek": "DeepSeek",
    "qwen": "Alibaba Cloud",
    "dashscope": "Alibaba Cloud",
    "mistral": "Mistral AI",
    "xai": "xAI",
    "groq": "Groq",
    "together_ai": "Together AI",
    "fireworks_ai": "Fireworks AI",
    "openrouter": "OpenRouter",
    "novita": "Novita AI",
}
# Usage priced under a bare model name names no provider: the model family tells the vendor.
_PUBLISHERS_BY_MODEL_PREFIX = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "dall-e", "whisper", "tts-"), "OpenAI"),
    (("claude",), "Anthropic"),
    (("gemini", "gemma"), "Google"),
    (("deepseek",), "DeepSeek"),
    (("qwen", "qwq"), "Alibaba Cloud"),
    (("mistral", "mixtral", "codestral", "magistral"), "Mistral AI"),
    (("grok",), "xAI"),
)
UNKNOWN_PUBLISHER = "Unknown"
GENERIC_SERVICE_NAME = "LLM API"

# The grouping of a charge, in the order both queries sort by.
_CHARGE_KEY = ("day", "cost_center_id", "provider", "model", "price_id")

FETCH_ROWS = 2000


class _LineSink:
    def write(self, line: str) -> str:
        return line


def publisher_name(*, provider: str, model: str) -> str:
    if provider:
        return _PUBLISHERS.get(provider.lower(), provider)
    name = model.lower().rsplit("/", 1)[-1]
    for prefixes, publisher in _PUBLISHERS_BY_MODEL_PREFIX:
        if name.startswith(prefixes):
            return publisher
    return UNKNOWN_PUBLISHER


def focus_period_invoice(*, organization: Organization, period: date) -> Invoice | None:
    """The live (not void) invoice of a month, if the month was closed."""
    return _live_invoices(organization).filter(period=month_start(period)).order_by("-id").first()


def focus_period_records(*, organization: Organization, period: date, cost_center_ids: set[int] | None = None):
    """Every usage record of the month (organization's time zone), priced or not."""
    start, end = period_bounds(organization=organization, period=month_start(period))
    return _visible(
        UsageRecord.objects.for_org(organization).filter(timestamp__gte=start, timestamp__lt=end), cost_center_ids
    )


def focus_unpriced_count(*, organization: Organization, period: date, cost_center_ids: set[int] | None = None) -> int:
    """Records of the month left out of the file because they have no cost yet."""
    records = focus_period_records(organization=organization, period=period, cost_center_ids=cost_center_ids)
    return records.exclude(pricing_status=PricingStatus.PRICED).count()


def focus_billed_usage(*, organization: Organization, period: date, invoice: Invoice | None, cost_center_ids=None):
    """The month's priced usage that its invoice bills: received before the cutoff, or all while it is open."""
    records = focus_period_records(organization=organization, period=period, cost_center_ids=cost_center_ids)
    records = records.filter(pricing_status=PricingStatus.PRICED)
    return records if invoice is None else records.filter(received_at__lt=invoice.cutoff_at)


def focus_late_usage(*, organization: Organization, period: date, invoice: Invoice | None, cost_center_ids=None):
    """Priced usage of earlier, invoiced months that this period's invoice bills (or, while open, will bill).

    A closed month's invoice bills the late usage its adjustment lines link. An open month's invoice
    will bill the late usage not yet billed of the closed months right before it: invoices close in
    order, so an earlier month still open would bill it first.
    """
    records = UsageRecord.objects.for_org(organization).filter(pricing_status=PricingStatus.PRICED)
    if invoice is not None:
        linked = InvoiceLineRecord.objects.filter(line__invoice=invoice, line__kind=LineKind.LATE_USAGE)
        return _visible(records.filter(pk__in=linked.values("record_id")), cost_center_ids)
    closed = {i.period: i for i in _live_invoices(organization).filter(period__lt=month_start(period))}
    pending = Q(pk__in=[])
    month = _previous_month(month_start(period))
    while month in closed:
        start, end = period_bounds(organization=organization, period=month)
        pending |= Q(timestamp__gte=start, timestamp__lt=end, received_at__gte=closed[month].cutoff_at)
        month = _previous_month(month)
    billed = InvoiceLineRecord.objects.filter(record=OuterRef("pk")).exclude(line__invoice__state=InvoiceState.VOID)
    return _visible(records.filter(pending).exclude(Exists(billed)), cost_center_ids)


def focus_csv_lines(
    *,
    organization: Organization,
    period: date,
    cost_center_ids: set[int] | None = None,
    fetch_rows: int = FETCH_ROWS,
) -> Iterator[str]:
    """The header, then the period's usage charges, then its corrections (late usage of earlier months)."""
    writer = csv.writer(_LineSink())
    yield writer.writerow(FOCUS_COLUMNS)

    period = month_start(period)
    start, end = period_bounds(organization=organization, period=period)
    invoice = focus_period_invoice(organization=organization, period=period)
    scope = {"organization": organization, "period": period, "invoice": invoice, "cost_center_ids": cost_center_ids}
    common = {
        "BillingAccountId": organization.slug,
        "BillingAccountName": organization.name,
        "BillingCurrency": organization.billing_currency,
        "BillingPeriodStart": _utc(start),
        "BillingPeriodEnd": _utc(end),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "CommitmentDiscountStatus": "",
        "ConsumedUnit": "Tokens",
        "InvoiceId": invoice.number if invoice is not None else "",
        "InvoiceIssuerName": organization.name,
        "PricingUnit": PRICING_UNIT,
        "ProviderName": organization.name,
        "ServiceCategory": SERVICE_CATEGORY,
        "ServiceSubcategory": SERVICE_SUBCATEGORY,
        "SkuMeter": "Tokens",
    }
    charges = _ChargeWriter(organization, writer=writer, fetch_rows=fetch_rows)
    # Inside a transaction the server-side cursors stream instead of being materialised WITH HOLD.
    with transaction.atomic():
        yield from charges.lines(focus_billed_usage(**scope), {**common, "ChargeClass": ""})
        yield from charges.lines(focus_late_usage(**scope), {**common, "ChargeClass": "Correction"})


_SUMMED = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "billed_cost",
    "pricing_cost",
)


class _ChargeWriter:
    """Aggregates records into charges and writes them; prices and cost centers are looked up once."""

    def __init__(self, organization: Organization, *, writer, fetch_rows: int):
        self.tz = organization.tz
        self.writer = writer
        self.fetch_rows = fetch_rows
        self.cost_centers = _CostCenters(organization)
        self.prices = _PriceCache(organization)

    def lines(self, records, common: dict) -> Iterator[str]:
        # One query, so one snapshot: sums per charge and distinct tag set, sorted by charge. The
        # database adds up the records; here the few rows of a charge are added up and their tags
        # intersected as they stream past, so no charge is ever held in memory.
        parts = (
            records.annotate(day=TruncDate("timestamp", tzinfo=self.tz))
            .values(*_CHARGE_KEY, "tags")
            .annotate(
                requests=Count("id"),
                input_tokens=Sum("input_tokens"),
                output_tokens=Sum("output_tokens"),
                cache_read_tokens=Sum("cache_read_tokens"),
                cache_write_tokens=Sum("cache_write_tokens"),
                billed_cost=Sum("billing_cost"),
                pricing_cost=Sum("cost"),
            )
            .order_by(*_CHARGE_KEY)
        )
        by_charge = groupby(parts.iterator(chunk_size=self.fetch_rows), key=itemgetter(*_CHARGE_KEY))
        for _key, charge_parts in by_charge:
            charge = next(charge_parts)
            shared_tags = dict(charge["tags"] or {})
            for part in charge_parts:
                for name in _SUMMED:
                    charge[name] += part[name]
                shared_tags = _shared(shared_tags, part["tags"] or {})
            row = _charge_row(
                charge,
                common=common,
                tz=self.tz,
                cost_center=self.cost_centers[charge["cost_center_id"]],
                price=self.prices.get(charge["price_id"]),
                tags=shared_tags,
            )
            yield self.writer.writerow(row[column] for column in FOCUS_COLUMNS)


def _charge_row(charge: dict, *, common: dict, tz, cost_center, price: dict, tags: dict) -> dict:
    day: date = charge["day"]
    model = charge["model"]
    publisher = publisher_name(provider=charge["provider"] or price["provider"], model=model)
    known_publisher = publisher != UNKNOWN_PUBLISHER
    requests = charge["requests"]
    tokens = charge["input_tokens"] + charge["output_tokens"]
    cost = _money(charge["billed_cost"])
    code, name = cost_center
    return {
        **common,
        "BilledCost": cost,
        "ContractedCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ChargePeriodStart": _utc(datetime.combine(day, time.min, tzinfo=tz)),
        "ChargePeriodEnd": _utc(datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)),
        "ChargeDescription": (
            f"{model}{f' via {publisher}' if known_publisher else ''}: "
            f"{requests} request{'' if requests == 1 else 's'}, "
            f"{charge['input_tokens']} input and {charge['output_tokens']} output tokens"
        ),
        "ConsumedQuantity": _decimal_text(Decimal(tokens), Decimal("0.1")),
        "PricingQuantity": _decimal_text(Decimal(tokens) / TOKENS_PER_PRICING_UNIT, QUANTITY_PLACES),
        "PublisherName": publisher,
        "ServiceName": f"{publisher} API" if known_publisher else GENERIC_SERVICE_NAME,
        "PricingCurrency": price["currency"],
        "PricingCurrencyEffectiveCost": _money(charge["pricing_cost"]),
        "SkuId": price["sku_id"],
        "SkuPriceId": price["sku_price_id"],
        "SkuPriceDetails": price["details"],
        "SubAccountId": code,
        "SubAccountName": name,
        "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if tags else "",
        "x_Model": model,
        "x_Requests": charge["requests"],
        "x_InputTokens": charge["input_tokens"],
        "x_CacheReadTokens": charge["cache_read_tokens"],
        "x_CacheWriteTokens": charge["cache_write_tokens"],
        "x_OutputTokens": charge["output_tokens"],
    }


def _live_invoices(organization: Organization):
    return Invoice.objects.for_org(organization).exclude(state=InvoiceState.VOID)


def _visible(records, cost_center_ids: set[int] | None):
    return records if cost_center_ids is None else records.filter(cost_center_id__in=cost_center_ids)


def _previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


class _CostCenters(dict):
    """(code, name) by id: all of them up front, and one made while the export runs when it shows up."""

    def __init__(self, organization: Organization):
        self.organization = organization
        super().__init__(self._rows(CostCenter.objects.for_org(organization)))

    def __missing__(self, pk: int):
        self.update(self._rows(CostCenter.objects.for_org(self.organization).filter(pk=pk)))
        return self[pk]

    @staticmethod
    def _rows(cost_centers):
        return ((pk, (code, name)) for pk, code, name in cost_centers.values_list("id", "code", "name"))


class _PriceCache:
    """The SKU columns of each price a period's usage was priced at, fetched once per price."""

    _UNIT_PRICES = (
        ("input_price", "x_InputPrice"),
        ("cached_input_price", "x_CachedInputPrice"),
        ("cache_write_price", "x_CacheWritePrice"),
        ("output_price", "x_OutputPrice"),
        ("long_context_threshold", "x_LongContextThresholdTokens"),
        ("long_input_price", "x_LongContextInputPrice"),
        ("long_cached_input_price", "x_LongContextCachedInputPrice"),
        ("long_cache_write_price", "x_LongContextCacheWritePrice"),
        ("long_output_price", "x_LongContextOutputPrice"),
    )

    def __init__(self, organization: Organization):
        self.organization = organization
        self._prices: dict[int, dict] = {}

    def get(self, price_id: int) -> dict:
        if price_id not in self._prices:
            fields = ("provider", "model", "currency", *(field for field, _ in self._UNIT_PRICES))
            row = model_prices_visible(organization=self.organization).filter(pk=price_id).values(*fields).get()
            self._prices[price_id] = {
                "provider": row["provider"],
                "currency": row["currency"],
                "sku_id": f"{row['provider']}/{row['model']}" if row["provider"] else row["model"],
                "sku_price_id": f"price-{price_id}",
                "details": _json_object((key, row[field]) for field, key in self._UNIT_PRICES),
            }
        return self._prices[price_id]


def _json_object(pairs) -> str:
    """Decimals as exact JSON numbers (json.dumps would need floats); None values left out."""
    items = [f"{json.dumps(key)}:{_plain(value)}" for key, value in pairs if value is not None]
    return "{" + ",".join(items) + "}"


def _plain(value) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def _shared(tags: dict, other: dict) -> dict:
    return {key: value for key, value in tags.items() if other.get(key) == value}


def _money(amount: Decimal) -> str:
    """All the places a record's cost keeps, so that charges add up exactly to what was billed."""
    return _decimal_text(amount, COST_PLACES)


def _decimal_text(value: Decimal, places: Decimal) -> str:
    return format(value.quantize(places), "f")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
