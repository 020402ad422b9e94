"""Reconciliation of a provider's usage export against ingested usage, per day and model."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.integrations.models import ProviderUsageImport
from apps.tenancy.models import Role
from apps.usage.services import usage_ingest
from tests.factories import ModelPriceFactory, PriceListFactory, usage_payload

OPENAI_EXPORT = """start_time,model,input_tokens,output_tokens,num_model_requests,amount_value,amount_currency
2026-03-02,test-model,2000,200,2,0.0056,usd
2026-03-03,test-model,1500,100,1,0.0038,usd
"""


@pytest.fixture
def usage(org):
    ModelPriceFactory(price_list=PriceListFactory(), model="test-model", provider="openai",
                      input_price=Decimal("2.00"), cached_input_price=None, output_price=Decimal("8.00"))
    records = [
        usage_payload("a", provider="openai", timestamp="2026-03-02T10:00:00Z"),
        usage_payload("b", provider="openai", timestamp="2026-03-02T23:59:00Z"),
        usage_payload("c", provider="openai", timestamp="2026-03-03T08:00:00Z"),
        usage_payload("other-provider", provider="azure", timestamp="2026-03-03T08:00:00Z"),
        usage_payload("d", provider="openai", model="unlisted-model", timestamp="2026-03-03T09:00:00Z"),
    ]
    assert usage_ingest(organization=org, api_key=None, raw_records=records).accepted == 5


def upload(client, text=OPENAI_EXPORT, provider="openai", name="usage.csv"):
    return client.post("/api/v1/reconciliation/imports",
                       {"provider": provider, "file": SimpleUploadedFile(name, text.encode(), "text/csv")})


def test_variance_per_day_and_model(usage, member_client):
    finance = member_client(role=Role.FINANCE)
    created = upload(finance)
    assert created.status_code == 201 and created.json()["rows"] == 2
    body = finance.get(f"/api/v1/reconciliation/imports/{created.json()['id']}").json()
    rows = {(r["day"], r["model"]): r for r in body["variance"]}
    march_2 = rows[("2026-03-02", "test-model")]
    assert march_2["ingested"] == {"input_tokens": 2000, "output_tokens": 200, "requests": 2, "cost": "0.0056000000"}
    assert march_2["token_variance"] == 0 and march_2["cost_variance"] == "0.0000000000"
    march_3 = rows[("2026-03-03", "test-model")]
    # the provider billed 500 input tokens more than were reported: 500 x 2.00 per 1M = 0.001
    assert march_3["token_variance"] == -500 and march_3["cost_variance"] == "-0.0010000000"
    unlisted = rows[("2026-03-03", "unlisted-model")]
    assert unlisted["provider"]["cost"] is None and unlisted["ingested"]["requests"] == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("when,what\n2026-03-01,x\n", "header: needs day and model"),
        ("date,model,input_tokens\nyesterday,m,1\n", "line 2: day"),
        ("date,model,input_tokens\n2026-03-01,m,lots\n", "input_tokens: 'lots' is not a whole number"),
        ("date,model,cost,currency\n2026-03-01,m,1.0,dollars\n", "currency: 'DOLLARS'"),
        ("date,model,input_tokens\n", "no usage rows"),
    ],
)
def test_bad_files_store_nothing_and_name_the_line(usage, member_client, text, message):
    response = upload(member_client(role=Role.FINANCE), text=text)
    assert response.status_code == 400
    assert any(message in error for error in response.json()["file"]), response.json()
    assert not ProviderUsageImport.objects.exists()


def test_viewers_cannot_upload_and_other_organizations_see_nothing(usage, member_client, other_org, other_api):
    assert upload(member_client(role=Role.VIEWER)).status_code == 403
    source_id = upload(member_client(role=Role.FINANCE)).json()["id"]
    assert other_api.get(f"/api/v1/reconciliation/imports/{source_id}").status_code == 404
    assert other_api.get("/api/v1/reconciliation/imports").json() == {"results": []}
    outsider = member_client(role=Role.FINANCE, organization=other_org)
    assert outsider.get(f"/api/v1/reconciliation/imports/{source_id}", HTTP_X_ORGANIZATION="acme").status_code == 404
