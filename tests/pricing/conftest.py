"""Fixtures of the pricing tests: price lists, an organization billing in EUR, the LiteLLM snapshot."""

import json
from pathlib import Path

import pytest

from tests.factories import OrganizationFactory, PriceListFactory

LITELLM_SNAPSHOT = Path("/work/shared/data/litellm_model_prices.json")


@pytest.fixture(scope="session")
def litellm_snapshot_path() -> str:
    return str(LITELLM_SNAPSHOT)


@pytest.fixture(scope="session")
def litellm_snapshot() -> dict:
    """The real LiteLLM cost map (4,878 entries), read once."""
    return json.loads(LITELLM_SNAPSHOT.read_text())


@pytest.fixture
def global_list(db):
    return PriceListFactory(organization=None, name="test global prices")


@pytest.fixture
def org_list(org):
    return PriceListFactory(organization=org, name="acme negotiated")


@pytest.fixture
def berlin_org(db):
    """Bills in EUR and cuts days in Europe/Berlin (UTC+1 in winter)."""
    return OrganizationFactory(slug="berlin", name="Berlin GmbH", billing_currency="EUR", timezone="Europe/Berlin")
