"""GET /api/v1/usage and /api/v1/costs: filters, grouping, time zones and role scoping (PRODUCT.md section 5)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.tenancy.models import Role
from apps.usage.services import usage_ingest
from tests.conftest import client_with_key
from tests.factories import CostCenterFactory, OrganizationFactory, make_api_key, usage_payload

pytestmark = pytest.mark.usefixtures("priced_model")


def ingest(org, *records):
    result = usage_ingest(organization=org, api_key=None, raw_records=list(records))
    assert result.rejected == 0, result.errors
    return result


@pytest.fixture
def tree(org):
    """cc_product with child cc_search; cc_ops alone."""
    product = CostCenterFactory(organization=org, code="cc_product")
    search = CostCenterFactory(organization=org, code="cc_search", parent=product)
    ops = CostCenterFactory(organization=org, code="cc_ops")
    return product, search, ops


class TestCosts:
    def test_costs_total_and_group_by_cost_center_and_model(self, api, org, tree):
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_search", timestamp="2026-03-02T11:00:00Z"),
            usage_payload("c", cost_center="cc_ops", timestamp="2026-03-03T10:00:00Z", output_tokens=1000),
            usage_payload("d", cost_center="cc_ops", model="unknown-model", timestamp="2026-03-03T10:00:00Z"),
        )
        response = api.get(
            "/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31", "group_by": "cost_center,model"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["currency"] == "USD" and body["group_by"] == ["cost_center", "model"]
        assert body["start"] == "2026-03-01T00:00:00+00:00" and body["end"] == "2026-04-01T00:00:00+00:00"
        # c: 1000 x 2.00 + 1000 x 8.00 per 1M = 0.01; a and b: 0.0028 each
        assert body["results"] == [
            {
                "cost_center": "cc_ops",
                "model": "test-model",
                "cost": "0.0100000000",
                "input_tokens": 1000,
                "output_tokens": 1000,
                "requests": 1,
            },
            {
                "cost_center": "cc_search",
                "model": "test-model",
                "cost": "0.0056000000",
                "input_tokens": 2000,
                "output_tokens": 200,
                "requests": 2,
            },
            {
                "cost_center": "cc_ops",
                "model": "unknown-model",
                "cost": "0.0000000000",
                "input_tokens": 1000,
                "output_tokens": 100,
                "requests": 1,
            },
        ]
        assert body["total"] == {"cost": "0.0156000000", "input_tokens": 4000, "output_tokens": 1300, "requests": 4}
        assert body["unpriced_requests"] == 1 and body["unconverted_requests"] == 0

    def test_days_are_cut_in_the_organizations_time_zone(self, db, priced_model):
        berlin = OrganizationFactory(slug="berlin", timezone="Europe/Berlin")
        ingest(
            berlin,
            usage_payload("late", timestamp="2026-01-31T23:30:00+01:00"),
            usage_payload("next", timestamp="2026-01-31T23:30:00Z"),
        )
        client = client_with_key(make_api_key(berlin, scopes=("read",))[1])
        body = client.get("/api/v1/costs", {"start": "2026-01-31", "end": "2026-02-01", "group_by": "day"}).json()
        assert [(r["day"], r["requests"]) for r in body["results"]] == [("2026-01-31", 1), ("2026-02-01", 1)]
        month = client.get("/api/v1/costs", {"start": "2026-01-01", "end": "2026-02-28", "group_by": "month"}).json()
        assert [(r["month"], r["requests"]) for r in month["results"]] == [("2026-01", 1), ("2026-02", 1)]

    def test_end_date_is_inclusive_and_rfc3339_end_exclusive(self, api, org):
        ingest(
            org,
            usage_payload("a", timestamp="2026-03-31T23:59:59Z"),
            usage_payload("b", timestamp="2026-04-01T00:00:00Z"),
        )
        by_date = api.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31"}).json()
        assert by_date["total"]["requests"] == 1
        by_time = api.get("/api/v1/costs", {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:01Z"}).json()
        assert by_time["total"]["requests"] == 2

    def test_week_groups_start_on_monday(self, api, org):
        ingest(
            org,
            usage_payload("a", timestamp="2026-03-04T10:00:00Z"),
            usage_payload("b", timestamp="2026-03-08T10:00:00Z"),
            usage_payload("c", timestamp="2026-03-09T10:00:00Z"),
        )
        body = api.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31", "group_by": "week"}).json()
        assert [(r["week"], r["requests"]) for r in body["results"]] == [("2026-03-02", 2), ("2026-03-09", 1)]

    def test_cost_center_filter_rolls_up_children(self, api, org, tree):
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_product", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("c", cost_center="cc_ops", timestamp="2026-03-02T10:00:00Z"),
        )
        body = api.get(
            "/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31", "cost_center": "cc_product"}
        ).json()
        assert body["total"]["requests"] == 2

    def test_filters_by_model_user_feature_environment_and_tag(self, api, org):
        ingest(
            org,
            usage_payload(
                "a",
                user_id="u1",
                feature="chat",
                environment="prod",
                tags={"team": "x"},
                timestamp="2026-03-02T10:00:00Z",
            ),
            usage_payload(
                "b",
                user_id="u2",
                feature="chat",
                environment="prod",
                tags={"team": "y"},
                timestamp="2026-03-02T10:00:00Z",
            ),
            usage_payload("c", user_id="u1", feature="search", environment="dev", timestamp="2026-03-02T10:00:00Z"),
        )
        params = {"start": "2026-03-01", "end": "2026-03-31"}
        count = lambda **f: api.get("/api/v1/costs", {**params, **f}).json()["total"]["requests"]  # noqa: E731
        assert count(user_id="u1") == 2
        assert count(feature="chat") == 2
        assert count(environment="dev") == 1
        assert count(tag="team:x") == 1
        assert count(model="test-model") == 3
        assert count(user_id="u1", feature="chat") == 1

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"group_by": "color"}, "group_by"),
            ({"group_by": "day,day"}, "group_by"),
            ({"start": "2026-13-01"}, "start"),
            ({"start": "2026-03-10", "end": "2026-03-01"}, "end"),
            ({"end": "2026-03-01T10:00:00"}, "end"),
            ({"tag": "no-colon"}, "tag"),
            ({"pricing_status": "free"}, "pricing_status"),
        ],
    )
    def test_bad_parameters_are_400_naming_the_parameter(self, api, params, field):
        response = api.get("/api/v1/costs", params)
        assert response.status_code == 400 and field in response.json(), response.json()

    def test_default_range_is_the_last_30_days_including_today(self, api, org):
        body = api.get("/api/v1/costs").json()
        start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
        assert (end - start).days == 30
        assert start <= datetime.now(UTC) < end


class TestUsageList:
    def test_lists_records_newest_first_with_cursor_pagination(self, api, org):
        ingest(org, *[usage_payload(f"r-{i:02d}", timestamp=f"2026-03-02T10:{i:02d}:00Z") for i in range(25)])
        seen, url, pages = [], "/api/v1/usage?start=2026-03-01&end=2026-03-31&page_size=10", 0
        while url:
            body = api.get(url).json()
            seen += [r["request_id"] for r in body["results"]]
            url, pages = body["next"], pages + 1
        assert pages == 3 and seen == [f"r-{i:02d}" for i in range(24, -1, -1)]

    def test_record_shows_money_as_strings_in_billing_currency(self, api, org):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        row = api.get("/api/v1/usage", {"start": "2026-03-01", "end": "2026-03-31"}).json()["results"][0]
        assert row["cost"] == "0.0028000000" and row["currency"] == "USD" and row["pricing_status"] == "priced"
        assert row["cost_center"] == "unallocated" and row["timestamp"] == "2026-03-02T10:00:00Z"

    def test_filters_apply_to_the_list(self, api, org, tree):
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_ops", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("c", model="nope", timestamp="2026-03-02T10:00:00Z"),
        )
        base = {"start": "2026-03-01", "end": "2026-03-31"}
        ids = lambda **f: [r["request_id"] for r in api.get("/api/v1/usage", {**base, **f}).json()["results"]]  # noqa: E731
        assert ids(cost_center="cc_product") == ["a"]
        assert ids(pricing_status="unpriced") == ["c"]
        assert ids(cost_center="cc_missing") == []

    def test_bad_filter_is_400(self, api):
        assert api.get("/api/v1/usage", {"start": "soon"}).status_code == 400


class TestRoles:
    def test_owner_sees_only_their_cost_centers_and_children(self, org, tree, member_client):
        product, search, ops = tree
        ingest(
            org,
            usage_payload("a", cost_center="cc_search", timestamp="2026-03-02T10:00:00Z"),
            usage_payload("b", cost_center="cc_ops", timestamp="2026-03-02T10:00:00Z"),
        )
        owner = member_client(role=Role.OWNER, cost_centers=[product])
        body = owner.get(
            "/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31", "group_by": "cost_center"}
        ).json()
        assert [r["cost_center"] for r in body["results"]] == ["cc_search"]
        listed = owner.get("/api/v1/usage", {"start": "2026-03-01", "end": "2026-03-31"}).json()["results"]
        assert [r["request_id"] for r in listed] == ["a"]
        assert (
            owner.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31", "cost_center": "cc_ops"}).json()[
                "total"
            ]["requests"]
            == 0
        )

    def test_viewer_and_finance_see_everything(self, org, member_client):
        ingest(org, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        for role in (Role.VIEWER, Role.FINANCE, Role.ADMIN):
            body = member_client(role=role).get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31"}).json()
            assert body["total"]["requests"] == 1

    def test_member_of_several_organizations_names_one(self, org, other_org, member_client):
        from tests.factories import MembershipFactory

        client = member_client(role=Role.VIEWER)
        user = client.session["_auth_user_id"]
        MembershipFactory(organization=other_org, user_id=user, role=Role.VIEWER)
        response = client.get("/api/v1/costs")
        assert response.status_code == 400 and "organization" in response.json()
        assert client.get("/api/v1/costs", HTTP_X_ORGANIZATION="globex").json()["currency"] == "USD"
        assert client.get("/api/v1/costs", {"organization": "acme"}).status_code == 200


class TestCrossTenant:
    def test_another_organizations_key_sees_none_of_its_usage(self, org, other_api):
        ingest(org, usage_payload("secret", timestamp="2026-03-02T10:00:00Z"))
        listed = other_api.get("/api/v1/usage", {"start": "2026-03-01", "end": "2026-03-31"}).json()["results"]
        assert listed == []
        totals = other_api.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31"}).json()["total"]
        assert totals["requests"] == 0 and totals["cost"] == "0.0000000000"

    def test_a_member_of_b_naming_a_gets_404(self, org, other_org, member_client):
        client = member_client(role=Role.ADMIN, organization=other_org)
        assert client.get("/api/v1/costs", HTTP_X_ORGANIZATION="acme").status_code == 404
        assert client.get("/api/v1/usage", HTTP_X_ORGANIZATION="acme").status_code == 404
        assert client.get("/api/v1/costs", HTTP_X_ORGANIZATION="no-such-org").status_code == 404

    def test_the_same_request_id_in_two_organizations_is_two_records(self, org, other_org, api, other_api):
        import json

        body = json.dumps(usage_payload("shared-id"))
        assert api.post("/api/v1/usage", body, content_type="application/json").json()["accepted"] == 1
        assert other_api.post("/api/v1/usage", body, content_type="application/json").json()["accepted"] == 1

    def test_summary_never_mixes_currencies(self, db, priced_model):
        eur = OrganizationFactory(slug="eu", billing_currency="EUR")
        ingest(eur, usage_payload("a", timestamp="2026-03-02T10:00:00Z"))
        client = client_with_key(make_api_key(eur, scopes=("read",))[1])
        body = client.get("/api/v1/costs", {"start": "2026-03-01", "end": "2026-03-31"}).json()
        # a USD price and no USD->EUR rate: counted, shown as unconverted, never added as if it were EUR
        assert body["currency"] == "EUR" and body["total"]["cost"] == "0.0000000000"
        assert body["unconverted_requests"] == 1 and body["total"]["requests"] == 1
        assert Decimal(body["total"]["cost"]) == 0


@pytest.mark.parametrize(
    "params, field",
    [({"end": "9999-12-31"}, "end"), ({"start": "0001-01-01T00:00:00+01:00"}, "start"), ({"start": "0001-01-01"}, "start")],
)
def test_dates_at_the_edge_of_the_calendar_are_400_not_500(api, params, field):
    for path in ("/api/v1/costs", "/api/v1/usage"):
        response = api.get(path, params)
        assert response.status_code == 400 and field in response.json()
