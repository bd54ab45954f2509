"""Associations v4, owners, properties and lists through hubspot-api-client."""

from __future__ import annotations

from hubspot import HubSpot
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error


def test_association_batch_read(hubspot: HubSpot) -> None:
    result = hubspot.crm.associations.v4.batch_api.get_page(
        "companies", "contacts", {"inputs": [{"id": "101"}, {"id": "102"}]}
    )
    assert result.status == "COMPLETE"
    assert [r._from.id for r in result.results] == ["101"]
    to = result.results[0].to
    assert sorted(str(t.to_object_id) for t in to) == ["1000", "1001", "1002"]
    assert to[0].association_types[0].category == "HUBSPOT_DEFINED"
    assert to[0].association_types[0].type_id == 280
    assert result.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert result.errors[0].context == {"fromObjectId": ["102"]}


def test_associations_are_stored_both_ways_and_accept_type_ids(hubspot: HubSpot) -> None:
    result = hubspot.crm.associations.v4.batch_api.get_page(
        "0-47", "0-2", {"inputs": [{"id": "2001"}]}
    )
    assert sorted(str(t.to_object_id) for t in result.results[0].to) == ["101", "102"]


def test_association_paging_per_id_and_input_limit() -> None:
    seed = {
        "companies": [{"id": "1", "properties": {"name": "Big"}}],
        "contacts": [
            {"id": str(10_000 + i), "properties": {}, "associations": {"companies": ["1"]}}
            for i in range(1_200)
        ],
    }
    with running_sandbox(seed) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url)
        batch = client.crm.associations.v4.batch_api.get_page
        ids: list[str] = []
        after = None
        pages = 0
        while True:
            result = batch("companies", "contacts", {"inputs": [{"id": "1", "after": after}]})
            pages += 1
            entry = result.results[0]
            ids.extend(str(t.to_object_id) for t in entry.to)
            if entry.paging is None:
                break
            after = entry.paging.next.after
        assert pages == 3 and len(set(ids)) == 1_200
        batch("companies", "contacts", {"inputs": [{"id": str(i)} for i in range(1_000)]})
        with api_error(400):
            batch("companies", "contacts", {"inputs": [{"id": str(i)} for i in range(1_001)]})


def test_owners_paged_and_filtered(hubspot: HubSpot) -> None:
    owners = hubspot.crm.owners.owners_api
    first = owners.get_page(limit=1)
    assert first.results[0].email == "ana@example.com"
    second = owners.get_page(limit=1, after=first.paging.next.after)
    assert second.results[0].email == "bo@example.com" and second.paging is None
    assert [o.id for o in owners.get_page(email="bo@example.com").results] == ["2"]
    assert owners.get_by_id(1).first_name == "Ana"
    with api_error(400):
        owners.get_page(limit=501)
    with api_error(404):
        owners.get_by_id(99)


def test_properties_and_groups(hubspot: HubSpot) -> None:
    core = hubspot.crm.properties.core_api
    groups = hubspot.crm.properties.groups_api
    names = {p.name for p in core.get_all("companies").results}
    assert {"name", "seats_purchased", "hs_lastmodifieddate"} <= names
    groups.create("companies", PropertyGroupCreate(name="healthscore", label="Health score"))
    with api_error(409):
        groups.create("companies", PropertyGroupCreate(name="healthscore", label="Again"))
    assert "healthscore" in {g.name for g in groups.get_all("companies").results}
    created = core.create(
        "companies",
        PropertyCreate(
            name="health_score",
            label="Health score",
            type="number",
            field_type="number",
            group_name="healthscore",
        ),
    )
    assert created.name == "health_score" and created.hubspot_defined is False
    assert core.get_by_name("companies", "health_score").type == "number"
    with api_error(409):
        core.create(
            "companies",
            PropertyCreate(
                name="health_score",
                label="x",
                type="number",
                field_type="number",
                group_name="healthscore",
            ),
        )
    with api_error(404):
        core.get_by_name("companies", "nope")
    # once defined, the property can be written
    from hubspot.crm.objects import SimplePublicObjectInput

    hubspot.crm.companies.basic_api.update(
        "101", SimplePublicObjectInput(properties={"health_score": "81"})
    )


def test_lists_create_find_and_membership(hubspot: HubSpot, sandbox: SandboxUrls) -> None:
    lists = hubspot.crm.lists.lists_api
    members = hubspot.crm.lists.memberships_api
    created = lists.create({"name": "At risk", "objectTypeId": "0-2", "processingType": "MANUAL"})
    list_id = created.list.list_id
    assert created.list.processing_type == "MANUAL"
    assert lists.get_by_name("At risk", "0-2").list.list_id == list_id
    assert lists.get_by_id(list_id).list.name == "At risk"
    with api_error(404):
        lists.get_by_name("Nope", "0-2")
    added = members.add(list_id, [str(100 + i) for i in range(1, 121)] + ["424242"])
    assert len(added.records_ids_added) == 120
    assert added.record_ids_missing == ["424242"]
    removed = members.remove(list_id, ["101", "102"])
    assert removed.record_ids_removed == ["101", "102"]
    page = members.get_page(list_id, limit=100)
    rest = members.get_page(list_id, limit=100, after=page.paging.next.after)
    ids = [m.record_id for m in page.results + rest.results]
    assert len(ids) == 118 and "101" not in ids and rest.paging is None
    assert sandbox.state.hubspot.lists[list_id].members.keys() == set(ids)
