"""CRM objects through the real hubspot-api-client: paging, reads, writes, batch limits."""

from __future__ import annotations

from hubspot import HubSpot
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from healthscore.sandbox import SandboxUrls

from .conftest import COMPANY_COUNT, api_error


def test_list_pages_to_the_very_end(hubspot: HubSpot) -> None:
    ids: list[str] = []
    pages = 0
    after = None
    while True:
        page = hubspot.crm.companies.basic_api.get_page(limit=100, after=after)
        pages += 1
        ids.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 3
    assert len(ids) == COMPANY_COUNT == len(set(ids))


def test_list_limit_above_100_is_a_validation_error(hubspot: HubSpot) -> None:
    with api_error(400) as caught:
        hubspot.crm.companies.basic_api.get_page(limit=101)
    assert caught.body["category"] == "VALIDATION_ERROR"


def test_only_requested_properties_plus_defaults(hubspot: HubSpot) -> None:
    page = hubspot.crm.objects.basic_api.get_page(
        "0-2", limit=1, properties=["seats_purchased", "no_such_property", "industry"]
    )
    props = page.results[0].properties
    assert set(props) == {
        "seats_purchased",
        "industry",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    }
    assert props["industry"] is None
    assert props["createdate"] == "2025-01-02T10:00:00Z"
    default = hubspot.crm.companies.basic_api.get_page(limit=1).results[0].properties
    assert set(default) == {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}


def test_list_with_associations(hubspot: HubSpot) -> None:
    page = hubspot.crm.contacts.basic_api.get_page(limit=10, associations=["companies"])
    first = page.results[0]
    assert [a.id for a in first.associations["companies"].results] == ["101"]
    assert first.properties["lastmodifieddate"]


def test_get_by_id_and_404(hubspot: HubSpot) -> None:
    company = hubspot.crm.companies.basic_api.get_by_id("150", properties=["name"])
    assert company.properties["name"] == "Company 050"
    assert company.properties["hs_object_id"] == "150"
    by_domain = hubspot.crm.companies.basic_api.get_by_id("c7.example.com", id_property="domain")
    assert by_domain.id == "107"
    with api_error(404):
        hubspot.crm.companies.basic_api.get_by_id("999999")


def test_create_task_associated_with_a_company(hubspot: HubSpot) -> None:
    task = hubspot.crm.objects.basic_api.create(
        "tasks",
        SimplePublicObjectInputForCreate(
            properties={
                "hs_task_subject": "Call the champion",
                "hs_timestamp": "2026-11-01T09:00:00.000Z",
                "hs_task_status": "NOT_STARTED",
            },
            associations=[
                {
                    "to": {"id": "101"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ],
        ),
    )
    assert int(task.id) > 350
    assert task.properties["hs_task_subject"] == "Call the champion"
    assoc = hubspot.crm.associations.v4.batch_api.get_page(
        "companies", "tasks", {"inputs": [{"id": "101"}]}
    )
    assert [str(t.to_object_id) for t in assoc.results[0].to] == [task.id]


def test_create_with_an_unknown_association_type_is_refused(hubspot: HubSpot) -> None:
    with api_error(400):
        hubspot.crm.objects.basic_api.create(
            "tasks",
            SimplePublicObjectInputForCreate(
                properties={"hs_task_subject": "x"},
                associations=[{"to": {"id": "101"}, "types": [{"associationTypeId": 9}]}],
            ),
        )


def test_patch_moves_last_modified(hubspot: HubSpot) -> None:
    before = hubspot.crm.companies.basic_api.get_by_id("101")
    updated = hubspot.crm.companies.basic_api.update(
        "101", SimplePublicObjectInput(properties={"seats_purchased": "77"})
    )
    assert updated.properties["seats_purchased"] == "77"
    assert updated.properties["hs_lastmodifieddate"].endswith("Z")
    assert updated.updated_at >= before.updated_at
    assert updated.properties["hs_lastmodifieddate"] != before.properties["hs_lastmodifieddate"]


def test_batch_read_reports_missing_ids(hubspot: HubSpot) -> None:
    result = hubspot.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            properties=["name"], inputs=[{"id": "101"}, {"id": "102"}, {"id": "nope"}]
        )
    )
    assert result.status == "COMPLETE"
    assert [r.id for r in result.results] == ["101", "102"]
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"ids": ["nope"]}


def test_batch_read_by_id_property(hubspot: HubSpot) -> None:
    result = hubspot.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            properties=["name"], id_property="domain", inputs=[{"id": "c3.example.com"}]
        )
    )
    assert [r.id for r in result.results] == ["103"]


def test_batch_of_101_inputs_is_a_400(hubspot: HubSpot) -> None:
    inputs = [{"id": str(100 + i)} for i in range(1, 102)]
    with api_error(400):
        hubspot.crm.companies.batch_api.read(
            BatchReadInputSimplePublicObjectId(properties=["name"], inputs=inputs)
        )
    with api_error(400):
        hubspot.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": i["id"], "properties": {"name": "x"}} for i in inputs]
            )
        )
    with api_error(400):
        hubspot.crm.companies.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"name": "x"}}] * 101
            )
        )


def test_batch_update_and_create(hubspot: HubSpot, sandbox: SandboxUrls) -> None:
    result = hubspot.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": str(100 + i), "properties": {"seats_purchased": str(i * 2)}}
                for i in range(1, 101)
            ]
        )
    )
    assert result.status == "COMPLETE" and len(result.results) == 100
    assert sandbox.state.hubspot.objects["companies"]["150"].properties["seats_purchased"] == "100"
    created = hubspot.crm.companies.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"name": "New A"}}, {"properties": {"name": "New B"}}]
        )
    )
    assert sorted(r.properties["name"] for r in created.results) == ["New A", "New B"]


def test_updating_an_undefined_property_fails_and_applies_nothing(
    hubspot: HubSpot, sandbox: SandboxUrls
) -> None:
    with api_error(400) as caught:
        hubspot.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": "101", "properties": {"seats_purchased": "1000"}},
                    {"id": "102", "properties": {"health_score": "42"}},
                ]
            )
        )
    body = caught.body
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert sandbox.state.hubspot.objects["companies"]["101"].properties["seats_purchased"] == "1"


def test_archived_objects_leave_the_default_list(hubspot: HubSpot) -> None:
    hubspot.crm.companies.basic_api.archive("101")
    ids = {r.id for r in hubspot.crm.companies.basic_api.get_page(limit=5).results}
    assert "101" not in ids
    archived = hubspot.crm.companies.basic_api.get_page(limit=5, archived=True)
    assert [r.id for r in archived.results] == ["101"]
