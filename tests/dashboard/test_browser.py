"""The dashboard in a real browser (Debian's chromium driven by Playwright) against a live portal."""

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.tenancy.models import Organization

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)"),
]


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--days", "20", "--scale", "0.05", stdout=open("/dev/null", "w"))
    organization = Organization.objects.get(slug="acme")
    return organization


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own queries are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(demo, live_server, browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "finance@acme.example")
    page.fill("input[name=password]", "costportal-demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/acme/**")
    yield page
    context.close()


def api_total(page, live_server, **params) -> dict:
    response = page.request.get(f"{live_server.url}/api/v1/costs", params=params, headers={"X-Organization": "acme"})
    assert response.ok, response.text()
    return response.json()


def shown_range(page) -> dict:
    return {"start": page.input_value("input[name=start]") or None, "end": page.input_value("input[name=end]") or None}


def kpi_cost(page) -> Decimal:
    return Decimal(page.get_attribute("#kpi-cost", "data-value"))


def test_dashboard_agrees_with_the_api_draws_its_charts_and_exports_what_it_shows(page, live_server):
    # the default range is the last 30 days; the page says which dates those are
    page.goto(f"{live_server.url}/dashboard/acme/?range=30")
    days = page.locator("#daily-chart svg rect")
    assert days.count() > 10, "the daily chart has bars"
    assert page.locator(".legend li").count() >= 3
    from django.utils import timezone

    today = timezone.now().astimezone(Organization.objects.get(slug="acme").tz).date()
    from datetime import timedelta

    start = (today - timedelta(days=29)).isoformat()
    api = api_total(page, live_server, start=start, end=today.isoformat())
    assert kpi_cost(page) == Decimal(api["total"]["cost"]) > 0
    assert page.inner_text("#kpi-requests") == str(api["total"]["requests"])

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # switch the range to 7 days
    page.click("button[data-range='7']")
    page.wait_for_url("**range=7**")
    week = api_total(page, live_server, start=(today - timedelta(days=6)).isoformat(), end=today.isoformat())
    assert kpi_cost(page) == Decimal(week["total"]["cost"])
    assert kpi_cost(page) < Decimal(api["total"]["cost"])

    # filter by a cost center (its children roll up)
    page.select_option("select[name=cost_center]", "cc_product")
    page.click("#apply")
    page.wait_for_url("**cost_center=cc_product**")
    filtered = api_total(
        page,
        live_server,
        start=(today - timedelta(days=6)).isoformat(),
        end=today.isoformat(),
        cost_center="cc_product",
    )
    assert kpi_cost(page) == Decimal(filtered["total"]["cost"])
    assert set(page.locator("#cost-centers tbody td a.drill").all_inner_texts()) <= {
        "cc_product",
        "cc_search",
        "cc_support_bot",
    }

    # stack the chart by model
    page.click("a[data-stack='model']")
    page.wait_for_url("**stack=model**")
    assert page.locator("#daily-chart svg rect").count() > 0

    # the CSV has exactly the model table
    with page.expect_download() as download_info:
        page.click("#csv")
    path = download_info.value.path()
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    csv_models = [(r["name"], f"{Decimal(r['cost']):.2f}", r["requests"]) for r in rows if r["section"] == "model"]
    table = [
        tuple(cells[i] for i in (0, 4, 3))
        for cells in (row.locator("td").all_inner_texts() for row in page.locator("#models-table tbody tr").all())
    ]
    assert csv_models == table and len(table) > 0
    [total] = [r for r in rows if r["section"] == "total"]
    assert Decimal(total["cost"]) == kpi_cost(page)

    # drill down from a cost center to its usage
    page.click("#cost-centers a.drill >> nth=0")
    page.wait_for_url("**/usage/**")
    assert page.locator("#usage tbody tr").count() > 0
    assert page.problems == [], page.problems


def test_dashboard_on_a_phone(demo, live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "search-lead@acme.example")
    page.fill("input[name=password]", "costportal-demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/acme/**")
    # an owner sees only their cost center
    assert page.locator("#cost-centers a.drill").all_inner_texts() == ["cc_search"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 420, "no sideways scrolling of the page"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    context.close()
