"""Fixtures of the budget tests: a priced model, a cost-center tree, members, spend and a webhook receiver."""

import pytest
from rest_framework.test import APIClient

from apps.tenancy.models import Role
from tests.factories import CostCenterFactory, MembershipFactory, ModelPriceFactory, PriceListFactory, UserFactory
from tests.integrations.receiver import webhook_receiver  # noqa: F401  (the fixture)


@pytest.fixture
def priced_model(db):
    """A global price for `test-model`: 2.00 input, 0.50 cached input, 8.00 output per 1M tokens (USD)."""
    return ModelPriceFactory(
        price_list=PriceListFactory(),
        model="test-model",
        input_price="2.00",
        cached_input_price="0.50",
        output_price="8.00",
    )


@pytest.fixture
def tree(org, priced_model):
    """cc_product with its child cc_search; cc_ops beside them."""
    product = CostCenterFactory(organization=org, code="cc_product")
    search = CostCenterFactory(organization=org, code="cc_search", parent=product)
    ops = CostCenterFactory(organization=org, code="cc_ops")
    return product, search, ops


class Member:
    """A logged-in member: the user, their membership and an API client signed in as them."""

    def __init__(self, organization, role, cost_centers=(), email=None):
        user = UserFactory(**({"username": email, "email": email} if email else {}))
        self.membership = MembershipFactory(organization=organization, user=user, role=role)
        if cost_centers:
            self.membership.cost_centers.set(cost_centers)
        self.user = user
        self.client = APIClient()
        self.client.force_login(user)


@pytest.fixture
def member(org):
    """Returns a new member of `org` (or of `organization`) with the given role and owned cost centers."""

    def make(role=Role.FINANCE, cost_centers=(), organization=None, email=None):
        return Member(organization or org, role, cost_centers, email)

    return make
