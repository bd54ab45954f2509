"""The sandbox's CRM Exports API through the real hubspot-api-client.

Spec: HubSpot/HubSpot-public-api-spec-collection
`PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json`. One sandbox for the
module; every test starts from the same seed (reset through `/_sandbox/reset`)
with one company and one contact archived and one association removed, and the
export knobs at HubSpot's values.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from hubspot.crm.exports import ApiException

from healthscore.sandbox import SandboxUrls, running_sandbox

BIG = [str(10_001 + i) for i in range(1_001)]  # contacts of company 3000
TOKENS = {
    "admin": [
        "crm.export",
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
    ],
    "reader": ["crm.objects.companies.read"],
}
HEADER = [
    "Record ID",
    "Name",
    "Domain",
    "Industry",
    "Associated Contact IDs",
    "Associated Deal IDs",
    "Associated Meeting IDs",
]
ROWS = [
    ["20", "Acme, Inc.", "acme.example", "SOFTWARE", "502;501", "701;702", "801;802"],
    ["101", 'Beta "B" Co', "beta.example", "", "502;505", "701", ""],
    ["1000", "Gamma", "gamma.example", "RETAIL", "504", "", "801"],
    ["3000", "Big Co", "big.example", "SOFTWARE", ";".join(BIG[:1000]), "", ""],
]


def _seed() -> dict[str, Any]:
    def company(record_id: str, name: str, domain: str, industry: str | None) -> dict[str, Any]:
        props = {"name": name, "domain": domain}
        if industry:
            props["industry"] = industry
        return {"id": record_id, "properties": props}

    def linked(record_id: str, props: dict[str, str], companies: list[str]) -> dict[str, Any]:
        return {"id": record_id, "properties": props, "associations": {"companies": companies}}

    return {
        "companies": [
            company("101", 'Beta "B" Co', "beta.example", None),
            company("20", "Acme, Inc.", "acme.example", "SOFTWARE"),
            company("1000", "Gamma", "gamma.example", "RETAIL"),
            company("1001", "Old Co", "old.example", "SOFTWARE"),  # archived by `fresh`
            company("3000", "Big Co", "big.example", "SOFTWARE"),
        ],
        # 502 before 501: the v4 read (and so the export) keeps association order, not id order
        "contacts": [
            linked("502", {"firstname": "Bo", "lastname": "Chen"}, ["20", "101"]),
            linked("501", {"firstname": "Ana", "lastname": "Ruiz"}, ["20"]),
            linked("503", {"email": "cy@acme.example"}, ["20"]),  # archived by `fresh`
            linked("504", {"firstname": "Di"}, ["20", "1000"]),  # 20-504 removed by `fresh`
            linked("505", {"email": "ed@beta.example"}, ["101"]),
            *(linked(i, {"email": f"p{i}@big.example"}, ["3000"]) for i in BIG),
        ],
        "deals": [
            linked("701", {"dealname": "Renewal"}, ["101", "20"]),
            linked("702", {"dealname": "Upsell"}, ["20"]),
            linked("703", {"dealname": "Lost"}, ["1001"]),
        ],
        "meetings": [
            linked("801", {"hs_meeting_title": "Kickoff"}, ["20", "1000"]),
            linked("802", {"hs_meeting_title": "QBR"}, ["20"]),
        ],
        "subscriptions": [
            linked("9002", {"plan": "Silver"}, ["101"]),
            linked("9001", {"plan": "Gold"}, ["20"]),
        ],
        "schemas": [
            {
                "name": "subscriptions",
                "objectTypeId": "2-1234567",
                "labels": {"singular": "Subscription", "plural": "Subscriptions"},
                "primaryDisplayProperty": "plan",
                "properties": [{"name": "plan", "type": "string", "label": "Plan"}],
                "associatedObjects": ["COMPANY"],
            }
        ],
        "lists": [
            {
                "listId": "7",
                "name": "Key accounts",
                "objectTypeId": "0-2",
                "members": ["1000", "101"],
            }
        ],
    }


SEED = _seed()


# One HTTP client for the module's plain calls (a new httpx client each call costs ~0.1 s).
WEB: list[httpx.Client] = []


def web() -> httpx.Client:
    return WEB[0]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with (
        running_sandbox(SEED, tokens=TOKENS, rate_limit=100_000) as urls,
        httpx.Client() as http,
    ):
        WEB.append(http)
        yield urls
        WEB.clear()


def client(sandbox: SandboxUrls, token: str = "admin") -> HubSpot:
    return HubSpot(access_token=token, host=sandbox.hubspot_url)


@pytest.fixture(autouse=True)
def fresh(sandbox: SandboxUrls) -> None:
    """The seed again, one company and one contact archived, one association removed."""
    assert web().post(f"{sandbox.base_url}/_sandbox/reset", json=SEED).json() == {"ok": True}
    sandbox.state.export_daily_limit = 30
    sandbox.state.export_seconds = 0.0
    sandbox.state.export_partition_rows = 1_000_000
    hubspot = client(sandbox)
    hubspot.crm.companies.basic_api.archive("1001")
    hubspot.crm.contacts.basic_api.archive("503")
    hubspot.crm.associations.v4.basic_api.archive("companies", "20", "contacts", "504")


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exportType": "VIEW",
        "format": "CSV",
        "exportName": "Companies",
        "objectType": "COMPANY",
        "objectProperties": ["name", "domain", "industry"],
        "associatedObjectType": ["CONTACT", "DEAL", "MEETING"],
        "language": "EN",
        "exportInternalValuesOptions": ["VALUES"],
        "includeLabeledAssociations": False,
        "includePrimaryDisplayPropertyForAssociatedObjects": False,
        "overrideAssociatedObjectsPerDefinitionPerRowLimit": False,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def start(sandbox: SandboxUrls, body: dict[str, Any], token: str = "admin") -> str:
    task = client(sandbox, token).crm.exports.public_exports_api.start(body)
    assert task.links == {
        "status": f"{sandbox.base_url}/crm/v3/exports/export/async/tasks/{task.id}/status"
    }
    return str(task.id)


def download(sandbox: SandboxUrls, task_id: str) -> httpx.Response:
    status = client(sandbox).crm.exports.public_exports_api.get_status(task_id)
    assert status.status == "COMPLETE"
    assert status.result == f"{sandbox.base_url}/hubfs/exports/{task_id}.csv" or (
        status.result == f"{sandbox.base_url}/hubfs/exports/{task_id}.zip"
    )
    response = web().get(status.result)  # no credentials
    assert response.status_code == 200
    return response


def rows(sandbox: SandboxUrls, body: dict[str, Any]) -> list[list[str]]:
    response = download(sandbox, start(sandbox, body))
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def export_details(sandbox: SandboxUrls, export_id: str) -> httpx.Response:
    return web().get(
        f"{sandbox.base_url}/crm/v3/exports/export/{export_id}",
        headers={"Authorization": "Bearer admin"},
    )


class Refusal:
    status: int = 0
    body: dict[str, Any] = {}  # noqa: RUF012


@contextmanager
def refused(status: int) -> Iterator[Refusal]:
    """Expect hubspot-api-client's ApiException with `status`; keep its JSON body."""
    found = Refusal()
    with pytest.raises(ApiException) as caught:
        yield found
    found.status = caught.value.status
    found.body = json.loads(caught.value.body)
    assert found.status == status, found.body


