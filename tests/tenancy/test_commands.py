"""create_org and create_api_key, as an operator runs them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.tenancy.models import ApiKey, CostCenter, Organization
from apps.tenancy.selectors import api_key_get_active
from tests.factories import CostCenterFactory


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_org_makes_the_organization_and_its_unallocated_cost_center(db):
    out, _ = run("create_org", "initech", "--name", "Initech", "--currency", "eur", "--timezone", "Europe/Berlin")
    organization = Organization.objects.get(slug="initech")
    assert (organization.billing_currency, organization.timezone) == ("EUR", "Europe/Berlin")
    assert CostCenter.objects.for_org(organization).filter(code="unallocated").exists()
    assert "Created organization initech" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--currency", "XYZ"], "billing_currency"),
        (["--timezone", "Mars/Olympus"], "timezone"),
    ],
)
def test_create_org_refuses_bad_input_and_creates_nothing(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_org", "bad", "--name", "Bad", *args)
    assert not Organization.objects.filter(slug="bad").exists()


def test_create_org_refuses_an_existing_slug(org):
    with pytest.raises(CommandError, match="already exists"):
        run("create_org", "acme", "--name", "Again")


def test_create_api_key_prints_the_key_alone_on_its_last_line(org):
    CostCenterFactory(organization=org, code="cc_search")
    out, err = run("create_api_key", "acme", "--scopes", "ingest,read", "--cost-center", "cc_search")
    raw_key = out.strip().splitlines()[-1]
    assert raw_key.startswith("cpk_") and " " not in raw_key
    api_key = api_key_get_active(raw_key=raw_key)
    assert api_key.organization == org and api_key.scopes == ["ingest", "read"]
    assert api_key.default_cost_center.code == "cc_search"
    assert raw_key not in err and api_key.display in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "--scopes", "ingest"], "No organization 'nope'"),
        (["acme", "--scopes", "admin"], "scopes"),
        (["acme", "--cost-center", "cc_missing"], "No cost center 'cc_missing'"),
    ],
)
def test_create_api_key_refuses_bad_input_and_creates_nothing(org, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_key", *args)
    assert not ApiKey.objects.exists()
