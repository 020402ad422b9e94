"""GET /api/v1/exports/erp.csv: content, ranges, roles, tenancy and streaming (PRODUCT.md sections 5, 8, 9)."""

from datetime import UTC, datetime

import pytest
from django.http import StreamingHttpResponse

from apps.exports.erp import erp_csv_lines
from apps.tenancy.models import Role
from tests.conftest import client_with_key
from tests.exports.conftest import body_text, csv_rows, ingest
from tests.factories import CostCenterFactory, OrganizationFactory, make_api_key, usage_payload

pytestmark = pytest.mark.usefixtures("priced_model")

URL = "/api/v1/exports/erp.csv"
MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
HEADER = "date,user_id,cost_center,model,input_tokens,output_tokens,cost,currency,request_id"


@pytest.fixture
def berlin(db):
    """An organization that reports in Berlin time and bills in USD."""
    organization = OrganizationFactory(slug="berlin", name="Berlin GmbH", timezone="Europe/Berlin")
    CostCenterFactory(organization=organization, code="cc_search", name="Search")
    return organization


class TestContent:
    def test_rows_are_exact_with_local_time_cost_places_and_an_empty_cost_when_unpriced(self, berlin):
        ingest(
            berlin,
            usage_payload("r-priced", user_id="u1", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("r-unpriced", user_id="u2", model="unknown-model", timestamp="2026-03-02T10:30:00Z"),
            usage_payload("r-summer", user_id="u1", cost_center="cc_search", timestamp="2026-03-31T10:00:00Z"),
        )
        client = client_with_key(make_api_key(berlin, scopes=("read",))[1])
        response = client.get(URL, MARCH)
        assert response.status_code == 200
        # 1,000 input x 2.00 + 100 output x 8.00 per 1M = 0.0028; Berlin is UTC+1 in March, +2 from the 29th
        assert body_text(response) == (
            f"{HEADER}\r\n"
            "2026-03-02T11:00:00+01:00,u1,cc_search,test-model,1000,100,0.0028000000,USD,r-priced\r\n"
            "2026-03-02T11:30:00+01:00,u2,unallocated,unknown-model,1000,100,,USD,r-unpriced\r\n"
            "2026-03-31T12:00:00+02:00,u1,cc_search,test-model,1000,100,0.0028000000,USD,r-summer\r\n"
        )

    def test_range_dates_are_cut_in_the_organizations_time_zone_with_an_inclusive_end(self, berlin):
        ingest(
            berlin,
            usage_payload("before", timestamp="2026-02-28T22:59:59Z"),  # 23:59:59 on Feb 28 in Berlin
            usage_payload("first", timestamp="2026-02-28T23:00:00Z"),  # midnight of March 1 in Berlin
            usage_payload("last", timestamp="2026-03-31T21:59:59Z"),
            usage_payload("after", timestamp="2026-03-31T22:00:00Z"),
        )
        client = client_with_key(make_api_key(berlin, scopes=("read",))[1])
        assert [r["request_id"] for r in csv_rows(client.get(URL, MARCH))] == ["first", "last"]
        by_time = client.get(URL, {"start": "2026-02-28T22:59:59Z", "end": "2026-02-28T23:00:00Z"})
        assert [r["request_id"] for r in csv_rows(by_time)] == ["before"]

    def test_text_is_quoted_and_kept_from_running_as_a_spreadsheet_formula(self, api, org):
        ingest(
            org,
            usage_payload("r-1", user_id='Doe, "Jane"', timestamp="2026-03-02T10:00:00Z"),
            usage_payload("=HYPERLINK(1)", user_id="@sum", timestamp="2026-03-02T11:00:00Z"),
        )
        rows = csv_rows(api.get(URL, MARCH))
        assert [(r["user_id"], r["request_id"]) for r in rows] == [('Doe, "Jane"', "r-1"), ("'@sum", "'=HYPERLINK(1)")]

    def test_cost_is_in_the_billing_currency_and_empty_without_an_fx_rate(self, db):
        eur = OrganizationFactory(slug="eu", billing_currency="EUR")
        ingest(eur, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        client = client_with_key(make_api_key(eur, scopes=("read",))[1])
        [row] = csv_rows(client.get(URL, MARCH))
        assert row["currency"] == "EUR" and row["cost"] == ""

    def test_an_empty_range_is_the_header_alone(self, api):
        assert body_text(api.get(URL, MARCH)) == f"{HEADER}\r\n"

    def test_cost_center_filter_includes_children(self, api, org, tree):
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_product", timestamp="2026-03-02T11:00:00Z"),
            usage_payload("c", cost_center="cc_ops", timestamp="2026-03-02T12:00:00Z"),
        )
        rows = csv_rows(api.get(URL, {**MARCH, "cost_center": "cc_product"}))
        assert [(r["request_id"], r["cost_center"]) for r in rows] == [("a", "cc_search"), ("b", "cc_product")]

    def test_unknown_cost_center_is_400(self, api):
        response = api.get(URL, {**MARCH, "cost_center": "cc_missing"})
        assert response.status_code == 400 and "cost_center" in response.json()


class TestRange:
    @pytest.mark.parametrize(
        "params, field",
        [
            ({"end": "2026-03-31"}, "start"),
            ({"start": "2026-03-01"}, "end"),
            ({"start": "", "end": "2026-03-31"}, "start"),
            ({"start": "2026-13-01", "end": "2026-03-31"}, "start"),
            ({"start": "2026-03-01", "end": "soon"}, "end"),
            ({"start": "2026-03-01T10:00:00", "end": "2026-03-31"}, "start"),
            ({"start": "2026-03-10", "end": "2026-03-01"}, "end"),
            ({"start": "2026-03-01T10:00:00Z", "end": "2026-03-01T10:00:00Z"}, "end"),
            ({"start": "2026-03-01", "end": "9999-12-31"}, "end"),
            ({"start": "0001-01-01T00:00:00+01:00", "end": "2026-03-31"}, "start"),
        ],
    )
    def test_a_missing_or_bad_bound_is_400_naming_it(self, api, params, field):
        response = api.get(URL, params)
        assert response.status_code == 400, response.content
        assert field in response.json(), response.json()

    def test_both_missing_bounds_are_named(self, api):
        assert set(api.get(URL).json()) == {"start", "end"}

    def test_errors_are_json_even_when_the_client_asks_for_csv(self, api):
        response = api.get(URL, {"start": "2026-03-01"}, HTTP_ACCEPT="text/csv")
        assert response.status_code == 400 and response["Content-Type"] == "application/json"
        assert api.get(URL, MARCH, HTTP_ACCEPT="text/csv").status_code == 200


class TestStreaming:
    def test_response_streams_an_attachment(self, api, org):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        response = api.get(URL, MARCH)
        assert isinstance(response, StreamingHttpResponse) and response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == 'attachment; filename="acme-erp-2026-03-01-2026-03-31.csv"'

    def test_rows_come_through_the_cursor_in_chunks_oldest_first(self, org):
        ingest(org, *[usage_payload(f"r-{i}", timestamp=f"2026-03-02T10:{59 - i:02d}:00Z") for i in range(7)])
        start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
        lines = list(erp_csv_lines(organization=org, start=start, end=end, fetch_rows=2))
        assert lines[0] == f"{HEADER}\r\n"
        assert [line.rsplit(",", 1)[1].strip() for line in lines[1:]] == [f"r-{i}" for i in range(6, -1, -1)]

    def test_lines_are_generated_lazily(self, org):
        lines = erp_csv_lines(
            organization=org, start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 4, 1, tzinfo=UTC)
        )
        assert next(lines) == f"{HEADER}\r\n"
        lines.close()


