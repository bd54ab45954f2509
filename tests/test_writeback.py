"""Write-back: names per playbook, only changed values, batches of 100, idempotent setup.

Checked against the sandbox's HubSpot API with the real client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubspot import HubSpot

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import parse_playbook
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, compare
from healthscore.core.values import parse_as_of
from healthscore.integrations.hubspot.client import connect
from healthscore.integrations.hubspot.writeback import (
    ensure_properties,
    plan_updates,
    property_group_name,
    slug,
    write_back,
    writeback_properties,
)
from healthscore.sandbox import running_sandbox

BOOK = """
name: {name}
groups:
  - name: Product usage
    rules:
      - {{property: usage, scale: {{from: [0, 100], to: [0, 80]}}}}
  - name: Süpport & care
    start: 20
    rules:
      - {{property: csm_pulse, points_each: {{red: -5}}}}
"""
AS_OF = parse_as_of("2026-01-01")


def book(name: str = "Customer health", extra: str = "") -> Any:
    return parse_playbook(BOOK.format(name=name) + extra)


def snapshot(count: int) -> dict[str, Any]:
    return {
        "owners": [],
        "companies": [
            {"id": str(1000 + i), "properties": {"name": f"Co {i}", "usage": str(i % 101)}}
            for i in range(count)
        ],
    }


def comparisons(playbook: Any, data: dict[str, Any]) -> list[Any]:
    scores = Scorer(playbook).score_snapshot(CrmSnapshot.from_json(data), AS_OF)
    return compare(scores, Baseline(), playbook.trend.flat_band)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with running_sandbox(seed=snapshot(250)) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        yield urls


def test_names_are_prefixed_by_the_playbook_slug() -> None:
    assert slug("Customer health") == "customer_health"
    assert slug("Süpport & care") == "support_care"
    assert slug("2026 plan") == "p_2026_plan"
    assert writeback_properties(book()) == [
        "customer_health_score",
        "customer_health_status",
        "customer_health_trend",
        "customer_health_group_product_usage",
        "customer_health_group_support_care",
    ]
    assert property_group_name(book()) == "customer_health"
    other = set(writeback_properties(book("Renewal risk")))
    assert not other & set(writeback_properties(book()))
    assert writeback_properties(book(extra="writeback: false\n")) == []


def test_only_changed_values_are_planned() -> None:
    playbook = book()
    (c,) = comparisons(playbook, snapshot(1) | {"companies": [snapshot(51)["companies"][50]]})
    held = {
        "customer_health_score": "60.0",  # 50 -> 40 + 20 = 60: numerically equal
        "customer_health_status": "Neutral",
        "customer_health_trend": "new",
        "customer_health_group_product_usage": "40",
        "customer_health_group_support_care": "19",
    }
    (update,) = plan_updates(playbook, [c], {c.id: held})
    assert update.properties == {"customer_health_group_support_care": "20"}
    assert plan_updates(playbook, [c], {c.id: {**held, **update.properties}}) == []
    assert plan_updates(book(extra="writeback: false\n"), [c], {}) == []


def test_write_back_batches_of_100_and_reads_back(sandbox: Any) -> None:
    playbook = book()
    data = snapshot(250)
    connection = connect(sandbox=True)
    result = write_back(
        connection, playbook, comparisons(playbook, data), CrmSnapshot.from_json(data)
    )
    assert (result.records, result.values) == (250, 250 * 5)
    calls = httpx.get(sandbox.base_url + "/_sandbox/stats").json()["calls"]
    assert calls["POST /crm/v3/objects/{objectType}/batch/update"] == 3  # 100 + 100 + 50
    assert result.properties_created == writeback_properties(playbook)

    client = HubSpot(access_token="t", host=sandbox.hubspot_url)
    record = client.crm.companies.basic_api.get_by_id(
        "1050", properties=writeback_properties(playbook)
    )
    assert record.properties["customer_health_score"] == "60"
    assert record.properties["customer_health_status"] == "Neutral"
    assert record.properties["customer_health_group_support_care"] == "20"
    group = client.crm.properties.groups_api.get_by_name("companies", "customer_health")
    assert group.label == "Customer health"
    trend = client.crm.properties.core_api.get_by_name("companies", "customer_health_trend")
    assert trend.group_name == "customer_health"
    assert {o.value for o in trend.options} == {"up", "down", "flat", "new"}

    # a second playbook side by side: its own group and properties, nothing clobbered
    other = book("Renewal risk")
    write_back(connection, other, comparisons(other, data), CrmSnapshot.from_json(data))
    again = client.crm.companies.basic_api.get_by_id(
        "1050", properties=["customer_health_score", "renewal_risk_score"]
    )
    assert again.properties["customer_health_score"] == "60"
    assert again.properties["renewal_risk_score"] == "60"


def test_property_setup_is_idempotent(sandbox: Any) -> None:
    playbook = book()
    connection = connect(sandbox=True)
    assert ensure_properties(connection, playbook) == writeback_properties(playbook)
    assert ensure_properties(connection, playbook) == []
