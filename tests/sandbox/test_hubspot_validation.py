"""Values against definitions, definitions themselves, list names, search limits, paging links."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.lists import ListCreateRequest
from hubspot.crm.properties import PropertyCreate, PropertyUpdate

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error, make_seed

TREND = [
    {"label": "Up", "value": "up", "hidden": False},
    {"label": "Down", "value": "down", "hidden": False},
    {"label": "Flat", "value": "flat", "hidden": False},
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(make_seed(), search_rate_per_second=1_000) as urls:
        yield urls


@pytest.fixture(scope="module")
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    client = HubSpot(access_token="t", host=sandbox.hubspot_url)
    core = client.crm.properties.core_api
    for name, kind, field_type, options in (
        ("hs_trend", "enumeration", "select", TREND),
        ("hs_points", "number", "number", None),
        ("hs_due", "date", "date", None),
        ("hs_seen", "datetime", "date", None),
        ("hs_flag", "bool", "booleancheckbox", None),
    ):
        core.create(
            "companies",
            PropertyCreate(
                name=name,
                label=name,
                type=kind,
                field_type=field_type,
                group_name="companyinformation",
                options=options,
            ),
        )
    return client


def _update(hubspot: HubSpot, props: dict[str, str]) -> None:
    hubspot.crm.companies.basic_api.update("101", SimplePublicObjectInput(properties=props))


def _names(hubspot: HubSpot, object_id: str, props: list[str]) -> dict[str, Any]:
    got = hubspot.crm.companies.basic_api.get_by_id(object_id, properties=props)
    return {p: got.properties.get(p) for p in props}


def _legacy(body: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    result: list[dict[str, Any]] = json.loads(body["message"][len(prefix) :])
    return result


@pytest.mark.parametrize(
    ("props", "code", "message"),
    [
        (
            {"hs_trend": "sideways"},
            "INVALID_OPTION",
            "sideways was not one of the allowed options: [up, down, flat]",
        ),
        ({"hs_points": "many"}, "INVALID_LONG", "many was not a valid long."),
        (
            {"hs_due": "1579179660000"},
            "INVALID_DATE",
            "1579179660000 is at 13:1:0.0 UTC, not midnight!",
        ),
        ({"hs_due": "someday"}, "INVALID_DATE", "someday was not a valid date."),
        ({"hs_seen": "yesterday"}, "INVALID_DATE", "yesterday was not a valid datetime."),
        ({"hs_flag": "yes"}, "INVALID_BOOLEAN", "yes was not a valid boolean."),
        (
            {"hs_points": " 3"},
            "LEADING_TRAILING_WHITESPACE",
            '" 3" includes leading or trailing whitespace.',
        ),
        (
            {"no_such_thing": "x"},
            "PROPERTY_DOESNT_EXIST",
            'Property "no_such_thing" does not exist',
        ),
    ],
)
def test_a_bad_value_is_refused_in_hubspots_shape(
    hubspot: HubSpot, props: dict[str, str], code: str, message: str
) -> None:
    with api_error(400) as error:
        _update(hubspot, props)
    name = next(iter(props))
    assert error.body["category"] == "VALIDATION_ERROR"
    assert _legacy(error.body) == [
        {
            "isValid": False,
            "message": message,
            "error": code,
            "name": name,
            "localizedErrorMessage": message,
            "portalId": 12345678,
        }
    ]
    assert error.body["errors"] == [
        {"message": message, "code": code, "in": name, "context": {"propertyName": [name]}}
    ]


def test_good_values_of_every_type_are_stored(hubspot: HubSpot) -> None:
    props = {
        "hs_trend": "up",
        "hs_points": "72.5",
        "hs_due": "2026-03-01",
        "hs_seen": "2026-03-01T10:11:12Z",
        "hs_flag": "true",
    }
    _update(hubspot, props)
    assert _names(hubspot, "101", list(props)) == props
    _update(hubspot, {"hs_due": "1430438400000", "hs_points": ""})
    assert _names(hubspot, "101", ["hs_due", "hs_points"]) == {
        "hs_due": "1430438400000",
        "hs_points": "",
    }


def test_seeded_properties_keep_accepting_any_text(hubspot: HubSpot) -> None:
    _update(hubspot, {"seats_purchased": "plenty", "renewal_date": "soon"})
    assert _names(hubspot, "101", ["seats_purchased"]) == {"seats_purchased": "plenty"}


def test_batch_update_is_all_or_nothing(hubspot: HubSpot) -> None:
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id="102", properties={"hs_trend": "down"}),
            SimplePublicObjectBatchInput(id="103", properties={"hs_trend": "wobbly"}),
            SimplePublicObjectBatchInput(id="104", properties={"hs_points": "n/a"}),
        ]
    )
    with api_error(400) as error:
        hubspot.crm.companies.batch_api.update(batch)
    assert error.body["category"] == "VALIDATION_ERROR"
    assert [(e["code"], e["context"]) for e in error.body["errors"]] == [
        ("INVALID_OPTION", {"propertyName": ["hs_trend"], "id": ["103"]}),
        ("INVALID_LONG", {"propertyName": ["hs_points"], "id": ["104"]}),
    ]
    assert _names(hubspot, "102", ["hs_trend"]) == {"hs_trend": None}


def test_batch_create_is_all_or_nothing(hubspot: HubSpot) -> None:
    before = hubspot.crm.companies.search_api.do_search(PublicObjectSearchRequest(limit=1)).total
    batch = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"name": "Ok", "hs_flag": "false"}),
            SimplePublicObjectBatchInputForCreate(properties={"name": "Bad", "hs_flag": "maybe"}),
        ]
    )
    with api_error(400) as error:
        hubspot.crm.companies.batch_api.create(batch)
    assert error.body["errors"] == [
        {
            "message": "maybe was not a valid boolean.",
            "code": "INVALID_BOOLEAN",
            "in": "hs_flag",
            "context": {"propertyName": ["hs_flag"], "inputIndex": ["1"]},
        }
    ]
    after = hubspot.crm.companies.search_api.do_search(PublicObjectSearchRequest(limit=1)).total
    assert after == before


def test_create_checks_values_too(hubspot: HubSpot) -> None:
    body = SimplePublicObjectInputForCreate(properties={"name": "X", "hs_trend": "UP"})
    with api_error(400) as error:
        hubspot.crm.companies.basic_api.create(body)
    assert error.body["errors"][0]["code"] == "INVALID_OPTION"


# ---------------------------------------------------------------- definitions


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"name": "Bad Name"},
            "name",
            "Property name Bad Name is invalid: it must start with a lowercase letter and "
            "contain only lowercase letters, numbers and underscores.",
        ),
        (
            {"name": "a" * 101},
            "name",
            f"Property name {'a' * 101} is longer than 100 characters.",
        ),
        (
            {"type": "text"},
            "type",
            "Invalid type text; expected one of "
            "[bool, date, datetime, enumeration, number, phone_number, string]",
        ),
        (
            {"type": "number", "field_type": "select"},
            "fieldType",
            "fieldType select is not valid for type number; "
            "use one of [number, calculation_equation]",
        ),
        (
            {"type": "enumeration", "field_type": "select"},
            "options",
            "Enumeration properties must have at least one option.",
        ),
    ],
)
def test_definitions_are_checked(
    hubspot: HubSpot, changes: dict[str, Any], field: str, message: str
) -> None:
    fields: dict[str, Any] = {
        "name": "fine_name",
        "label": "L",
        "type": "string",
        "field_type": "text",
        "group_name": "companyinformation",
        **changes,
    }
    with api_error(400) as error:
        hubspot.crm.properties.core_api.create("companies", PropertyCreate(**fields))
    assert error.body["category"] == "VALIDATION_ERROR"
    assert error.body["message"] == message
    detail = {"message": message, "in": field, "context": {field: [message]}}
    assert error.body["errors"] == [detail]


def test_duplicate_property_is_409(hubspot: HubSpot) -> None:
    prop = PropertyCreate(
        name="hs_points", label="P", type="number", field_type="number", group_name="x"
    )
    with api_error(409) as error:
        hubspot.crm.properties.core_api.create("companies", prop)
    assert error.body["category"] == "OBJECT_ALREADY_EXISTS"
    assert error.body["message"] == "A property named 'hs_points' already exists."


def test_patch_adds_an_option_that_values_may_then_use(hubspot: HubSpot) -> None:
    with api_error(400):
        _update(hubspot, {"hs_trend": "new"})
    options = [*TREND, {"label": "New", "value": "new", "hidden": False}]
    updated = hubspot.crm.properties.core_api.update(
        "companies", "hs_trend", PropertyUpdate(options=options, label="Trend")
    )
    assert [o.value for o in updated.options] == ["up", "down", "flat", "new"]
    assert updated.label == "Trend"
    _update(hubspot, {"hs_trend": "new"})
    with api_error(400) as error:
        hubspot.crm.properties.core_api.update("companies", "hs_trend", PropertyUpdate(options=[]))
    assert error.body["message"] == "Enumeration properties must have at least one option."
    with api_error(404):
        hubspot.crm.properties.core_api.update("companies", "nope", PropertyUpdate(label="x"))


# ---------------------------------------------------------------- lists


def test_list_names_are_unique_across_object_types(hubspot: HubSpot) -> None:
    lists = hubspot.crm.lists.lists_api
    first = lists.create(
        ListCreateRequest(name="At risk", object_type_id="0-1", processing_type="MANUAL")
    )
    with api_error(400) as error:
        lists.create(
            ListCreateRequest(name="at risk", object_type_id="0-2", processing_type="MANUAL")
        )
    assert error.body["category"] == "VALIDATION_ERROR"
    assert error.body["subCategory"] == "ILS.LIST_NAME_ALREADY_EXISTS"
    assert error.body["context"] == {
        "listName": ["At risk"],
        "listId": [first.list.list_id],
        "objectTypeId": ["0-1"],
    }
    assert "(a contact list, id" in error.body["message"]


# ---------------------------------------------------------------- search limits


def _search(sandbox: SandboxUrls, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        sandbox.base_url + "/crm/v3/objects/companies/search",
        json=body,
        headers={"Authorization": "Bearer limits"},
    )


def _filters(n: int) -> list[dict[str, Any]]:
    return [{"propertyName": "name", "operator": "HAS_PROPERTY"}] * n


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"filterGroups": [{"filters": _filters(1)}] * 6},
            "Too many filter groups: 6. The maximum number of filter groups is 5.",
        ),
        (
            {"filterGroups": [{"filters": _filters(11)}]},
            "Too many filters in filter group 0: 11. "
            "The maximum number of filters per filter group is 10.",
        ),
        (
            {"filterGroups": [{"filters": _filters(9)}] * 3},
            "Too many filters: 27. The maximum number of filters across all filter groups is 25.",
        ),
        (
            {"query": "x" * 3001},
            "The query is 3001 characters long. The maximum query length is 3000 characters.",
        ),
        ({"limit": 201}, "Invalid input: limit must be between 0 and 200"),
        (
            {"after": "10000"},
            "Cannot page past 10000 results. Narrow the query with filters.",
        ),
    ],
)
def test_search_limits(sandbox: SandboxUrls, body: dict[str, Any], message: str) -> None:
    response = _search(sandbox, body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert response.json()["message"] == message


def test_search_at_the_limits_is_accepted(sandbox: SandboxUrls) -> None:
    body = {"filterGroups": [{"filters": _filters(5)}] * 5, "query": "x" * 3000, "limit": 200}
    assert _search(sandbox, body).status_code == 200


# ---------------------------------------------------------------- paging links


def test_following_paging_links_keeps_the_query(sandbox: SandboxUrls) -> None:
    url: str | None = (
        sandbox.base_url + "/crm/v3/objects/companies?limit=100&properties=name&properties=domain"
    )
    ids: list[str] = []
    links: list[str] = []
    while url:
        page = httpx.get(url, headers={"Authorization": "Bearer links"}).json()
        ids += [r["id"] for r in page["results"]]
        assert all(set(r["properties"]) >= {"name", "domain"} for r in page["results"])
        url = page.get("paging", {}).get("next", {}).get("link")
        if url:
            links.append(url)
    assert len(ids) == len(set(ids)) >= 250
    assert links[0] == (
        sandbox.base_url
        + "/crm/v3/objects/companies?limit=100&properties=name&properties=domain&after=100"
    )
