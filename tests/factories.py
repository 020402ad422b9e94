"""factory_boy factories for the rows tests need; services are used where they own the invariants."""

from datetime import UTC, datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from apps.pricing.models import PRICING_EPOCH, FxRate, ModelPrice, PriceList
from apps.tenancy.models import CostCenter, Membership, Organization, Role
from apps.tenancy.services import api_key_create, organization_create


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: f"Org {o.slug}")
    billing_currency = "USD"
    timezone = "UTC"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return organization_create(
            slug=kwargs["slug"],
            name=kwargs["name"],
            billing_currency=kwargs["billing_currency"],
            timezone_name=kwargs["timezone"],
            strict_attribution=kwargs.get("strict_attribution", False),
            grace_days=kwargs.get("grace_days", 3),
        )


class CostCenterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostCenter

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"cc_{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("_", " ").title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


def make_api_key(organization, scopes=("ingest", "read"), **kwargs):
    """An API key row and its plaintext, issued through the service as in production."""
    return api_key_create(organization=organization, name="test key", scopes=list(scopes), **kwargs)


class PriceListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceList

    organization = None
    name = factory.Sequence(lambda n: f"list {n}")


class ModelPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelPrice

    price_list = factory.SubFactory(PriceListFactory)
    organization = factory.LazyAttribute(lambda o: o.price_list.organization)
    provider = ""
    model = factory.Sequence(lambda n: f"test-model-{n}")
    currency = "USD"
    input_price = Decimal("2.00")
    cached_input_price = Decimal("0.50")
    cache_write_price = None
    output_price = Decimal("8.00")
    effective_from = PRICING_EPOCH

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from apps.pricing.services import pricing_revision_bump

        price = super()._create(model_class, *args, **kwargs)
        pricing_revision_bump()
        return price


class FxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FxRate

    date = factory.LazyFunction(lambda: datetime(2026, 1, 1, tzinfo=UTC).date())
    from_currency = "USD"
    to_currency = "EUR"
    rate = Decimal("0.9")
    source = "test"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from apps.pricing.services import pricing_revision_bump

        rate = super()._create(model_class, *args, **kwargs)
        pricing_revision_bump()
        return rate


def usage_payload(request_id="r-1", **fields):
    """One ingest record as a client sends it: 1,000 input and 100 output tokens of `test-model`."""
    body = {"request_id": request_id, "model": "test-model", "input_tokens": 1000, "output_tokens": 100}
    body.update(fields)
    return body
