"""`validate` beyond one file: properties in the portal (`--source`), playbooks sharing
write-back properties, templates that can render empty; `writeback:` naming the properties."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.core.crm import CrmSnapshot
from healthscore.integrations.hubspot.client import connect
from healthscore.integrations.hubspot.writeback import (
    property_group_name,
    property_specs,
    write_back,
)
from healthscore.sandbox import running_sandbox
from tests.test_writeback import book, comparisons

runner = CliRunner()
READS = """
name: {name}
groups:
  - name: Usage
    rules:
      - {{property: usage, scale: {{from: [0, 100], to: [0, 80]}}}}
      - {{points: -10, when: [{{property: {login}, op: older_than_days, value: 30}}]}}
      - {{points: 5, when: [{{property: plan, op: gt, value: 3}}]}}
"""


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    seed = {
        "owners": [],
        "companies": [
            {
                "id": "1",
                "properties": {"usage": "50", "last_login_date": "2026-01-01", "plan": "gold"},
            },
        ],
    }
    with running_sandbox(seed) as urls:
        monkeypatch.setenv("HUBSPOT_BASE_URL", urls.hubspot_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-any")
        yield urls


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_validate_source_lists_typos_and_operator_types(portal: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", READS.format(name="A", login="last_login_dat"))
    result = runner.invoke(app, ["validate", path, "--source", "hubspot"])
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.startswith(path)] == [
        f"{path}: valid — 'A', 1 group, 3 rules, 0 actions, combine: sum",
        f"{path}: companies: property last_login_dat does not exist in HubSpot; did you mean "
        "`last_login_date`?",
        f"{path}: companies: gt compares numbers, but plan is of type string",
    ]
    assert result.output.splitlines()[-1] == "2 problems found."


def test_validate_without_source_reads_no_portal(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", READS.format(name="A", login="last_login_dat"))
    result = runner.invoke(app, ["validate", path])
    assert result.exit_code == 0, result.output


def test_two_playbooks_writing_the_same_properties_are_an_error(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", READS.format(name="Customer health", login="x"))
    second = write(tmp_path, "b.yaml", READS.format(name="Customer-Health!", login="y"))
    prefixed = write(
        tmp_path,
        "c.yaml",
        READS.format(name="Renewal risk", login="y") + "writeback: {prefix: customer_health}\n",
    )
    result = runner.invoke(app, ["validate", first, second, prefixed])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-7:-1] == [
        f"{second}: writeback: the playbooks 'Customer health' ({first}) and "
        "'Customer-Health!' write the same HubSpot properties on companies "
        "(customer_health_score, customer_health_status, customer_health_trend, ...)",
        "    hint: give one of them its own names, e.g. `writeback: {prefix: churn_risk}`",
        f"{prefixed}: writeback: the playbooks 'Customer health' ({first}) and "
        "'Renewal risk' write the same HubSpot properties on companies "
        "(customer_health_score, customer_health_status, customer_health_trend, ...)",
        "    hint: give one of them its own names, e.g. `writeback: {prefix: churn_risk}`",
        f"{prefixed}: writeback: the playbooks 'Customer-Health!' ({second}) and "
        "'Renewal risk' write the same HubSpot properties on companies "
        "(customer_health_score, customer_health_status, customer_health_trend, ...)",
        "    hint: give one of them its own names, e.g. `writeback: {prefix: churn_risk}`",
    ]
    assert result.output.splitlines()[-1] == "3 problems found."


def test_non_latin_names_and_same_named_copies_do_not_clash(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", READS.format(name="顧客の健全性", login="x"))
    second = write(tmp_path, "b.yaml", READS.format(name="解約リスク", login="y"))
    copy = write(tmp_path, "c.yaml", READS.format(name="顧客の健全性", login="z"))
    assert runner.invoke(app, ["validate", first, second, copy]).exit_code == 0


def test_writeback_names_prefix_label_and_group(portal: Any) -> None:
    named = book("顧客の健全性", "writeback: {prefix: churn_risk, label: Churn risk, group: cs}\n")
    specs = property_specs(named)
    assert [(s.name, s.label) for s in specs] == [
        ("churn_risk_score", "Churn risk: score"),
        ("churn_risk_status", "Churn risk: status"),
        ("churn_risk_trend", "Churn risk: trend"),
        ("churn_risk_group_product_usage", "Churn risk: Product usage"),
        ("churn_risk_group_support_care", "Churn risk: Süpport & care"),
    ]
    assert specs[0].description == (
        "Health score (0-100). Written by the healthscore playbook '顧客の健全性'."
    )
    assert property_group_name(named) == "cs"
    data = {"owners": [], "companies": [{"id": "1", "properties": {"usage": "100"}}]}
    connection = connect(sandbox=True, base_url=portal.hubspot_url, token="t")
    result = write_back(connection, named, comparisons(named, data), CrmSnapshot.from_json(data))
    assert result.problems == []
    client = HubSpot(access_token="t", host=portal.hubspot_url)
    group = client.crm.properties.groups_api.get_by_name("companies", "cs")
    assert group.label == "Churn risk"
    score = client.crm.properties.core_api.get_by_name("companies", "churn_risk_score")
    assert (score.group_name, score.label) == ("cs", "Churn risk: score")
    record = client.crm.companies.basic_api.get_by_id("1", properties=["churn_risk_score"])
    assert record.properties["churn_risk_score"] == "100"


def test_a_bad_prefix_is_a_validation_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.yaml", READS.format(name="A", login="x") + "writeback: {prefix: Churn-risk}\n"
    )
    result = runner.invoke(app, ["validate", path])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[0].startswith(f"{path}:9: writeback.prefix: ")


def test_doctor_refuses_properties_another_playbook_writes(portal: Any, tmp_path: Path) -> None:
    other = book("Renewal risk", "writeback: {prefix: customer_health}\n")
    data = {"owners": [], "companies": [{"id": "1", "properties": {"usage": "10"}}]}
    connection = connect(sandbox=True, base_url=portal.hubspot_url, token="t")
    write_back(connection, other, comparisons(other, data), CrmSnapshot.from_json(data))
    path = write(
        tmp_path, "mine.yaml", READS.format(name="Customer health", login="last_login_date")
    )
    result = runner.invoke(app, ["doctor", "--playbook", path, "--properties-only"])
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.startswith("problem")] == [
        "problem: companies: gt compares numbers, but plan is of type string",
    ] + [
        f"problem: companies: write-back property customer_health_{name} belongs to the "
        "playbook 'Renewal risk' (its description says so); give this one its own names "
        "with `writeback: {prefix: ...}`"
        for name in ("score", "status", "trend")
    ]


EMPTY = """
name: Empty
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 80]}}
actions:
  - name: changed
    do: slack
    on: {status_changed_to: At-risk}
    message: |
      {% if previous_status %}
      Was {{ previous_status }} before.
      {% endif %}
  - name: fine
    do: slack
    on: {status_changed_to: At-risk}
    message: "{{ account.name }}{% if previous_status %} (was {{ previous_status }}){% endif %}"
"""


def test_a_template_that_can_render_empty_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", EMPTY)
    result = runner.invoke(app, ["validate", path])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert warnings == [
        f"warning: {path}:8: actions[0].message: can render empty (all of its text is inside "
        "{% if %} or {% for %}, e.g. on a first score without previous_status); the message "
        "then carries only the account and its score"
    ]
