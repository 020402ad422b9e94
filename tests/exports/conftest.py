"""Fixtures of the export tests: prices, cost centers, usage that arrived before any close, CSV reading."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.usage.models import UsageRecord
from apps.usage.services import usage_ingest
from tests.factories import CostCenterFactory, ModelPriceFactory, PriceListFactory


@pytest.fixture
def priced_model(db):
    """A global price for `test-model`: 2.00 input, 0.50 cached input, 3.00 cache write, 8.00 output per 1M (USD)."""
    return ModelPriceFactory(
        price_list=PriceListFactory(),
        model="test-model",
        input_price=Decimal("2.00"),
        cached_input_price=Decimal("0.50"),
        cache_write_price=Decimal("3.00"),
        output_price=Decimal("8.00"),
    )


@pytest.fixture
def openai_price(db):
    """OpenAI's gpt-4.1 and its dated snapshots: 2.00 input, 8.00 output per 1M (USD)."""
    return ModelPriceFactory(
        price_list=PriceListFactory(),
        provider="openai",
        model="gpt-4.1",
        match_pattern=r"gpt-4\.1(-\d{4}-\d{2}-\d{2})?",
        input_price=Decimal("2.00"),
        cached_input_price=Decimal("0.50"),
        output_price=Decimal("8.00"),
    )


@pytest.fixture
def tree(org):
    """cc_product with child cc_search; cc_ops alone."""
    product = CostCenterFactory(organization=org, code="cc_product", name="Product")
    search = CostCenterFactory(organization=org, code="cc_search", name="Search", parent=product)
    ops = CostCenterFactory(organization=org, code="cc_ops", name="Operations")
    return product, search, ops


def ingest(org, *records):
    """Usage that reached the portal an hour ago, well before any close a test makes."""
    result = usage_ingest(organization=org, api_key=None, raw_records=list(records))
    assert result.rejected == 0, result.errors
    ids = [r["request_id"] for r in records]
    UsageRecord.objects.for_org(org).filter(request_id__in=ids).update(received_at=timezone.now() - timedelta(hours=1))
    return result


def body_text(response) -> str:
    return b"".join(response.streaming_content).decode()


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_rows(response) -> list[dict]:
    return parse_csv(body_text(response))
