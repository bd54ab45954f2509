"""Archived and merged records through hubspot-api-client: what disappears, what stays.

One sandbox for the module; each test works on its own records so the order of
tests does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    PublicObjectSearchRequest,
)

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error

STAMP = "2026-01-05T09:00:00Z"


def _company(i: int) -> dict[str, Any]:
    return {
        "id": str(i),
        "properties": {"name": f"Co {i}", "hs_lastmodifieddate": STAMP, "createdate": STAMP},
    }


def _seed() -> dict[str, Any]:
    companies = [_company(i) for i in range(101, 121)]
    contacts = [
        {"id": "501", "properties": {"email": "a@x.com"}, "associations": {"companies": ["103"]}},
        {"id": "502", "properties": {"email": "b@x.com"}, "associations": {"companies": ["110"]}},
        {
            "id": "503",
            "properties": {"email": "c@x.com"},
            "associations": {"companies": [{"id": "111", "labels": ["Decision maker"]}, "112"]},
        },
        {"id": "504", "properties": {"email": "d@x.com"}, "associations": {"companies": ["112"]}},
    ]
    lists = [
        {"listId": "7", "name": "Watch", "objectTypeId": "0-2", "members": ["104", "111"]},
    ]
    return {"companies": companies, "contacts": contacts, "lists": lists}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(_seed()) as urls:
        yield urls


@pytest.fixture(scope="module")
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    return HubSpot(access_token="test-token", host=sandbox.hubspot_url)


def _all_ids(hubspot: HubSpot, archived: bool = False) -> list[str]:
    page = hubspot.crm.companies.basic_api.get_page(limit=100, archived=archived)
    return [r.id for r in page.results]


def test_delete_archives_without_touching_hs_lastmodifieddate(hubspot: HubSpot) -> None:
    hubspot.crm.companies.basic_api.archive("101")
    assert "101" not in _all_ids(hubspot)
    with api_error(404):
        hubspot.crm.companies.basic_api.get_by_id("101")
    archived = hubspot.crm.companies.basic_api.get_by_id(
        "101", archived=True, properties=["hs_lastmodifieddate"]
    )
    assert archived.archived is True
    assert archived.archived_at is not None
    assert archived.properties["hs_lastmodifieddate"] == STAMP
    assert archived.updated_at.isoformat().startswith("2026-01-05T09:00:00")
    hubspot.crm.companies.basic_api.archive("101")  # again: still 204


def test_archived_true_lists_only_archived_records(hubspot: HubSpot) -> None:
    hubspot.crm.companies.batch_api.archive(
        BatchInputSimplePublicObjectId(inputs=[{"id": "105"}, {"id": "106"}, {"id": "999"}])
    )
    archived = hubspot.crm.companies.basic_api.get_page(limit=100, archived=True).results
    assert {"105", "106"} <= {r.id for r in archived}
    assert all(r.archived is True and r.archived_at is not None for r in archived)
    live = _all_ids(hubspot)
    assert "105" not in live and "106" not in live and "107" in live


def test_batch_archive_refuses_more_than_100_inputs(hubspot: HubSpot) -> None:
    with api_error(400) as caught:
        hubspot.crm.companies.batch_api.archive(
            BatchInputSimplePublicObjectId(inputs=[{"id": str(i)} for i in range(101)])
        )
    assert caught.body["category"] == "VALIDATION_ERROR"


def test_batch_read_reports_archived_ids_as_not_found_unless_asked(hubspot: HubSpot) -> None:
    hubspot.crm.companies.basic_api.archive("108")
    read = hubspot.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": "108"}, {"id": "109"}], properties=[])
    )
    assert [r.id for r in read.results] == ["109"]
    assert read.num_errors == 1
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].context == {"ids": ["108"]}
    archived = hubspot.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": "108"}, {"id": "109"}], properties=[]),
        archived=True,
    )
    assert [r.id for r in archived.results] == ["108"]
    assert archived.errors[0].context == {"ids": ["109"]}


def test_archived_records_leave_search(hubspot: HubSpot) -> None:
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "name", "operator": "EQ", "value": "Co 113"}]}
        ],
    )
    assert hubspot.crm.companies.search_api.do_search(request).total == 1
    hubspot.crm.companies.basic_api.archive("113")
    assert hubspot.crm.companies.search_api.do_search(request).total == 0


def test_archived_records_leave_both_sides_of_association_reads(hubspot: HubSpot) -> None:
    batch = hubspot.crm.associations.v4.batch_api.get_page
    assert [
        str(t.to_object_id)
        for t in batch("contacts", "companies", {"inputs": [{"id": "501"}]}).results[0].to
    ] == ["103"]
    hubspot.crm.companies.basic_api.archive("103")
    from_contact = batch("contacts", "companies", {"inputs": [{"id": "501"}]})
    assert from_contact.results == []
    assert from_contact.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    from_company = batch("companies", "contacts", {"inputs": [{"id": "103"}]})
    assert from_company.results == [] and from_company.num_errors == 1
    page = hubspot.crm.associations.v4.basic_api.get_page("contacts", "501", "companies")
    assert page.results == []
    contact = hubspot.crm.contacts.basic_api.get_by_id("501", associations=["companies"])
    assert contact.associations is None


def test_archived_records_leave_lists(hubspot: HubSpot) -> None:
    members = hubspot.crm.lists.memberships_api.get_page("7")
    assert [m.record_id for m in members.results] == ["104", "111"]
    version = hubspot.crm.lists.lists_api.get_by_id("7").list.list_version
    hubspot.crm.companies.basic_api.archive("104")
    members = hubspot.crm.lists.memberships_api.get_page("7")
    assert [m.record_id for m in members.results] == ["111"] and members.total == 1
    fetched = hubspot.crm.lists.lists_api.get_by_id("7").list
    assert fetched.size == 1 and fetched.list_version == version + 1


def test_merge_moves_associations_and_sets_hs_merged_object_ids(
    hubspot: HubSpot, sandbox: SandboxUrls
) -> None:
    merged = hubspot.crm.companies.basic_api.merge(
        PublicMergeInput(primary_object_id="112", object_id_to_merge="111")
    )
    assert merged.id == "112"
    assert merged.properties["hs_merged_object_ids"] == "111"
    assert merged.properties["hs_lastmodifieddate"] != STAMP
    assert merged.properties["name"] == "Co 112"
    live = _all_ids(hubspot)
    assert "111" not in live and "112" in live
    assert "111" not in _all_ids(hubspot, archived=True)
    alias = hubspot.crm.companies.basic_api.get_by_id("111")
    assert alias.id == "112"
    to = (
        hubspot.crm.associations.v4.batch_api.get_page(
            "companies", "contacts", {"inputs": [{"id": "112"}]}
        )
        .results[0]
        .to
    )
    assert [str(t.to_object_id) for t in to] == ["503", "504"]
    labels = [[a.label for a in t.association_types] for t in to]
    assert labels == [[None, "Decision maker"], [None]]
    back = hubspot.crm.associations.v4.basic_api.get_page("contacts", "503", "companies")
    assert [str(r.to_object_id) for r in back.results] == ["112"]
    members = hubspot.crm.lists.memberships_api.get_page("7")
    assert [m.record_id for m in members.results] == ["112"]
    hubspot.crm.companies.basic_api.merge(
        PublicMergeInput(primary_object_id="114", object_id_to_merge="112")
    )
    primary = hubspot.crm.companies.basic_api.get_by_id("111", properties=["hs_merged_object_ids"])
    assert primary.id == "114"
    assert primary.properties["hs_merged_object_ids"] == "112;111"
    assert sandbox.state.hubspot.associated("companies", "114", "contacts") == ["503", "504"]


def test_merge_refusals(hubspot: HubSpot) -> None:
    with api_error(404) as caught:
        hubspot.crm.companies.basic_api.merge(
            PublicMergeInput(primary_object_id="115", object_id_to_merge="9999")
        )
    assert caught.body["category"] == "OBJECT_NOT_FOUND"
    with api_error(400) as caught:
        hubspot.crm.companies.basic_api.merge(
            PublicMergeInput(primary_object_id="115", object_id_to_merge="115")
        )
    assert caught.body["category"] == "VALIDATION_ERROR"
    hubspot.crm.companies.basic_api.archive("116")
    with api_error(404):
        hubspot.crm.companies.basic_api.merge(
            PublicMergeInput(primary_object_id="115", object_id_to_merge="116")
        )