# ---------------------------------------------------------------- the file


def test_view_export_rows_are_exact(sandbox: SandboxUrls) -> None:
    response = download(sandbox, start(sandbox, request()))
    text = response.content.decode("utf-8")
    assert text.startswith(
        "Record ID,Name,Domain,Industry,Associated Contact IDs,Associated Deal IDs,"
        "Associated Meeting IDs\r\n"
        '20,"Acme, Inc.",acme.example,SOFTWARE,502;501,701;702,801;802\r\n'
        '101,"Beta ""B"" Co",beta.example,,502;505,701,\r\n'
        "1000,Gamma,gamma.example,RETAIL,504,,801\r\n"
    )
    assert list(csv.reader(io.StringIO(text))) == [HEADER, *ROWS]
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Companies.csv\"; filename*=UTF-8''Companies.csv"
    )
    # the IDs columns keep the order of the v4 association read
    v4 = client(sandbox).crm.associations.v4.basic_api.get_page("companies", "20", "contacts")
    assert [r.to_object_id for r in v4.results] == ["502", "501"]


GOLD, SILVER = ["9001", "Gold"], ["9002", "Silver"]


def test_names_headers_primary_display_and_object_type_ids(sandbox: SandboxUrls) -> None:
    body = request(
        objectType="companies",
        objectProperties=["hs_object_id", "name", "name"],
        associatedObjectType=["contacts", "0-3", "p_subscriptions"],
        exportInternalValuesOptions=["NAMES", "VALUES"],
        includePrimaryDisplayPropertyForAssociatedObjects=True,
        publicCrmSearchRequest={
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "NEQ", "value": "3000"}]}
            ],
            "filters": [],
            "sorts": [],
        },
    )
    assert rows(sandbox, body) == [
        [
            "Record ID",
            "name",
            "Associated Contact IDs",
            "Associated Contact",
            "Associated Deal IDs",
            "Associated Deal",
            "Associated Subscription IDs",
            "Associated Subscription",
        ],
        ["20", "Acme, Inc.", "502;501", "Bo Chen;Ana Ruiz", "701;702", "Renewal;Upsell", *GOLD],
        ["101", 'Beta "B" Co', "502;505", "Bo Chen;ed@beta.example", "701", "Renewal", *SILVER],
        ["1000", "Gamma", "504", "Di", "", "", "", ""],
    ]


