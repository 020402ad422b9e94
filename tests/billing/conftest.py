from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.billing.services import invoice_close
from apps.tenancy.models import Role
from apps.usage.models import UsageRecord
from apps.usage.services import usage_ingest
from tests.factories import CostCenterFactory, MembershipFactory, ModelPriceFactory, PriceListFactory, UserFactory


@pytest.fixture
def price(db):
    """test-model: 2.00 input, 8.00 output per 1M tokens (USD), so 1,000 in + 100 out cost 0.0028."""
    return ModelPriceFactory(
        price_list=PriceListFactory(),
        model="test-model",
        input_price=Decimal("2.00"),
        cached_input_price=None,
        output_price=Decimal("8.00"),
    )


@pytest.fixture
def search(org):
    return CostCenterFactory(organization=org, code="cc_search")


def ingest(org, *records):
    """Usage that reached the portal an hour ago, well before any close the test makes."""
    result = usage_ingest(organization=org, api_key=None, raw_records=list(records))
    assert result.rejected == 0, result.errors
    ids = [r["request_id"] for r in records]
    UsageRecord.objects.for_org(org).filter(request_id__in=ids).update(received_at=timezone.now() - timedelta(hours=1))
    return result


def close(org, period, minutes_ahead=0, **kwargs):
    """Close now, or as if some minutes from now (to bill usage that arrived after an earlier close)."""
    now = timezone.now() + timedelta(minutes=minutes_ahead)
    return invoice_close(organization=org, period=period, now=now, **kwargs)


def arrive_late(invoice, **filters):
    """Usage that reached the portal after the invoice was closed."""
    UsageRecord.objects.for_org(invoice.organization).filter(**filters).update(
        received_at=invoice.cutoff_at + timedelta(minutes=1)
    )


@pytest.fixture
def finance_users(org):
    """Two finance members: four eyes need both."""
    first, second = UserFactory(), UserFactory()
    MembershipFactory(organization=org, user=first, role=Role.FINANCE)
    MembershipFactory(organization=org, user=second, role=Role.FINANCE)
    return first, second
