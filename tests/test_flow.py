"""The real `score_accounts` flow under Prefect, against the HubSpot sandbox, on SQLite and PG.

Write-backs are checked by reading the properties back through the sandbox's
HubSpot API with the real client, never through our own code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput

from healthscore.history import open_store
from healthscore.sandbox import running_sandbox

PLAYBOOK = """
name: Flow test health
object: companies
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 80]}}
  - name: Sentiment
    rules:
      - {property: csm_pulse, points_each: {green: 20, yellow: 10, red: 0}}
trend: {compare_days: 14, flat_band: 3}
"""
PROPS = [
    "flow_test_health_score",
    "flow_test_health_status",
    "flow_test_health_trend",
    "flow_test_health_group_usage",
    "flow_test_health_group_sentiment",
]
SEED = {
    "owners": [{"id": "1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Ruiz"}],
    "companies": [
        {"id": "101", "properties": {"name": "Acme", "usage": "100", "csm_pulse": "green"}},
        {"id": "102", "properties": {"name": "Beta", "usage": "50", "csm_pulse": "yellow"}},
        {"id": "103", "properties": {"name": "Gamma", "usage": "75", "csm_pulse": "yellow"}},
    ],
}
DAY = ["2026-01-01T09:00:00Z", "2026-01-15T09:00:00Z", "2026-01-29T09:00:00Z"]


@pytest.fixture
def playbook_path(tmp_path: Path) -> str:
    path = tmp_path / "flow-test.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return str(path)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with running_sandbox(seed=SEED) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        yield urls


def client(urls: Any) -> HubSpot:
    return HubSpot(access_token="test-token", host=urls.hubspot_url)


def crm_values(urls: Any) -> dict[str, dict[str, str | None]]:
    """The write-back properties as HubSpot holds them, read with the real client."""
    api = client(urls).crm.companies.basic_api
    out = {}
    for company_id in ("101", "102", "103"):
        props = api.get_by_id(company_id, properties=PROPS).properties
        out[company_id] = {p.removeprefix("flow_test_health_"): props.get(p) for p in PROPS}
    return out


def update(urls: Any, company_id: str, **props: str) -> None:
    client(urls).crm.companies.basic_api.update(
        company_id, simple_public_object_input=SimplePublicObjectInput(properties=props)
    )


def stats(urls: Any) -> dict[str, Any]:
    return httpx.get(urls.base_url + "/_sandbox/stats").json()


def clear_stats(urls: Any) -> None:
    httpx.post(urls.base_url + "/_sandbox/clear-stats").raise_for_status()


def run_flow(playbook_path: str, db_url: str, as_of: str, **kw: Any) -> dict[str, Any]:
    from flows.score_accounts import score_accounts

    return score_accounts(playbook_path, source="sandbox", as_of=as_of, db_url=db_url, **kw)


@pytest.mark.usefixtures("prefect_harness")
def test_three_runs_trends_transitions_and_writebacks(
    playbook_path: str, db_url: str, sandbox: Any
) -> None:
    # run 1: every account is new; every property is written
    first = run_flow(playbook_path, db_url, DAY[0])
    assert first["counts"] == {"Healthy": 1, "Neutral": 1, "At-risk": 1}
    assert first["trends"] == {"up": 0, "down": 0, "flat": 0, "new": 3}
    assert (first["written_records"], first["written_values"]) == (3, 15)
    assert crm_values(sandbox) == {
        "101": {"score": "100", "status": "Healthy", "trend": "new",
                "group_usage": "80", "group_sentiment": "20"},
        "102": {"score": "50", "status": "At-risk", "trend": "new",
                "group_usage": "40", "group_sentiment": "10"},
        "103": {"score": "70", "status": "Neutral", "trend": "new",
                "group_usage": "60", "group_sentiment": "10"},
    }  # fmt: skip

    # CRM changes: Acme uses less, Beta's CSM turns green
    update(sandbox, "101", usage="75")
    update(sandbox, "102", csm_pulse="green")
    second = run_flow(playbook_path, db_url, DAY[1])
    assert second["pull_incremental"] is True
    assert second["trends"] == {"up": 1, "down": 1, "flat": 1, "new": 0}
    assert [(c["id"], c["before"], c["after"]) for c in second["changes"]] == [
        ("102", "At-risk", "Neutral")
    ]
    movers = {m["id"]: (m["previous"], m["score"], m["delta"]) for m in second["movers"]}
    assert movers == {"101": (100.0, 80.0, -20.0), "102": (50.0, 60.0, 10.0)}
    # Acme: score, trend, usage; Beta: score, status, trend, sentiment; Gamma: trend
    assert (second["written_records"], second["written_values"]) == (3, 8)
    values = crm_values(sandbox)
    assert values["101"] == {"score": "80", "status": "Healthy", "trend": "down",
                             "group_usage": "60", "group_sentiment": "20"}  # fmt: skip
    assert values["102"]["status"] == "Neutral" and values["102"]["trend"] == "up"
    assert values["103"]["trend"] == "flat"

    # Gamma up a little (flat), Acme down into Neutral
    update(sandbox, "103", usage="77.5")
    update(sandbox, "101", usage="70")
    third = run_flow(playbook_path, db_url, DAY[2])
    assert [(c["id"], c["before"], c["after"]) for c in third["changes"]] == [
        ("101", "Healthy", "Neutral")
    ]
    assert third["trends"] == {"up": 0, "down": 1, "flat": 2, "new": 0}
    assert (third["written_records"], third["written_values"]) == (3, 6)
    values = crm_values(sandbox)
    assert values["101"] == {"score": "76", "status": "Neutral", "trend": "down",
                             "group_usage": "56", "group_sentiment": "20"}  # fmt: skip
    assert values["103"] == {"score": "72", "status": "Neutral", "trend": "flat",
                             "group_usage": "62", "group_sentiment": "10"}  # fmt: skip

    with open_store(db_url) as store:
        runs = store.runs(playbook="Flow test health")
        assert [r.outcome for r in runs] == ["succeeded"] * 3
        history = store.account_history("101")
        assert [(h.score, h.trend, h.delta) for h in history] == [
            (76.0, "down", -4.0),
            (80.0, "down", -20.0),
            (100.0, "new", None),
        ]

    # the run after a write-back does not read our own writes again: owners, the change
    # search (nothing), the archived list and one page on our writes' dates (3, all ours)
    clear_stats(sandbox)
    settle = run_flow(playbook_path, db_url, DAY[2])
    assert (settle["pull_incremental"], settle["pull_calls"]) == (True, 4)
    assert stats(sandbox)["calls"]["POST /crm/v3/objects/{objectType}/search"] == 2
    # nothing changed since: no property written, only the setup check's and the pull's calls
    clear_stats(sandbox)
    again = run_flow(playbook_path, db_url, DAY[2])
    assert again["pull_incremental"] is True
    assert (again["written_records"], again["writeback_calls"]) == (0, 0)
    calls = stats(sandbox)["calls"]
    # the setup check (`check_setup`): the token's scopes, the companies' properties, once each
    setup = {
        "POST /oauth/v2/private-apps/get/access-token-info": 1,
        "GET /crm/v3/properties/{objectType}": 1,
    }
    assert {k: calls.pop(k) for k in setup} == setup
    # the incremental pull: a last-modified search (nothing found), the owners and the
    # archived companies (`archived=true` list: deletions are seen every run)
    assert set(calls) == {
        "POST /crm/v3/objects/{objectType}/search",
        "GET /crm/v3/owners",
        "GET /crm/v3/objects/{objectType}",
    }
    assert sum(calls.values()) == again["pull_calls"]


@pytest.mark.usefixtures("prefect_harness")
def test_dry_run_stores_and_writes_nothing(
    playbook_path: str, tmp_path: Path, sandbox: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'dry.db'}"
    summary = run_flow(playbook_path, url, DAY[0], dry_run=True)
    assert summary["dry_run"] is True and summary["run_id"] is None
    assert summary["counts"] == {"Healthy": 1, "Neutral": 1, "At-risk": 1}
    assert summary["writeback_skipped"] == "dry run"
    assert not (tmp_path / "dry.db").exists()
    assert crm_values(sandbox)["101"]["score"] is None
    calls = stats(sandbox)["calls"]
    assert not any("batch/update" in e or "properties" in e for e in calls), calls


@pytest.mark.usefixtures("prefect_harness")
def test_file_source_and_writeback_off(tmp_path: Path) -> None:
    crm = tmp_path / "crm.json"
    crm.write_text(json.dumps(SEED), encoding="utf-8")
    book = tmp_path / "off.yaml"
    book.write_text(PLAYBOOK + "writeback: false\n", encoding="utf-8")
    from flows.score_accounts import score_accounts

    summary = score_accounts(
        str(book), source=f"file:{crm}", as_of=DAY[0], db_url=f"sqlite:///{tmp_path / 'h.db'}"
    )
    assert summary["writeback_skipped"] == "writeback: false in the playbook"
    assert summary["run_id"] == 1


@pytest.mark.usefixtures("prefect_harness")
def test_kill_during_store_leaves_the_database_as_before(
    playbook_path: str, db_url: str, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    crm = tmp_path / "crm.json"
    crm.write_text(json.dumps(SEED), encoding="utf-8")
    with open_store(db_url) as store:  # migrated, empty
        assert store.runs() == []
    marker = tmp_path / "paused"
    repo = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, str(repo / "tests" / "crash_points.py"), "pause-in-store", str(marker),
        "--", "run", "--playbook", playbook_path, "--source", f"file:{crm}", "--db", db_url,
        "--as-of", DAY[0],
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the run never reached the store step:\n{output}")
            time.sleep(0.1)
        with open_store(db_url) as store:  # the transaction is open, not visible
            assert store.runs() == []
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with open_store(db_url) as store:
        assert store.runs() == []
        assert store.snapshot_count() == 0