def test_single_associated_type_string_and_filter_groups(sandbox: SandboxUrls) -> None:
    body = request(
        objectProperties=["industry"],
        associatedObjectType="MEETING",  # older clients send one name
        publicCrmSearchRequest={
            "filterGroups": [
                {"filters": [{"propertyName": "industry", "operator": "EQ", "value": "SOFTWARE"}]},
                {"filters": [{"propertyName": "name", "operator": "EQ", "value": "Gamma"}]},
            ],
            "filters": [{"propertyName": "associations.meeting", "operator": "HAS_PROPERTY"}],
            "sorts": [],
        },
    )
    assert rows(sandbox, body) == [
        ["Record ID", "Industry", "Associated Meeting IDs"],
        ["20", "SOFTWARE", "801;802"],
        ["1000", "RETAIL", "801"],
    ]


def test_contacts_by_object_type_id_leave_out_the_archived_contact(sandbox: SandboxUrls) -> None:
    body = request(objectType="0-1", objectProperties=["email"], associatedObjectType=["COMPANY"])
    task_id = start(sandbox, body)
    found = list(csv.reader(io.StringIO(download(sandbox, task_id).content.decode("utf-8"))))
    assert found[:5] == [
        ["Record ID", "Email", "Associated Company IDs"],
        ["501", "", "20"],
        ["502", "", "20;101"],
        ["504", "", "1000"],
        ["505", "ed@beta.example", "101"],
    ]
    assert found[5:] == [[i, f"p{i}@big.example", "3000"] for i in BIG]
    assert export_details(sandbox, task_id).json()["recordCount"] == 4 + len(BIG)


def test_custom_object_export(sandbox: SandboxUrls) -> None:
    body = request(objectType="2-1234567", objectProperties=["plan"], associatedObjectType=["0-2"])
    assert rows(sandbox, body) == [
        ["Record ID", "Plan", "Associated Company IDs"],
        ["9001", "Gold", "20"],
        ["9002", "Silver", "101"],
    ]


def test_list_export_holds_the_lists_live_members(sandbox: SandboxUrls) -> None:
    body = request(exportType="LIST", listId="7", objectProperties=["name"])
    assert rows(sandbox, body) == [
        ["Record ID", "Name", *HEADER[4:]],
        ["101", 'Beta "B" Co', *ROWS[1][4:]],
        ["1000", "Gamma", *ROWS[2][4:]],
    ]


def test_per_row_association_limit_and_its_override(sandbox: SandboxUrls) -> None:
    only_big = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "3000"}]}
        ],
        "filters": [],
        "sorts": [],
    }
    body = request(
        objectProperties=["name"], associatedObjectType=["CONTACT"], publicCrmSearchRequest=only_big
    )
    assert rows(sandbox, body) == [
        ["Record ID", "Name", "Associated Contact IDs"],
        ["3000", "Big Co", ";".join(BIG[:1000])],
    ]
    body["overrideAssociatedObjectsPerDefinitionPerRowLimit"] = True
    assert rows(sandbox, body)[1] == ["3000", "Big Co", ";".join(BIG)]


