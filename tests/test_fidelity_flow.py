"""The whole run against HubSpot's refusals: an old trend dropdown never blocks the alert.

`healthscore run` (the real flow under Prefect) against the sandbox started with a
tokens table: the HubSpot token may write values but not property definitions, so
the `new` option cannot be added to the admin's trend dropdown and HubSpot refuses
every trend value (`INVALID_OPTION`), while the At-risk Slack alert still goes out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.sandbox import running_sandbox
from tests.test_fidelity_slack import README_SCOPES
from tests.test_fidelity_writeback import FULL, old_trend_dropdown
from tests.test_writeback import BOOK

runner = CliRunner()
ALERT = """actions:
  - name: At-risk alert
    on: {status_changed_to: At-risk}
    do: slack
    to: "#cs-alerts"
    message: "{{ account.name }} is {{ status }} ({{ score }})"
"""
NO_SCHEMA_WRITE = [
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.schemas.companies.read",
    "crm.objects.owners.read",
]
REFUSED = (
    "write-back: HubSpot refused customer_health_trend: INVALID_OPTION: new was not one of "
    "the allowed options: [up, down, flat]"
)


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    seed = {
        "owners": [],
        "companies": [
            {"id": "1", "properties": {"name": "Acme", "usage": "10", "csm_pulse": "red"}},
            {"id": "2", "properties": {"name": "Beta", "usage": "100", "csm_pulse": ""}},
        ],
    }
    tokens = {
        FULL: [*NO_SCHEMA_WRITE, "crm.schemas.companies.write"],
        "pat-values-only": NO_SCHEMA_WRITE,
        "xoxb-readme": README_SCOPES,
    }
    with running_sandbox(seed, tokens=tokens) as urls:
        old_trend_dropdown(urls)
        monkeypatch.setenv("HUBSPOT_BASE_URL", urls.hubspot_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-values-only")
        monkeypatch.setenv("SLACK_API_URL", urls.slack_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-readme")
        monkeypatch.delenv("JIRA_URL", raising=False)
        yield urls


def run(tmp_path: Path, *extra: str, text: str = BOOK) -> Any:
    book = tmp_path / "health.yaml"
    book.write_text(text.format(name="Customer health") + ALERT, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'history.db'}"
    return runner.invoke(
        app,
        [
            "run",
            "--playbook",
            str(book),
            "--source",
            "hubspot",
            "--db",
            db,
            "--as-of",
            "2026-02-01",
            "--enroll-existing",
            *extra,
        ],
    )


def alerts(urls: Any) -> list[str]:
    return [m["text"] for m in urls.state.slack.messages if m["channel_name"] == "cs-alerts"]


@pytest.mark.usefixtures("prefect_harness")
def test_text_summary_shows_the_refusal_and_the_alert_went_out(portal: Any, tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.exit_code == 0, result.output
    assert alerts(portal) == ["Acme is At-risk (23.0)"]
    lines = result.stdout.splitlines()
    assert "write-back: 8 values on 2 records, 2 refused" in lines
    assert "actions: 1 sent" in lines
    assert f"  failed: {REFUSED}" in lines


@pytest.mark.usefixtures("prefect_harness")
def test_json_summary_lists_the_refusal(portal: Any, tmp_path: Path) -> None:
    result = run(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert alerts(portal) == ["Acme is At-risk (23.0)"]
    summary = json.loads(result.stdout)
    assert (summary["written_records"], summary["written_values"]) == (2, 8)
    assert summary["writeback_refused"] == 2
    assert summary["actions"]["sent"] == 1
    assert REFUSED in summary["failures"]
    assert summary["failures"][0].startswith(
        "write-back: could not add the options ['new'] to customer_health_trend"
    )


@pytest.mark.usefixtures("prefect_harness")
def test_a_setup_problem_stops_the_run_before_any_write(portal: Any, tmp_path: Path) -> None:
    typo = BOOK.replace("property: csm_pulse", "property: csm_puls")
    result = run(tmp_path, text=typo)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-2:] == [
        "error: 1 setup problem found before anything was written (`healthscore doctor` lists "
        "them too):",
        "  - companies: property csm_puls does not exist in HubSpot; did you mean `csm_pulse`?",
    ]
    assert alerts(portal) == []
    acme = portal.state.hubspot.objects["companies"]["1"].properties
    assert acme.get("customer_health_score") is None
    assert not (tmp_path / "history.db").exists()
