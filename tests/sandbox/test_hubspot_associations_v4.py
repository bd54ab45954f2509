"""Associations v4 per record, batch archive and association labels, through hubspot-api-client.

One sandbox for the module; each test works on its own records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.associations.v4.schema import PublicAssociationDefinitionCreateRequest

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error

STAMP = "2026-01-05T09:00:00Z"
COMPANY_TO_CONTACT = 280
CONTACT_TO_COMPANY = 279


def _seed() -> dict[str, Any]:
    companies = [
        {"id": str(i), "properties": {"name": f"Co {i}", "hs_lastmodifieddate": STAMP}}
        for i in range(101, 111)
    ]
    contacts = [
        {"id": str(i), "properties": {"email": f"p{i}@x.com", "hs_lastmodifieddate": STAMP}}
        for i in range(501, 511)
    ]
    contacts[0]["associations"] = {
        "companies": [{"id": "101", "labels": ["Decision maker", "Billing contact"]}, "102"]
    }
    many = [
        {"id": str(10_000 + i), "properties": {}, "associations": {"companies": ["110"]}}
        for i in range(1_100)
    ]
    return {"companies": companies, "contacts": contacts + many}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(_seed()) as urls:
        yield urls


@pytest.fixture(scope="module")
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    return HubSpot(access_token="test-token", host=sandbox.hubspot_url)


def _stamps(hubspot: HubSpot, company_id: str, contact_id: str) -> tuple[str, str]:
    company = hubspot.crm.companies.basic_api.get_by_id(
        company_id, properties=["hs_lastmodifieddate"]
    )
    contact = hubspot.crm.contacts.basic_api.get_by_id(
        contact_id, properties=["hs_lastmodifieddate"]
    )
    return company.properties["hs_lastmodifieddate"], contact.properties["hs_lastmodifieddate"]


def _to_ids(hubspot: HubSpot, from_type: str, from_id: str, to_type: str) -> list[str]:
    page = hubspot.crm.associations.v4.basic_api.get_page(from_type, from_id, to_type)
    return [str(r.to_object_id) for r in page.results]


def test_seeded_labels_show_in_batch_read_and_label_list(hubspot: HubSpot) -> None:
    result = hubspot.crm.associations.v4.batch_api.get_page(
        "contacts", "companies", {"inputs": [{"id": "501"}]}
    )
    to = {str(t.to_object_id): t.association_types for t in result.results[0].to}
    assert [(a.category, a.type_id, a.label) for a in to["102"]] == [
        ("HUBSPOT_DEFINED", CONTACT_TO_COMPANY, None)
    ]
    labelled = [(a.category, a.label) for a in to["101"]]
    assert labelled == [
        ("HUBSPOT_DEFINED", None),
        ("USER_DEFINED", "Decision maker"),
        ("USER_DEFINED", "Billing contact"),
    ]
    listed = hubspot.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
    assert [(r.category, r.label) for r in listed.results] == [
        ("HUBSPOT_DEFINED", None),
        ("USER_DEFINED", "Decision maker"),
        ("USER_DEFINED", "Billing contact"),
    ]
    assert listed.results[1].type_id == to["101"][1].type_id
    reverse = hubspot.crm.associations.v4.batch_api.get_page(
        "companies", "contacts", {"inputs": [{"id": "101"}]}
    )
    assert [a.label for a in reverse.results[0].to[0].association_types] == [
        None,
        "Decision maker",
        "Billing contact",
    ]


def test_create_default_adds_both_directions_without_touching_records(hubspot: HubSpot) -> None:
    before = _stamps(hubspot, "103", "503")
    created = hubspot.crm.associations.v4.basic_api.create_default(
        "companies", "103", "contacts", "503"
    )
    assert created.status == "COMPLETE"
    specs = [(r._from.id, r.to.id, r.association_spec.association_type_id) for r in created.results]
    assert specs == [("103", "503", COMPANY_TO_CONTACT), ("503", "103", CONTACT_TO_COMPANY)]
    assert _to_ids(hubspot, "companies", "103", "contacts") == ["503"]
    assert _to_ids(hubspot, "contacts", "503", "companies") == ["103"]
    assert _stamps(hubspot, "103", "503") == before == (STAMP, STAMP)


def test_create_default_refuses_unknown_records(hubspot: HubSpot) -> None:
    with api_error(400) as caught:
        hubspot.crm.associations.v4.basic_api.create_default(
            "companies", "103", "contacts", "999999"
        )
    assert caught.body["subCategory"] == "crm.associations.INVALID_OBJECT_IDS"


def test_delete_removes_the_association_both_ways_without_touching_records(
    hubspot: HubSpot,
) -> None:
    hubspot.crm.associations.v4.basic_api.create_default("companies", "104", "contacts", "504")
    hubspot.crm.associations.v4.basic_api.archive("contacts", "504", "companies", "104")
    assert _to_ids(hubspot, "companies", "104", "contacts") == []
    assert _to_ids(hubspot, "contacts", "504", "companies") == []
    assert _stamps(hubspot, "104", "504") == (STAMP, STAMP)
    result = hubspot.crm.associations.v4.batch_api.get_page(
        "companies", "contacts", {"inputs": [{"id": "104"}]}
    )
    assert result.results == [] and result.num_errors == 1


def test_labels_are_created_and_used_through_the_labelled_put(hubspot: HubSpot) -> None:
    created = hubspot.crm.associations.v4.schema.definitions_api.create(
        "companies",
        "contacts",
        PublicAssociationDefinitionCreateRequest(
            label="Employer", name="employer", inverse_label="Employee"
        ),
    )
    assert [(r.category, r.label) for r in created.results] == [
        ("USER_DEFINED", "Employer"),
        ("USER_DEFINED", "Employee"),
    ]
    employer = created.results[0].type_id
    pair = hubspot.crm.associations.v4.basic_api.create(
        "companies",
        "105",
        "contacts",
        "505",
        [AssociationSpec(association_category="USER_DEFINED", association_type_id=employer)],
    )
    assert pair.labels == ["Employer"]
    assert (pair.from_object_type_id, pair.to_object_type_id) == ("0-2", "0-1")
    back = hubspot.crm.associations.v4.basic_api.get_page("contacts", "505", "companies")
    assert [(a.category, a.label) for a in back.results[0].association_types] == [
        ("HUBSPOT_DEFINED", None),
        ("USER_DEFINED", "Employee"),
    ]
    assert _stamps(hubspot, "105", "505") == (STAMP, STAMP)
    with api_error(400) as caught:
        hubspot.crm.associations.v4.schema.definitions_api.create(
            "companies",
            "contacts",
            PublicAssociationDefinitionCreateRequest(label="Employer", name="employer"),
        )
    assert caught.body["category"] == "VALIDATION_ERROR"


def test_labelled_put_refuses_a_type_id_of_another_pair(hubspot: HubSpot) -> None:
    with api_error(400) as caught:
        hubspot.crm.associations.v4.basic_api.create(
            "companies",
            "105",
            "contacts",
            "505",
            [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)],
        )
    assert caught.body["subCategory"] == "crm.associations.INVALID_ASSOCIATION_TYPE"


def test_batch_archive_and_label_archive(hubspot: HubSpot) -> None:
    api = hubspot.crm.associations.v4
    for contact in ("506", "507", "508"):
        api.basic_api.create_default("companies", "106", "contacts", contact)
    api.batch_api.archive(
        "companies", "contacts", {"inputs": [{"from": {"id": "106"}, "to": [{"id": "506"}]}]}
    )
    assert _to_ids(hubspot, "companies", "106", "contacts") == ["507", "508"]
    label = api.schema.definitions_api.create(
        "companies",
        "contacts",
        PublicAssociationDefinitionCreateRequest(label="Champion", name="c"),
    ).results[0]
    api.basic_api.create(
        "companies",
        "106",
        "contacts",
        "507",
        [AssociationSpec(association_category="USER_DEFINED", association_type_id=label.type_id)],
    )
    api.batch_api.archive_labels(
        "companies",
        "contacts",
        {
            "inputs": [
                {
                    "from": {"id": "106"},
                    "to": {"id": "507"},
                    "types": [
                        {"associationCategory": "USER_DEFINED", "associationTypeId": label.type_id}
                    ],
                }
            ]
        },
    )
    page = api.basic_api.get_page("companies", "106", "contacts")
    assert [(str(r.to_object_id), len(r.association_types)) for r in page.results] == [
        ("507", 1),
        ("508", 1),
    ]
    api.batch_api.archive_labels(
        "companies",
        "contacts",
        {
            "inputs": [
                {
                    "from": {"id": "106"},
                    "to": {"id": "508"},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": COMPANY_TO_CONTACT,
                        }
                    ],
                }
            ]
        },
    )
    assert _to_ids(hubspot, "companies", "106", "contacts") == ["507"]
    assert _stamps(hubspot, "106", "507") == (STAMP, STAMP)


def test_record_association_paging_and_limit(hubspot: HubSpot) -> None:
    api = hubspot.crm.associations.v4.basic_api
    first = api.get_page("companies", "110", "contacts")
    assert len(first.results) == 500 and first.paging.next.after == "500"
    ids = [str(r.to_object_id) for r in first.results]
    after = first.paging.next.after
    while after:
        page = api.get_page("companies", "110", "contacts", after=after, limit=300)
        ids += [str(r.to_object_id) for r in page.results]
        after = page.paging.next.after if page.paging else None
    assert len(ids) == 1_100 and len(set(ids)) == 1_100
    with api_error(400):
        api.get_page("companies", "110", "contacts", limit=501)


def test_batch_read_pages_per_id_after_changes(hubspot: HubSpot) -> None:
    batch = hubspot.crm.associations.v4.batch_api.get_page
    hubspot.crm.associations.v4.basic_api.archive("companies", "110", "contacts", "10000")
    entry = batch("companies", "contacts", {"inputs": [{"id": "110"}]}).results[0]
    assert len(entry.to) == 500 and str(entry.to[0].to_object_id) == "10001"
    last = batch("companies", "contacts", {"inputs": [{"id": "110", "after": "1000"}]})
    assert len(last.results[0].to) == 99 and last.results[0].paging is None
