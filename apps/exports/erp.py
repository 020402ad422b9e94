"""The ERP CSV: one line per usage record of a range, read through a server-side cursor at constant memory."""

import csv
from collections.abc import Iterator
from datetime import datetime

from django.db import transaction

from apps.common.money import format_cost
from apps.tenancy.models import CostCenter, Organization
from apps.usage.models import UsageRecord

ERP_COLUMNS = (
    "date",
    "user_id",
    "cost_center",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "currency",
    "request_id",
)

# Rows per round trip of the server-side cursor: enough to amortise the round trip, few enough that
# memory stays flat however many millions of rows the range holds.
FETCH_ROWS = 5000

# A spreadsheet evaluates a cell that starts with one of these as a formula (CSV injection): text cells
# that start so get a leading apostrophe, as OWASP recommends. Numbers and dates never start so.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _LineSink:
    """What csv.writer writes to: hands back the line instead of storing it."""

    def write(self, line: str) -> str:
        return line


class _CostCenterCodes(dict):
    """Cost-center codes by id; one created while the export runs is read when its first record shows up."""

    def __init__(self, organization: Organization):
        self.organization = organization
        # A handful of rows read up front spare the big query a join per record.
        super().__init__(CostCenter.objects.for_org(organization).values_list("id", "code"))

    def __missing__(self, pk: int) -> str:
        self[pk] = CostCenter.objects.for_org(self.organization).values_list("code", flat=True).get(pk=pk)
        return self[pk]


def spreadsheet_safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def erp_csv_lines(
    *,
    organization: Organization,
    start: datetime,
    end: datetime,
    cost_center_ids: set[int] | None = None,
    fetch_rows: int = FETCH_ROWS,
) -> Iterator[str]:
    """The header, then one CSV line per record with start <= timestamp < end, oldest first.

    `cost_center_ids` limits the records to those cost centers (a filter, or what an owner may see).
    Dates are in the organization's time zone; cost is the billing-currency cost with ten decimals,
    empty while the record waits for a price or an FX rate.
    """
    tz = organization.tz
    currency = organization.billing_currency
    writer = csv.writer(_LineSink())
    yield writer.writerow(ERP_COLUMNS)

    codes = _CostCenterCodes(organization)
    records = UsageRecord.objects.for_org(organization).filter(timestamp__gte=start, timestamp__lt=end)
    if cost_center_ids is not None:
        records = records.filter(cost_center_id__in=cost_center_ids)
    rows = records.order_by("timestamp", "id").values_list(
        "timestamp",
        "user_id",
        "cost_center_id",
        "model",
        "input_tokens",
        "output_tokens",
        "billing_cost",
        "request_id",
    )
    # Outside a transaction Django declares the cursor WITH HOLD, and PostgreSQL then materialises the
    # whole result before the first row; inside one, rows stream as they are fetched.
    with transaction.atomic():
        for row in rows.iterator(chunk_size=fetch_rows):
            timestamp, user_id, cost_center_id, model, input_tokens, output_tokens, cost, request_id = row
            yield writer.writerow(
                (
                    timestamp.astimezone(tz).isoformat(),
                    spreadsheet_safe(user_id),
                    spreadsheet_safe(codes[cost_center_id]),
                    spreadsheet_safe(model),
                    input_tokens,
                    output_tokens,
                    format_cost(cost) or "",
                    currency,
                    spreadsheet_safe(request_id),
                )
            )
