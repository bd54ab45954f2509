"""Seeded lists, membership paging and custom objects, through hubspot-api-client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest
from hubspot.crm.schemas import ObjectSchemaEgg

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error

SUBSCRIPTIONS = "p12345678_subscriptions"


def _seed() -> dict[str, Any]:
    companies = [{"id": str(i), "properties": {"name": f"Co {i}"}} for i in range(101, 701)]
    subscriptions = [
        {
            "id": str(9001 + i),
            "properties": {"plan": "gold" if i % 2 else "silver", "seats": str(10 * i)},
            "associations": {"companies": ["101"]},
        }
        for i in range(5)
    ]
    members = [str(i) for i in range(700, 100, -1)]  # 600 companies, out of order
    return {
        "schemas": [
            {
                "name": "subscriptions",
                "labels": {"singular": "Subscription", "plural": "Subscriptions"},
                "primaryDisplayProperty": "plan",
                "requiredProperties": ["plan"],
                "properties": [
                    {"name": "plan", "label": "Plan", "type": "string", "fieldType": "text"},
                    {"name": "seats", "label": "Seats", "type": "number", "fieldType": "number"},
                ],
                "associatedObjects": ["COMPANY"],
            }
        ],
        "companies": companies,
        "subscriptions": subscriptions,
        "lists": [
            {"listId": "12", "name": "All accounts", "objectTypeId": "0-2", "members": members},
            {"name": "Empty", "objectTypeId": "0-2"},
        ],
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(_seed()) as urls:
        yield urls


@pytest.fixture(scope="module")
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    return HubSpot(access_token="test-token", host=sandbox.hubspot_url)


def test_seeded_lists_are_found_by_id_and_name(hubspot: HubSpot) -> None:
    lists = hubspot.crm.lists.lists_api
    seeded = lists.get_by_id("12").list
    assert (seeded.name, seeded.object_type_id, seeded.processing_type, seeded.size) == (
        "All accounts",
        "0-2",
        "MANUAL",
        600,
    )
    assert lists.get_by_name("all ACCOUNTS", "0-2").list.list_id == "12"
    assert lists.get_by_name("Empty", "0-2").list.list_id == "13"
    with api_error(404):
        lists.get_by_name("All accounts", "0-1")
    created = lists.create({"name": "Fresh", "objectTypeId": "0-2", "processingType": "MANUAL"})
    assert created.list.list_id == "14"


def test_memberships_page_by_ascending_record_id(hubspot: HubSpot) -> None:
    members = hubspot.crm.lists.memberships_api
    first = members.get_page("12")
    assert len(first.results) == 100 and first.total == 600
    assert [m.record_id for m in first.results[:3]] == ["101", "102", "103"]
    ids = [m.record_id for m in first.results]
    after = first.paging.next.after
    pages = 1
    while after:
        page = members.get_page("12", after=after, limit=250)
        ids += [m.record_id for m in page.results]
        pages += 1
        after = page.paging.next.after if page.paging and page.paging.next else None
    assert pages == 3
    assert ids == [str(i) for i in range(101, 701)]
    with api_error(400) as caught:
        members.get_page("12", limit=251)
    assert caught.body["category"] == "VALIDATION_ERROR"
    with api_error(404):
        members.get_page("999")


def test_schemas_list_and_read_by_type_id_and_fully_qualified_name(hubspot: HubSpot) -> None:
    core = hubspot.crm.schemas.core_api
    schemas = core.get_all().results
    assert [(s.name, s.object_type_id, s.fully_qualified_name) for s in schemas] == [
        ("subscriptions", "2-1234567", SUBSCRIPTIONS)
    ]
    schema = schemas[0]
    assert schema.labels.singular == "Subscription" and schema.labels.plural == "Subscriptions"
    assert schema.primary_display_property == "plan"
    assert schema.required_properties == ["plan"]
    props = {p.name: p.type for p in schema.properties}
    assert props["plan"] == "string" and props["seats"] == "number"
    assert [(a.from_object_type_id, a.to_object_type_id) for a in schema.associations] == [
        ("2-1234567", "0-2")
    ]
    assert core.get_by_id("2-1234567").fully_qualified_name == SUBSCRIPTIONS
    assert core.get_by_id(SUBSCRIPTIONS).object_type_id == "2-1234567"
    with api_error(404):
        core.get_by_id("2-999")
    with api_error(404):
        core.get_by_id("companies")


@pytest.mark.parametrize("object_type", ["2-1234567", SUBSCRIPTIONS, "p_subscriptions"])
def test_custom_object_records_by_every_accepted_name(hubspot: HubSpot, object_type: str) -> None:
    objects = hubspot.crm.objects
    page = objects.basic_api.get_page(object_type, limit=3, properties=["plan"])
    assert [r.id for r in page.results] == ["9001", "9002", "9003"]
    assert page.results[1].properties["plan"] == "gold"
    assert page.paging.next.after == "3"
    read = objects.batch_api.read(
        object_type,
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": "9002"}, {"id": "1"}], properties=["seats"]
        ),
    )
    assert [(r.id, r.properties["seats"]) for r in read.results] == [("9002", "10")]
    assert read.errors[0].context == {"ids": ["1"]}
    found = objects.search_api.do_search(
        object_type,
        PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "plan", "operator": "EQ", "value": "gold"}]}
            ],
            sorts=["seats"],
        ),
    )
    assert found.total == 2 and [r.id for r in found.results] == ["9002", "9004"]


def test_custom_object_bare_name_is_refused(hubspot: HubSpot) -> None:
    with api_error(400) as caught:
        hubspot.crm.objects.basic_api.get_page("subscriptions")
    assert caught.body["message"] == "Unable to infer object type from: subscriptions"


def test_custom_object_associations_v4(hubspot: HubSpot) -> None:
    batch = hubspot.crm.associations.v4.batch_api.get_page
    result = batch("companies", "2-1234567", {"inputs": [{"id": "101"}]})
    assert [str(t.to_object_id) for t in result.results[0].to] == [
        "9001",
        "9002",
        "9003",
        "9004",
        "9005",
    ]
    hubspot.crm.associations.v4.basic_api.create_default(
        "p_subscriptions", "9005", "companies", "102"
    )
    back = hubspot.crm.associations.v4.basic_api.get_page(SUBSCRIPTIONS, "9005", "0-2")
    assert [str(r.to_object_id) for r in back.results] == ["101", "102"]


def test_create_schema_then_records(hubspot: HubSpot) -> None:
    core = hubspot.crm.schemas.core_api
    created = core.create(
        ObjectSchemaEgg(
            name="licenses",
            labels={"singular": "License", "plural": "Licenses"},
            properties=[{"name": "key", "label": "Key", "type": "string", "fieldType": "text"}],
            required_properties=["key"],
            associated_objects=["COMPANY", "CONTACT"],
            primary_display_property="key",
        )
    )
    assert created.object_type_id == "2-1234568"
    assert created.fully_qualified_name == "p12345678_licenses"
    assert [a.to_object_type_id for a in created.associations] == ["0-2", "0-1"]
    record = hubspot.crm.objects.basic_api.create("2-1234568", {"properties": {"key": "K-1"}})
    fetched = hubspot.crm.objects.basic_api.get_by_id(
        "p12345678_licenses", record.id, properties=["key"]
    )
    assert fetched.properties["key"] == "K-1"
    assert len(core.get_all().results) == 2
    with api_error(409) as caught:
        core.create(
            ObjectSchemaEgg(
                name="licenses",
                labels={"singular": "L", "plural": "Ls"},
                properties=[{"name": "key", "label": "Key", "type": "string", "fieldType": "text"}],
                required_properties=[],
                associated_objects=[],
            )
        )
    assert caught.body["category"] == "OBJECT_ALREADY_EXISTS"
    with api_error(400):
        core.create(
            ObjectSchemaEgg(
                name="seats",
                labels={"singular": "S", "plural": "Ss"},
                properties=[{"name": "n", "label": "N", "type": "number", "fieldType": "number"}],
                required_properties=["missing"],
                associated_objects=[],
            )
        )
