"""CRM search through hubspot-api-client: operators, sorts, paging, the 10k cap, its own rate."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import PublicObjectSearchRequest

from healthscore.sandbox import running_sandbox

from .conftest import api_error


def _search(client: HubSpot, filters: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": filters}] if filters else [], limit=200, **kwargs
    )
    result = client.crm.objects.search_api.do_search("companies", request)
    return [r.id for r in result.results]


def _f(prop: str, operator: str, **values: Any) -> dict[str, Any]:
    return {"propertyName": prop, "operator": operator, **values}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (_f("seats_purchased", "EQ", value="7"), ["107"]),
        (_f("seats_purchased", "GT", value="248"), ["349", "350"]),
        (_f("seats_purchased", "GTE", value="249"), ["349", "350"]),
        (_f("seats_purchased", "LT", value="3"), ["101", "102"]),
        (_f("seats_purchased", "LTE", value="2"), ["101", "102"]),
        (_f("seats_purchased", "BETWEEN", value="10", highValue="12"), ["110", "111", "112"]),
        (_f("domain", "IN", values=["c5.example.com", "C6.EXAMPLE.COM"]), ["105", "106"]),
        (_f("name", "CONTAINS_TOKEN", value="042"), ["142"]),
        (_f("name", "CONTAINS_TOKEN", value="04*"), [str(140 + i) for i in range(10)]),
        (_f("hs_object_id", "EQ", value="200"), ["200"]),
    ],
)
def test_operators(hubspot: HubSpot, flt: dict[str, Any], expected: list[str]) -> None:
    assert _search(hubspot, [flt]) == expected


def test_and_within_a_group_or_between_groups(hubspot: HubSpot) -> None:
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "seats_purchased", "operator": "LT", "value": "10"},
                    {"propertyName": "hubspot_owner_id", "operator": "EQ", "value": "2"},
                ]
            },
            {"filters": [{"propertyName": "seats_purchased", "operator": "EQ", "value": "250"}]},
        ],
        limit=100,
    )
    result = hubspot.crm.objects.search_api.do_search("companies", request)
    assert [r.id for r in result.results] == ["102", "104", "106", "108", "350"]
    assert result.total == 5


def test_presence_and_absence(hubspot: HubSpot, sandbox: Any) -> None:
    sandbox.state.hubspot.objects["companies"]["101"].properties["industry"] = "SOFTWARE"
    has = [{"propertyName": "industry", "operator": "HAS_PROPERTY"}]
    assert _search(hubspot, has) == ["101"]
    missing = [{"propertyName": "industry", "operator": "NOT_HAS_PROPERTY"}]
    assert len(_search(hubspot, missing)) == 200  # one full page of the 249 others
    neq = [{"propertyName": "industry", "operator": "NEQ", "value": "SOFTWARE"}]
    assert "101" not in _search(hubspot, neq)
    not_in = [{"propertyName": "seats_purchased", "operator": "NOT_IN", "values": ["1", "2"]}]
    assert _search(hubspot, not_in)[:2] == ["103", "104"]


def test_dates_compare_as_instants_given_epoch_ms_or_iso(hubspot: HubSpot) -> None:
    # createdate of company i is 2025-01-(i % 28 + 1)T10:00Z: the 2nd and the 3rd of January
    epoch_jan_2 = 1735776000000  # 2025-01-02T00:00:00Z
    by_epoch = _search(
        hubspot,
        [
            {"propertyName": "createdate", "operator": "GTE", "value": str(epoch_jan_2)},
            {"propertyName": "createdate", "operator": "LT", "value": "2025-01-04T00:00:00Z"},
        ],
    )
    by_iso = _search(
        hubspot,
        [
            {
                "propertyName": "createdate",
                "operator": "BETWEEN",
                "value": "2025-01-02T00:00:00.000Z",
                "highValue": str(epoch_jan_2 + 2 * 86_400_000 - 1),
            }
        ],
    )
    assert by_epoch == by_iso
    assert by_epoch[:2] == ["101", "102"] and len(by_epoch) == 18


def test_sorts_as_objects_or_strings(hubspot: HubSpot) -> None:
    flt = [{"propertyName": "seats_purchased", "operator": "LTE", "value": "3"}]
    desc = [{"propertyName": "seats_purchased", "direction": "DESCENDING"}]
    assert _search(hubspot, flt, sorts=desc) == ["103", "102", "101"]
    assert _search(hubspot, flt, sorts=["-seats_purchased"]) == ["103", "102", "101"]
    assert _search(hubspot, flt, sorts=["seats_purchased"]) == ["101", "102", "103"]


def test_paging_to_the_end(hubspot: HubSpot) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        request = PublicObjectSearchRequest(limit=100, after=after, properties=["name"])
        result = hubspot.crm.objects.search_api.do_search("companies", request)
        pages += 1
        seen.extend(r.id for r in result.results)
        assert result.total == 250
        if result.paging is None:
            break
        after = result.paging.next.after
    assert pages == 3 and len(set(seen)) == 250
    assert set(result.results[0].properties) == {
        "name",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    }


def test_limit_above_200_is_refused(hubspot: HubSpot) -> None:
    with api_error(400):
        hubspot.crm.objects.search_api.do_search("companies", PublicObjectSearchRequest(limit=201))


def test_search_stops_at_10000_results() -> None:
    seed = {
        "companies": [{"id": str(i), "properties": {"name": f"C{i}"}} for i in range(1, 10_101)]
    }
    with running_sandbox(seed, search_rate_per_second=100) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
        search = client.crm.objects.search_api.do_search
        last = search("companies", PublicObjectSearchRequest(limit=100, after="9900"))
        assert last.total == 10_100
        assert len(last.results) == 100
        assert last.paging.next.after == "10000"
        with api_error(400) as error:
            search("companies", PublicObjectSearchRequest(limit=100, after="10000"))
        assert error.body["category"] == "VALIDATION_ERROR"
        straddling = search("companies", PublicObjectSearchRequest(limit=200, after="9900"))
        assert len(straddling.results) == 100


def test_search_has_its_own_per_second_limit() -> None:
    with running_sandbox({"companies": []}, search_rate_per_second=2) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
        search = client.crm.objects.search_api.do_search
        search("companies", PublicObjectSearchRequest(limit=1))
        search("companies", PublicObjectSearchRequest(limit=1))
        with api_error(429) as error:
            search("companies", PublicObjectSearchRequest(limit=1))
        assert error.body["errorType"] == "RATE_LIMIT"
        assert error.body["policyName"] == "SECONDLY"
        # the burst limit is untouched: ordinary reads still work
        client.crm.companies.basic_api.get_page(limit=1)


def test_association_filter(hubspot: HubSpot) -> None:
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "associations.company", "operator": "EQ", "value": "101"}
                ]
            }
        ]
    )
    result = hubspot.crm.objects.search_api.do_search("contacts", request)
    assert result.total == 3
