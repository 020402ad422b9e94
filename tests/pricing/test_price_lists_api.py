"""/api/v1/price-lists: global lists for everyone, negotiated lists only for their organization."""

from apps.pricing.models import PriceList
from tests.factories import ModelPriceFactory, PriceListFactory


def test_lists_global_and_own_price_lists(api, org, other_org):
    own = PriceListFactory(organization=org, name="Acme negotiated")
    PriceListFactory(organization=other_org, name="Globex negotiated")
    ModelPriceFactory(price_list=own, model="test-model")
    body = api.get("/api/v1/price-lists").json()
    names = {item["name"]: item for item in body}
    assert "Acme negotiated" in names and "Globex negotiated" not in names
    assert names["Acme negotiated"]["scope"] == "organization" and names["Acme negotiated"]["prices"] == 1
    assert names["costportal default prices"]["scope"] == "global"


def test_prices_of_a_list_are_strings_per_million_tokens(api, org):
    own = PriceListFactory(organization=org)
    ModelPriceFactory(price_list=own, model="test-model", input_price="1.25", output_price="10")
    body = api.get(f"/api/v1/price-lists/{own.pk}/prices").json()
    [price] = body["results"]
    assert price["model"] == "test-model" and price["input_price"] == "1.250000000000000"
    assert price["output_price"] == "10.000000000000000"


def test_default_list_is_filterable_by_model(api):
    default = PriceList.objects.get(name="costportal default prices")
    body = api.get(f"/api/v1/price-lists/{default.pk}/prices", {"model": "gpt-5"}).json()
    assert [(p["model"], p["input_price"], p["cached_input_price"], p["output_price"]) for p in body["results"]] == [
        ("gpt-5", "1.250000000000000", "0.125000000000000", "10.000000000000000")
    ]


def test_another_organizations_price_list_is_404(api, other_org):
    theirs = PriceListFactory(organization=other_org)
    ModelPriceFactory(price_list=theirs)
    assert api.get(f"/api/v1/price-lists/{theirs.pk}").status_code == 404
    assert api.get(f"/api/v1/price-lists/{theirs.pk}/prices").status_code == 404


def test_ingest_only_key_cannot_read_prices(ingest_key):
    from tests.conftest import client_with_key

    assert client_with_key(ingest_key).get("/api/v1/price-lists").status_code == 403
