"""Helpers of the budget tests: spend an exact amount through the real ingest path."""

import itertools
from decimal import Decimal

from apps.usage.services import usage_ingest

# test-model costs 2.00 USD per 1M input tokens, so 500,000 input tokens cost exactly 1.00 USD.
TOKENS_PER_USD = 500_000
_ids = itertools.count()


def spend(organization, usd, *, cost_center=None, at=None, model="test-model"):
    """Ingest one call of `model` costing exactly `usd` (usd x 500,000 input tokens at 2.00 per 1M)."""
    record = {
        "request_id": f"spend-{next(_ids)}",
        "model": model,
        "input_tokens": int(Decimal(usd) * TOKENS_PER_USD),
        "output_tokens": 0,
    }
    if cost_center is not None:
        record["cost_center"] = cost_center
    if at is not None:
        record["timestamp"] = at
    result = usage_ingest(organization=organization, api_key=None, raw_records=[record])
    assert result.accepted == 1, result.as_dict()
    return result
