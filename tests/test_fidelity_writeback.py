"""Write-back against HubSpot's refusals: existing dropdowns, wrong types, non-Latin names.

The real hubspot-api-client against the sandbox, which validates values and scopes
the way HubSpot does (healthscore/sandbox/hubspot_values.py, hubspot_scopes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.properties import Option, PropertyCreate

from healthscore.core.crm import CrmSnapshot
from healthscore.integrations.hubspot.client import connect
from healthscore.integrations.hubspot.writeback import (
    property_specs,
    write_back,
    writeback_properties,
)
from healthscore.sandbox import running_sandbox
from tests.test_writeback import book, comparisons, snapshot

FULL = "full-token"
NO_SCHEMA_WRITE = "no-schema-write"
TOKENS = {
    FULL: [
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.schemas.companies.read",
        "crm.schemas.companies.write",
    ],
    NO_SCHEMA_WRITE: [
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.schemas.companies.read",
    ],
}


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with running_sandbox(seed=snapshot(150), tokens=TOKENS) as urls:
        yield urls


def old_trend_dropdown(urls: Any) -> HubSpot:
    """The properties as an older version left them: a trend dropdown without `new`."""
    client = HubSpot(access_token=FULL, host=urls.hubspot_url)
    for spec in property_specs(book())[:2] + property_specs(book())[3:]:
        body = spec.body("companyinformation")
        client.crm.properties.core_api.create(
            "companies",
            PropertyCreate(
                name=spec.name,
                label=spec.label,
                type=spec.type,
                field_type=spec.field_type,
                group_name=body["groupName"],
            ),
        )
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="customer_health_trend",
            label="Trend",
            type="enumeration",
            field_type="select",
            group_name="companyinformation",
            options=[
                Option(label=v.title(), value=v, display_order=i, hidden=False)
                for i, v in enumerate(["up", "down", "flat"])
            ],
        ),
    )
    return client


def test_a_dropdown_without_new_gets_the_option_added(sandbox: Any) -> None:
    client = old_trend_dropdown(sandbox)
    playbook, data = book(), snapshot(150)
    connection = connect(sandbox=True, base_url=sandbox.hubspot_url, token=FULL)
    result = write_back(
        connection, playbook, comparisons(playbook, data), CrmSnapshot.from_json(data)
    )
    assert result.problems == []
    assert (result.records, result.values, result.refused) == (150, 750, 0)
    trend = client.crm.properties.core_api.get_by_name("companies", "customer_health_trend")
    assert [o.value for o in trend.options] == ["up", "down", "flat", "new"]
    assert trend.options[0].label == "Up"  # the admin's labels are kept
    record = client.crm.companies.basic_api.get_by_id("1050", properties=["customer_health_trend"])
    assert record.properties["customer_health_trend"] == "new"


def test_a_refused_option_never_blocks_the_other_values(sandbox: Any) -> None:
    client = old_trend_dropdown(sandbox)
    playbook, data = book(), snapshot(150)
    connection = connect(sandbox=True, base_url=sandbox.hubspot_url, token=NO_SCHEMA_WRITE)
    result = write_back(
        connection, playbook, comparisons(playbook, data), CrmSnapshot.from_json(data)
    )
    # every trend is `new` on a first score: 150 values refused, the other 600 written
    assert (result.records, result.values, result.refused) == (150, 600, 150)
    assert len(result.problems) == 2
    assert "could not add the options ['new'] to customer_health_trend" in result.problems[0]
    assert "MISSING_SCOPES" in result.problems[0]
    assert result.problems[1] == (
        "HubSpot refused customer_health_trend: "
        "INVALID_OPTION: new was not one of the allowed options: [up, down, flat]"
    )
    record = client.crm.companies.basic_api.get_by_id(
        "1050", properties=writeback_properties(playbook)
    )
    assert record.properties["customer_health_score"] == "60"
    assert record.properties["customer_health_trend"] is None


def test_a_score_property_of_the_wrong_type_is_reported_and_left_alone(sandbox: Any) -> None:
    client = HubSpot(access_token=FULL, host=sandbox.hubspot_url)
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="customer_health_score",
            label="Score",
            type="string",
            field_type="text",
            group_name="companyinformation",
        ),
    )
    playbook, data = book(), snapshot(10)
    result = write_back(
        connect(sandbox=True, base_url=sandbox.hubspot_url, token=FULL),
        playbook,
        comparisons(playbook, data),
        CrmSnapshot.from_json(data),
    )
    assert (result.records, result.values, result.refused) == (10, 40, 10)
    assert result.problems == [
        "property customer_health_score on companies is of type string, not number: its "
        "values are not written (delete the property in HubSpot to let healthscore "
        "recreate it, or rename it)"
    ]


def test_two_non_latin_playbooks_keep_separate_properties(sandbox: Any) -> None:
    first, second = book("顧客の健全性"), book("解約リスク")
    assert writeback_properties(first)[:3] == [
        "p_c80bdfd6_score",
        "p_c80bdfd6_status",
        "p_c80bdfd6_trend",
    ]
    assert writeback_properties(second)[0] == "p_a2d6c72c_score"
    high = {
        "owners": [],
        "companies": [{"id": "1000", "properties": {"name": "A", "usage": "100"}}],
    }
    low = {"owners": [], "companies": [{"id": "1000", "properties": {"name": "A", "usage": "0"}}]}
    connection = connect(sandbox=True, base_url=sandbox.hubspot_url, token=FULL)
    write_back(connection, first, comparisons(first, high), CrmSnapshot.from_json(high))
    write_back(connection, second, comparisons(second, low), CrmSnapshot.from_json(low))
    client = HubSpot(access_token=FULL, host=sandbox.hubspot_url)
    props = client.crm.companies.basic_api.get_by_id(
        "1000", properties=["p_c80bdfd6_score", "p_c80bdfd6_status", "p_a2d6c72c_score"]
    ).properties
    assert (props["p_c80bdfd6_score"], props["p_a2d6c72c_score"]) == ("100", "20")
    assert props["p_c80bdfd6_status"] == "Healthy"
