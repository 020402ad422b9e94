"""/api/v1/cost-centers: members read, admins and finance write, nothing crosses organizations."""

import pytest

from apps.tenancy.models import CostCenter, Role
from tests.conftest import client_with_key
from tests.factories import CostCenterFactory

URL = "/api/v1/cost-centers"


@pytest.fixture
def finance(member_client):
    return member_client(role=Role.FINANCE)


def test_a_new_organization_has_an_unallocated_cost_center(api):
    assert [c["code"] for c in api.get(URL).json()] == ["unallocated"]


def test_finance_creates_a_cost_center_with_a_parent(finance, org):
    CostCenterFactory(organization=org, code="cc_product")
    response = finance.post(URL, {"code": "cc_search", "name": "Search", "parent": "cc_product"}, format="json")
    assert response.status_code == 201
    assert response.json()["parent"] == "cc_product"
    assert CostCenter.objects.for_org(org).get(code="cc_search").parent.code == "cc_product"


def test_admin_renames_and_reparents(member_client, org):
    admin = member_client(role=Role.ADMIN)
    CostCenterFactory(organization=org, code="cc_a")
    CostCenterFactory(organization=org, code="cc_b")
    response = admin.patch(f"{URL}/cc_b", {"name": "Bee", "parent": "cc_a"}, format="json")
    assert response.status_code == 200 and response.json()["parent"] == "cc_a" and response.json()["name"] == "Bee"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"name": "No code"}, "code", "This field is required."),
        ({"code": "has space", "name": "x"}, "code", "Use letters, digits"),
        ({"code": "cc_x", "name": "x", "parent": "cc_missing"}, "parent", "Unknown cost center 'cc_missing'."),
        ({"code": "unallocated", "name": "again"}, "code", "already exists"),
    ],
)
def test_bad_cost_center_is_400_naming_the_field(finance, org, body, field, message):
    before = CostCenter.objects.for_org(org).count()
    response = finance.post(URL, body, format="json")
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert CostCenter.objects.for_org(org).count() == before


def test_a_cost_center_cannot_become_its_own_ancestor(finance, org):
    parent = CostCenterFactory(organization=org, code="cc_parent")
    CostCenterFactory(organization=org, code="cc_child", parent=parent)
    response = finance.patch(f"{URL}/cc_parent", {"parent": "cc_child"}, format="json")
    assert response.status_code == 400 and "own ancestor" in response.json()["parent"][0]
    assert CostCenter.objects.get(pk=parent.pk).parent is None


def test_delete_deactivates_and_keeps_the_row(finance, org):
    CostCenterFactory(organization=org, code="cc_old")
    assert finance.delete(f"{URL}/cc_old").status_code == 204
    assert CostCenter.objects.for_org(org).get(code="cc_old").active is False


def test_unallocated_cannot_be_deactivated(finance):
    response = finance.delete(f"{URL}/unallocated")
    assert response.status_code == 400 and "cannot be deactivated" in response.json()["active"][0]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OWNER])
def test_viewers_and_owners_cannot_change_cost_centers(member_client, org, role):
    client = member_client(role=role)
    assert client.post(URL, {"code": "cc_x", "name": "x"}, format="json").status_code == 403
    assert client.delete(f"{URL}/unallocated").status_code == 403
    assert not CostCenter.objects.for_org(org).filter(code="cc_x").exists()


def test_api_keys_read_but_cannot_write(read_key, full_key, org):
    assert client_with_key(read_key).get(URL).status_code == 200
    response = client_with_key(full_key).post(URL, {"code": "cc_x", "name": "x"}, format="json")
    assert response.status_code == 403
    assert not CostCenter.objects.for_org(org).filter(code="cc_x").exists()


def test_owner_lists_only_their_cost_centers(member_client, org):
    mine = CostCenterFactory(organization=org, code="cc_mine")
    CostCenterFactory(organization=org, code="cc_mine_child", parent=mine)
    CostCenterFactory(organization=org, code="cc_theirs")
    owner = member_client(role=Role.OWNER, cost_centers=[mine])
    assert [c["code"] for c in owner.get(URL).json()] == ["cc_mine", "cc_mine_child"]
    assert owner.get(f"{URL}/cc_theirs").status_code == 404


class TestCrossTenant:
    def test_another_organizations_cost_center_is_404(self, org, other_api, member_client, other_org):
        CostCenterFactory(organization=org, code="cc_secret")
        assert other_api.get(f"{URL}/cc_secret").status_code == 404
        assert "cc_secret" not in [c["code"] for c in other_api.get(URL).json()]
        other_finance = member_client(role=Role.FINANCE, organization=other_org)
        assert other_finance.patch(f"{URL}/cc_secret", {"name": "pwned"}, format="json").status_code == 404
        assert other_finance.delete(f"{URL}/cc_secret").status_code == 404
        assert CostCenter.objects.for_org(org).get(code="cc_secret").active is True
        assert other_finance.get(f"{URL}/cc_secret", HTTP_X_ORGANIZATION="acme").status_code == 404

    def test_a_parent_from_another_organization_is_unknown(self, org, other_org, member_client):
        CostCenterFactory(organization=other_org, code="cc_foreign")
        response = member_client(role=Role.FINANCE).post(
            URL, {"code": "cc_x", "name": "x", "parent": "cc_foreign"}, format="json"
        )
        assert response.status_code == 400 and "Unknown cost center" in response.json()["parent"][0]