def test_rows_are_taken_when_the_export_starts(sandbox: SandboxUrls) -> None:
    task_id = start(sandbox, request())
    hubspot = client(sandbox)
    hubspot.crm.companies.basic_api.update("20", SimplePublicObjectInput(properties={"name": "X"}))
    hubspot.crm.companies.basic_api.archive("101")
    hubspot.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "New"})
    )
    hubspot.crm.associations.v4.basic_api.create_default("companies", "1000", "contacts", "505")
    text = download(sandbox, task_id).content.decode("utf-8")
    assert list(csv.reader(io.StringIO(text))) == [HEADER, *ROWS]
    after = rows(sandbox, request(objectProperties=["name"], associatedObjectType=["CONTACT"]))
    assert [r[:3] for r in after[:3]] == [
        ["Record ID", "Name", "Associated Contact IDs"],
        ["20", "X", "502;501"],
        ["1000", "Gamma", "504;505"],
    ]
    assert after[-1] == [str(10_001 + len(BIG)), "New", ""]  # the next id HubSpot hands out


def test_partitioned_export_is_a_zip_of_csvs_with_headers(sandbox: SandboxUrls) -> None:
    sandbox.state.export_partition_rows = 2
    task_id = start(sandbox, request(exportName="Parts", objectProperties=["name"]))
    response = download(sandbox, task_id)
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["Parts-1.csv", "Parts-2.csv"]
    parts = [
        list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))
        for name in archive.namelist()
    ]
    header = ["Record ID", "Name", *HEADER[4:]]
    assert parts == [
        [header, ["20", "Acme, Inc.", *ROWS[0][4:]], ["101", 'Beta "B" Co', *ROWS[1][4:]]],
        [header, ["1000", "Gamma", *ROWS[2][4:]], ["3000", "Big Co", *ROWS[3][4:]]],
    ]
    sandbox.state.export_partition_rows = 4  # exactly the limit: one plain CSV
    assert len(rows(sandbox, request(objectProperties=["name"]))) == 5


# ---------------------------------------------------------------- status and details


def test_status_is_processing_until_export_seconds_pass(sandbox: SandboxUrls) -> None:
    sandbox.state.export_seconds = 0.6
    api = client(sandbox).crm.exports.public_exports_api
    task_id = start(sandbox, request())
    status = api.get_status(task_id)
    assert (status.status, status.result, status.num_errors) == ("PROCESSING", None, 0)
    details = export_details(sandbox, task_id).json()
    assert details["exportState"] == "PROCESSING"
    assert details["updatedAt"] == details["createdAt"]
    assert web().get(f"{sandbox.base_url}/hubfs/exports/{task_id}.csv").status_code == 404
    time.sleep(0.7)
    done = api.get_status(task_id)
    assert done.status == "COMPLETE"
    assert done.result == f"{sandbox.base_url}/hubfs/exports/{task_id}.csv"
    assert done.requested_at == done.started_at
    assert done.completed_at - done.started_at == timedelta(milliseconds=600)
    assert (done.num_errors, done.links) == (0, {})
    status_url = f"{sandbox.base_url}/crm/v3/exports/export/async/tasks/{task_id}/status"
    raw = web().get(status_url, headers={"Authorization": "Bearer admin"}).json()
    assert raw == {
        "status": "COMPLETE",
        "requestedAt": details["createdAt"],
        "startedAt": details["createdAt"],
        "completedAt": raw["completedAt"],
        "numErrors": 0,
        "links": {},
        "result": done.result,
    }
    assert export_details(sandbox, task_id).json() == {
        "id": task_id,
        "exportName": "Companies",
        "exportType": "VIEW",
        "objectType": "COMPANY",
        "objectProperties": ["name", "domain", "industry"],
        "exportState": "DONE",
        "recordCount": 4,
        "createdAt": details["createdAt"],
        "updatedAt": raw["completedAt"],
    }
    first = web().get(done.result).content
    assert first == web().get(done.result).content  # read as often as wanted
    assert list(csv.reader(io.StringIO(first.decode("utf-8")))) == [HEADER, *ROWS]


