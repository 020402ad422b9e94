"""Dashboard pages: the same numbers as the API, cut to the member's organization and cost centers."""

import csv
import io
import re
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs

import pytest
from django.test import Client

from apps.tenancy.models import Role
from apps.usage.services import usage_ingest
from tests.factories import (
    CostCenterFactory,
    MembershipFactory,
    ModelPriceFactory,
    PriceListFactory,
    UserFactory,
    usage_payload,
)

RANGE = {"start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def usage(org):
    ModelPriceFactory(price_list=PriceListFactory(), model="test-model", input_price=Decimal("2.00"),
                      cached_input_price=None, output_price=Decimal("8.00"))
    product = CostCenterFactory(organization=org, code="cc_product")
    CostCenterFactory(organization=org, code="cc_search", parent=product)
    CostCenterFactory(organization=org, code="cc_ops")
    records = [
        usage_payload("a", cost_center="cc_search", user_id="alice", feature="answers", latency_ms=200,
                      timestamp="2026-03-02T10:00:00Z"),
        usage_payload("b", cost_center="cc_ops", user_id="bob", feature="triage", latency_ms=400,
                      timestamp="2026-03-03T10:00:00Z", output_tokens=1000),
        usage_payload("c", model="unpriced-model", timestamp="2026-03-04T10:00:00Z"),
    ]
    assert usage_ingest(organization=org, api_key=None, raw_records=records).accepted == 3
    return product


def member(organization, role=Role.FINANCE, cost_centers=()):
    user = UserFactory()
    membership = MembershipFactory(organization=organization, user=user, role=role)
    membership.cost_centers.set(cost_centers)
    client = Client()
    client.force_login(user)
    return client


def test_kpis_and_tables_equal_the_cost_api(org, usage, api):
    response = member(org).get("/dashboard/acme/", RANGE)
    assert response.status_code == 200
    board = response.context["board"]
    api_body = api.get("/api/v1/costs", RANGE).json()
    assert board.totals["cost"] == Decimal(api_body["total"]["cost"]) == Decimal("0.0128")
    assert board.totals["requests"] == 3 and board.totals["unpriced_requests"] == 1
    assert board.totals["average_latency_ms"] == 300
    assert board.unallocated_cost == Decimal(0)
    by_cc = api.get("/api/v1/costs", {**RANGE, "group_by": "cost_center"}).json()["results"]
    assert [(r["cost_center"], Decimal(r["cost"])) for r in by_cc] == [
        (r["cost_center"], r["cost"]) for r in board.cost_centers]
    assert [m["share"] for m in board.models] == [Decimal("100.0"), Decimal("0.0")]
    assert 'data-chart="daily-cost"' in response.content.decode() and "<rect" in response.content.decode()


def test_days_of_the_chart_follow_the_range_in_the_organizations_time_zone(org, usage):
    board = member(org).get("/dashboard/acme/", RANGE).context["board"]
    assert len(board.days) == 31 and board.days[0].isoformat() == "2026-03-01"


def test_presets_default_to_30_days(org, usage):
    board = member(org).get("/dashboard/acme/").context["board"]
    assert board.preset == 30 and len(board.days) == 30
    assert member(org).get("/dashboard/acme/", {"range": "7"}).context["board"].preset == 7
    assert member(org).get("/dashboard/acme/", {"range": "1000"}).context["board"].preset == 30


def test_csv_is_what_the_page_shows(org, usage):
    client = member(org)
    board = client.get("/dashboard/acme/", RANGE).context["board"]
    response = client.get("/dashboard/acme/export.csv", RANGE)
    assert response["Content-Disposition"].startswith('attachment; filename="acme-costs-2026-03-01-2026-03-31.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["name"], Decimal(r["cost"])) for r in rows if r["section"] == "model"] == [
        (m["model"], m["cost"]) for m in board.models]
    assert [Decimal(r["cost"]) for r in rows if r["section"] == "total"] == [board.totals["cost"]]


def test_owner_sees_only_their_cost_centers(org, usage):
    owner = member(org, role=Role.OWNER, cost_centers=[usage])
    board = owner.get("/dashboard/acme/", RANGE).context["board"]
    assert [r["cost_center"] for r in board.cost_centers] == ["cc_search"]
    assert board.totals["requests"] == 1
    csv_rows = list(csv.DictReader(io.StringIO(owner.get("/dashboard/acme/export.csv", RANGE).content.decode())))
    assert {r["name"] for r in csv_rows if r["section"] == "cost_center"} == {"cc_search"}
    usage_page = owner.get("/dashboard/acme/usage/", {**RANGE, "cost_center": "cc_ops"})
    assert list(usage_page.context["page"]) == []


def test_drill_down_lists_the_cost_centers_usage(org, usage):
    page = member(org).get("/dashboard/acme/usage/", {**RANGE, "cost_center": "cc_product"}).context["page"]
    assert [r.request_id for r in page] == ["a"]


def test_drill_down_and_stack_links_keep_the_pages_filters(org, usage):
    record = usage_payload("d", cost_center="cc_ops", feature="q&a / answers", timestamp="2026-03-05T10:00:00Z")
    assert usage_ingest(organization=org, api_key=None, raw_records=[record]).accepted == 1
    response = member(org).get("/dashboard/acme/", {**RANGE, "feature": "q&a / answers", "stack": "model"})
    links = [unescape(href) for href in re.findall(r'<a href="([^"]*)"[^>]*class="drill"', response.content.decode())]
    assert links, "every cost center row links to its usage"
    path, _, query = links[0].partition("?")
    assert path == "/dashboard/acme/usage/"
    assert parse_qs(query) == {
        "start": ["2026-03-01"],
        "end": ["2026-03-31"],
        "feature": ["q&a / answers"],
        "stack": ["model"],
        "cost_center": ["cc_ops"],
    }
    stack = re.search(r'<a href="\?([^"]*)"[^>]*data-stack="cost_center"', response.content.decode()).group(1)
    assert parse_qs(unescape(stack)) == {
        "start": ["2026-03-01"],
        "end": ["2026-03-31"],
        "feature": ["q&a / answers"],
        "stack": ["cost_center"],
    }


@pytest.mark.parametrize("path", ["/dashboard/acme/", "/dashboard/acme/export.csv", "/dashboard/acme/usage/"])
def test_another_organizations_member_gets_404(org, other_org, usage, path):
    response = member(other_org, role=Role.ADMIN).get(path, RANGE)
    assert response.status_code == 404
    assert b"0.0128" not in response.content


@pytest.mark.parametrize("path", ["/dashboard/acme/", "/dashboard/acme/export.csv", "/dashboard/acme/usage/"])
def test_anonymous_visitors_are_sent_to_the_login(org, path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_unknown_organization_is_404_too(org):
    assert member(org).get("/dashboard/no-such-org/").status_code == 404


@pytest.mark.parametrize("params, field", [({"start": "2026-13-01"}, "start"), ({"tag": "nocolon"}, "tag"),
                                           ({"start": "2026-03-10", "end": "2026-03-01"}, "end")])
def test_bad_parameters_are_shown_with_their_field(org, usage, params, field):
    client = member(org)
    response = client.get("/dashboard/acme/", params)
    assert response.status_code == 400 and field in response.context["errors"]
    assert client.get("/dashboard/acme/export.csv", params).status_code == 400


def test_login_page_and_home_redirect(org, usage):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.VIEWER)
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": user.username, "password": "pw"})
    assert response.status_code == 302
    assert client.get("/").headers["Location"] == "/dashboard/acme/"
