"""Shared fixtures: an organization, members, API keys and API clients, on the real PostgreSQL."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.pricing import selectors as pricing_selectors
from apps.tenancy.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Price books are cached per process by revision; a rolled-back test must not leak its book."""
    pricing_selectors._books.clear()
    pricing_selectors._fx = None
    cache.clear()
    yield


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="acme", name="Acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="globex", name="Globex")


@pytest.fixture
def ingest_key(org):
    return make_api_key(org, scopes=("ingest",))[1]


@pytest.fixture
def read_key(org):
    return make_api_key(org, scopes=("read",))[1]


@pytest.fixture
def full_key(org):
    return make_api_key(org, scopes=("ingest", "read"))[1]


def client_with_key(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def api(full_key):
    """An API client of `org` holding a key with both scopes."""
    return client_with_key(full_key)


@pytest.fixture
def other_api(other_org):
    return client_with_key(make_api_key(other_org, scopes=("ingest", "read"))[1])


@pytest.fixture
def member_client(org):
    """Returns a logged-in API client for a new member of `org` with the given role."""

    def make(role=Role.FINANCE, organization=None, cost_centers=()):
        membership = MembershipFactory(organization=organization or org, user=UserFactory(), role=role)
        if cost_centers:
            membership.cost_centers.set(cost_centers)
        client = APIClient()
        client.force_login(membership.user)
        return client

    return make
