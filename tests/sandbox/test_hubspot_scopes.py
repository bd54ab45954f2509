"""Token scopes through the real hubspot-api-client: 401 for unknown tokens, 403 per spec scope."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.objects import SimplePublicObjectInputForCreate
from hubspot.crm.properties import PropertyCreate

from healthscore.sandbox import SandboxUrls, load_tokens, required_scopes, running_sandbox

from .conftest import api_error, make_seed

TOKENS = {
    "reader": ["crm.objects.companies.read"],
    "tasker": ["crm.objects.contacts.write", "crm.objects.companies.read"],
    "lister": ["crm.lists.read", "crm.lists.write"],
    "half-lister": ["crm.lists.write"],
}
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(make_seed(), tokens=TOKENS) as urls:
        yield urls


def client(sandbox: SandboxUrls, token: str) -> HubSpot:
    return HubSpot(access_token=token, host=sandbox.hubspot_url)


def test_unknown_token_is_401_in_hubspots_shape(sandbox: SandboxUrls) -> None:
    with api_error(401) as error:
        client(sandbox, "stranger").crm.companies.basic_api.get_page()
    assert error.body["category"] == "INVALID_AUTHENTICATION"
    assert error.body["status"] == "error"


def test_companies_read_needs_its_scope(sandbox: SandboxUrls) -> None:
    page = client(sandbox, "reader").crm.companies.basic_api.get_page(limit=2)
    assert len(page.results) == 2
    with api_error(403) as error:
        client(sandbox, "lister").crm.companies.basic_api.get_page(limit=2)
    assert error.body["category"] == "MISSING_SCOPES"
    assert error.body["message"] == SCOPES_MESSAGE
    assert error.body["errors"] == [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.companies.read"]},
        }
    ]
    assert error.body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}


def test_task_create_needs_contacts_write_as_the_tasks_spec_says(sandbox: SandboxUrls) -> None:
    body = SimplePublicObjectInputForCreate(properties={"hs_task_subject": "Call"})
    with api_error(403) as error:
        client(sandbox, "reader").crm.objects.tasks.basic_api.create(body)
    assert error.body["errors"][0]["context"] == {
        "requiredGranularScopes": ["crm.objects.contacts.write"]
    }
    created = client(sandbox, "tasker").crm.objects.tasks.basic_api.create(body)
    assert created.properties["hs_task_subject"] == "Call"


def test_list_writes_need_read_and_write_together(sandbox: SandboxUrls) -> None:
    from hubspot.crm.lists import ListCreateRequest

    request = ListCreateRequest(name="Scoped", object_type_id="0-2", processing_type="MANUAL")
    created = client(sandbox, "lister").crm.lists.lists_api.create(request)
    list_id = created.list.list_id
    with api_error(403) as error:
        client(sandbox, "half-lister").crm.lists.memberships_api.add(list_id, ["101"])
    assert error.body["category"] == "MISSING_SCOPES"
    assert error.body["errors"] == [
        {
            "message": "All of the following scopes are required.",
            "context": {
                "requiredGranularScopes": ["cms.membership.access_groups.write", "crm.lists.read"]
            },
        },
        {
            "message": "All of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.lists.read", "crm.lists.write"]},
        },
    ]
    with api_error(403) as create_error:
        client(sandbox, "reader").crm.lists.lists_api.create(request)
    assert create_error.body["errors"][0]["context"]["requiredGranularScopes"] == [
        "crm.lists.write",
        "cms.membership.access_groups.write",
    ]


def test_property_write_needs_the_types_schema_scope(sandbox: SandboxUrls) -> None:
    prop = PropertyCreate(
        name="scoped", label="Scoped", type="string", field_type="text", group_name="x"
    )
    with api_error(403) as error:
        client(sandbox, "reader").crm.properties.core_api.create("companies", prop)
    assert error.body["errors"][0]["context"] == {
        "requiredGranularScopes": ["crm.schemas.companies.write"]
    }


def test_owners_need_owners_read(sandbox: SandboxUrls) -> None:
    with api_error(403) as error:
        client(sandbox, "reader").crm.owners.owners_api.get_page()
    assert error.body["errors"][0]["context"] == {
        "requiredGranularScopes": ["automation", "crm.objects.owners.read"]
    }


def test_account_info_needs_only_the_implicit_oauth_scope(sandbox: SandboxUrls) -> None:
    response = httpx.get(
        sandbox.base_url + "/account-info/v3/details",
        headers={"Authorization": "Bearer half-lister"},
    )
    assert response.status_code == 200 and response.json()["portalId"] == 12345678


def test_token_info_lists_the_scopes_of_a_private_app_token(sandbox: SandboxUrls) -> None:
    url = sandbox.base_url + "/oauth/v2/private-apps/get/access-token-info"
    response = httpx.post(url, json={"tokenKey": "lister"})
    assert response.status_code == 200
    assert response.json() == {
        "userId": 9_000_000,
        "hubId": 12345678,
        "appId": 2_000_001,
        "scopes": ["crm.lists.read", "crm.lists.write", "oauth"],
    }
    unknown = httpx.post(url, json={"tokenKey": "stranger"})
    assert unknown.status_code == 401
    assert unknown.json()["category"] == "INVALID_AUTHENTICATION"


def test_without_tokens_every_token_has_every_scope() -> None:
    with running_sandbox(make_seed()) as urls:
        assert len(client(urls, "any").crm.owners.owners_api.get_page().results) == 2
        info = httpx.post(
            urls.base_url + "/oauth/v2/private-apps/get/access-token-info",
            json={"tokenKey": "any"},
        ).json()
    assert "crm.objects.owners.read" in info["scopes"] and "crm.lists.write" in info["scopes"]


def test_required_scopes_table() -> None:
    table = required_scopes()
    assert table[("GET", "/crm/v3/objects/companies")] == [["crm.objects.companies.read"]]
    assert table[("POST", "/crm/v3/objects/tasks")] == [["crm.objects.contacts.write"]]
    assert table[("PATCH", "/crm/v3/properties/companies/{propertyName}")] == [
        ["crm.schemas.companies.write"]
    ]
    assert table[("GET", "/crm/v3/objects/emails/{objectId}")] == [
        ["crm.objects.contacts.read"],
        ["sales-email-read"],
    ]
    assert table[("GET", "/crm/v3/objects/{objectType}")] == [["crm.objects.custom.read"]]


def test_load_tokens_reads_and_refuses_bad_shapes(tmp_path: Path) -> None:
    good = tmp_path / "tokens.json"
    good.write_text(json.dumps({"t": ["crm.lists.read"]}))
    assert load_tokens(good) == {"t": ["crm.lists.read"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"t": "crm.lists.read"}))
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_tokens(bad)
    with pytest.raises(ValueError, match=r"missing\.json"):
        load_tokens(tmp_path / "missing.json")
