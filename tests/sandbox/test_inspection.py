"""The `/_sandbox/*` endpoints tests, benchmarks and the demo read and steer."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from hubspot import HubSpot

from healthscore.core.crm import CrmSnapshot
from healthscore.sandbox import SandboxUrls, running_sandbox


def _call(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def test_stats_count_calls_per_endpoint_template(hubspot: HubSpot, sandbox: SandboxUrls) -> None:
    hubspot.crm.companies.basic_api.get_page(limit=1)
    hubspot.crm.companies.basic_api.get_by_id("101")
    hubspot.crm.companies.basic_api.get_by_id("102")
    stats = _call(sandbox.base_url + "/_sandbox/stats")
    assert stats["calls"] == {
        "GET /crm/v3/objects/{objectType}": 1,
        "GET /crm/v3/objects/{objectType}/{objectId}": 2,
    }
    assert stats["total_calls"] == 3 and stats["rate_limited"] == 0
    _call(sandbox.base_url + "/_sandbox/clear-stats", {})
    assert _call(sandbox.base_url + "/_sandbox/stats")["total_calls"] == 0


def test_reset_with_a_new_seed(hubspot: HubSpot, sandbox: SandboxUrls) -> None:
    seed = CrmSnapshot.from_json({"companies": [{"id": "7", "properties": {"name": "Solo"}}]})
    assert _call(sandbox.base_url + "/_sandbox/reset", seed.to_json())["ok"] is True
    assert [c.id for c in hubspot.crm.companies.basic_api.get_page().results] == ["7"]
    _call(sandbox.base_url + "/_sandbox/reset", {})
    assert hubspot.crm.companies.basic_api.get_page().results == []


def test_fault_rate_changes_at_runtime(sandbox: SandboxUrls) -> None:
    answer = _call(sandbox.base_url + "/_sandbox/faults", {"rate": 0.25, "seed": 3})
    assert answer == {"ok": True, "rate": 0.25}
    assert sandbox.limits.fault_rate == 0.25


def test_lists_with_members(hubspot: HubSpot, sandbox: SandboxUrls) -> None:
    created = hubspot.crm.lists.lists_api.create(
        {"name": "Red accounts", "objectTypeId": "0-2", "processingType": "MANUAL"}
    )
    hubspot.crm.lists.memberships_api.add(created.list.list_id, ["101", "103"])
    lists = _call(sandbox.base_url + "/_sandbox/hubspot/lists")["lists"]
    assert lists[0]["name"] == "Red accounts" and lists[0]["members"] == ["101", "103"]


def test_seed_from_a_snapshot_object_and_fixed_timestamps() -> None:
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [
                {
                    "id": "5",
                    "properties": {
                        "name": "Dated",
                        "createdate": "2024-02-03T04:05:06Z",
                        "hs_lastmodifieddate": "2024-03-01T00:00:00.000Z",
                    },
                }
            ]
        }
    )
    with running_sandbox(snapshot) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url)
        company = client.crm.companies.basic_api.get_by_id("5")
        assert company.properties["hs_lastmodifieddate"] == "2024-03-01T00:00:00.000Z"
        raw = sandbox.state.hubspot.objects["companies"]["5"]
        assert raw.created_at == "2024-02-03T04:05:06.000Z"