class TestAccess:
    def test_a_read_key_and_every_member_role_may_export(self, org, read_key, member_client):
        assert client_with_key(read_key).get(URL, MARCH).status_code == 200
        for role in (Role.VIEWER, Role.FINANCE, Role.ADMIN, Role.OWNER):
            assert member_client(role=role).get(URL, MARCH).status_code == 200

    def test_an_ingest_only_key_is_403(self, org, ingest_key):
        response = client_with_key(ingest_key).get(URL, MARCH)
        assert response.status_code == 403 and "'read' scope" in response.json()["detail"]

    def test_no_credentials_is_refused(self, client, db):
        assert client.get(URL, MARCH).status_code in (401, 403)

    def test_owner_gets_only_their_cost_centers_and_children(self, org, tree, member_client):
        product, _search, _ops = tree
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_ops", timestamp="2026-03-02T11:00:00Z"),
            usage_payload("c", timestamp="2026-03-02T12:00:00Z"),
        )
        owner = member_client(role=Role.OWNER, cost_centers=[product])
        assert [r["request_id"] for r in csv_rows(owner.get(URL, MARCH))] == ["a"]
        assert [r["request_id"] for r in csv_rows(owner.get(URL, {**MARCH, "cost_center": "cc_search"}))] == ["a"]

    def test_owner_naming_a_cost_center_they_do_not_own_gets_the_unknown_answer(self, org, tree, member_client):
        product, _search, _ops = tree
        owner = member_client(role=Role.OWNER, cost_centers=[product])
        seen = owner.get(URL, {**MARCH, "cost_center": "cc_ops"})
        missing = owner.get(URL, {**MARCH, "cost_center": "cc_nothing"})
        assert seen.status_code == missing.status_code == 400
        assert seen.json()["cost_center"] == ["No cost center 'cc_ops' in this organization."]


class TestCrossTenant:
    def test_another_organizations_key_gets_none_of_its_rows(self, org, other_api):
        ingest(org, usage_payload("secret", user_id="ceo", timestamp="2026-03-02T10:00:00Z"))
        text = body_text(other_api.get(URL, MARCH))
        assert text == f"{HEADER}\r\n" and "secret" not in text

    def test_another_organizations_cost_center_code_is_unknown(self, org, other_org, other_api, tree):
        assert other_api.get(URL, {**MARCH, "cost_center": "cc_product"}).status_code == 400

    def test_a_member_of_b_naming_a_gets_404(self, org, other_org, member_client):
        ingest(org, usage_payload("secret", timestamp="2026-03-02T10:00:00Z"))
        client = member_client(role=Role.ADMIN, organization=other_org)
        assert client.get(URL, MARCH, HTTP_X_ORGANIZATION="acme").status_code == 404
        assert client.get(URL, {**MARCH, "organization": "acme"}).status_code == 404
        assert "secret" not in body_text(client.get(URL, MARCH, HTTP_X_ORGANIZATION="globex"))


class TestOddInput:
    def test_a_nul_character_in_the_cost_center_is_400(self, api):
        response = api.get(URL, {**MARCH, "cost_center": "cc\x00x"})
        assert response.status_code == 400 and "cost_center" in response.json()

    def test_a_nul_character_in_a_bound_is_400(self, api):
        response = api.get(URL, {"start": "2026-03-01\x00", "end": "2026-03-31"})
        assert response.status_code == 400 and "start" in response.json()