def test_unknown_task_and_export_are_404(sandbox: SandboxUrls) -> None:
    with refused(404) as error:
        client(sandbox).crm.exports.public_exports_api.get_status("999999")
    assert error.body["category"] == "OBJECT_NOT_FOUND"
    assert export_details(sandbox, "999999").status_code == 404
    assert web().get(f"{sandbox.base_url}/hubfs/exports/999999.csv").status_code == 404


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"exportName": None}, "exportName", "exportName is required"),
        ({"objectProperties": ["name", "nope"]}, "objectProperties", "nope is not a property"),
        ({"objectProperties": []}, "objectProperties", "non-empty list"),
        ({"objectType": "widgets"}, "objectType", "widgets"),
        ({"objectType": "subscriptions"}, "objectType", "subscriptions"),  # bare custom name
        ({"format": "XLSX"}, "format", "the sandbox writes CSV only"),
        ({"format": "PDF"}, "format", "CSV, XLS, XLSX"),
        ({"exportType": "ALL"}, "exportType", "VIEW, LIST"),
        ({"language": None}, "language", "language is required"),
        ({"associatedObjectType": ["CONTACT", "gizmo"]}, "associatedObjectType", "gizmo"),
        ({"exportType": "LIST"}, "listId", "listId is required"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    sandbox: SandboxUrls, changes: dict[str, Any], field: str, words: str
) -> None:
    body = request()
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    with refused(400) as error:
        client(sandbox).crm.exports.public_exports_api.start(body)
    assert error.body["category"] == "VALIDATION_ERROR"
    assert field in error.body["message"] and words in error.body["message"]
    assert error.body["errors"][0]["in"] == field
    assert len(sandbox.state.hubspot.export_starts) == 0  # refused: not counted


def test_list_export_of_a_missing_list_is_404(sandbox: SandboxUrls) -> None:
    with refused(404) as error:
        start(sandbox, request(exportType="LIST", listId="999"))
    assert error.body["message"] == "List does not exist with id 999."


def test_export_needs_the_crm_export_scope(sandbox: SandboxUrls) -> None:
    task_id = start(sandbox, request())
    api = client(sandbox, "reader").crm.exports.public_exports_api
    for call in (lambda: api.start(request()), lambda: api.get_status(task_id)):
        with refused(403) as error:
            call()
        assert error.body["category"] == "MISSING_SCOPES"
        assert error.body["errors"][0]["context"] == {"requiredGranularScopes": ["crm.export"]}


def test_daily_export_limit_is_a_rolling_24_hours(sandbox: SandboxUrls) -> None:
    sandbox.state.export_daily_limit = 2
    start(sandbox, request())
    start(sandbox, request())
    with refused(429) as error:
        start(sandbox, request())
    assert error.body["category"] == "RATE_LIMITS"
    assert "daily export limit" in error.body["message"]
    starts = sandbox.state.hubspot.export_starts
    starts[0] -= 24 * 60 * 60  # the first start leaves the window
    start(sandbox, request())
    with refused(429):
        start(sandbox, request())


def test_exports_count_in_the_hubspot_rate_limiter_and_the_file_does_not(
    sandbox: SandboxUrls,
) -> None:
    web().post(f"{sandbox.base_url}/_sandbox/clear-stats")
    task_id = start(sandbox, request())
    status_url = f"{sandbox.base_url}/crm/v3/exports/export/async/tasks/{task_id}/status"
    answer = web().get(status_url, headers={"Authorization": "Bearer admin"})
    assert answer.status_code == 200 and "x-hubspot-ratelimit-remaining" in answer.headers
    assert web().get(status_url).status_code == 401  # the API needs a token
    file = web().get(answer.json()["result"])
    assert file.status_code == 200 and "x-hubspot-ratelimit-remaining" not in file.headers
    calls = web().get(f"{sandbox.base_url}/_sandbox/stats").json()["calls"]
    assert calls["POST /crm/v3/exports/export/async"] == 1
    assert calls["GET /crm/v3/exports/export/async/tasks/{taskId}/status"] == 2
    assert calls["GET /hubfs/exports/{fileName}"] == 1
