"""Many playbooks in one run: one pull of their union, each scored and stored on its own.

Against the HubSpot sandbox with the real client; the API calls are the sandbox's
own counts (`/_sandbox/stats`). Scores were computed by hand from the seed below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.history import open_store
from healthscore.history.store import CACHE
from healthscore.integrations.hubspot.writeback import OwnWrites
from healthscore.sandbox import running_sandbox

AS_OF = "2026-03-01T09:00:00Z"
LATER = "2026-03-02T09:00:00Z"  # the next day's run: the same scores (no window moves past one)
ENGAGEMENT = """
name: Engagement
writeback: false
groups:
  - name: Meetings
    rules:
      - {event: meetings, within_days: 30, points: 5, limit: 15}
  - name: Usage
    rules:
      - {when: [{property: usage, op: gte, value: 50}], points: 20}
"""
SUPPORT = """
name: Support
writeback: false
groups:
  - name: Tickets
    start: 10
    min_points: 0
    rules:
      - event: tickets
        where: [{property: hs_ticket_priority, op: eq, value: HIGH}]
        timestamp_property: createdate
        points: -3
  - name: NPS
    rules:
      - associated: contacts
        property: nps_category
        points_each: {promoter: 10, detractor: -10}
        aggregate: avg
"""
# Both playbooks' groups in one: what "one pull of their union" must cost.
UNION = (
    "name: Union\nwriteback: false\ngroups:\n"
    + ENGAGEMENT.split("groups:\n", 1)[1]
    + SUPPORT.split("groups:\n", 1)[1]
)
# A playbook that fails at run time, after the shared pull: its warehouse URL is not set.
BROKEN = """
name: Broken usage
writeback: false
enrich:
  - name: usage
    url_env: H16B_TEST_UNSET_WAREHOUSE_URL
    query: select 1 as id
    key: {account: hs_object_id, column: id}
groups:
  - name: Usage
    rules:
      - {when: [{property: active_users, op: gte, value: 10}], points: 10}
"""


def _at(day: str) -> dict[str, str]:
    return {"hs_timestamp": f"2026-{day}T10:00:00Z"}


SEED = {
    "owners": [{"id": "1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Ruiz"}],
    "companies": [
        {"id": "101", "properties": {"name": "Acme", "usage": "80"}},
        {"id": "102", "properties": {"name": "Beta", "usage": "10"}},
        {"id": "103", "properties": {"name": "Gamma", "usage": "55"}},
    ],
    "meetings": [
        {"id": "m1", "properties": _at("02-20"), "associations": {"companies": ["101"]}},
        {"id": "m2", "properties": _at("02-25"), "associations": {"companies": ["101"]}},
        {"id": "m3", "properties": _at("01-01"), "associations": {"companies": ["101"]}},
        {"id": "m4", "properties": _at("02-27"), "associations": {"companies": ["103"]}},
        {"id": "m5", "properties": _at("02-28"), "associations": {"companies": ["103"]}},
        {"id": "m6", "properties": _at("02-15"), "associations": {"companies": ["103"]}},
        {"id": "m7", "properties": _at("02-10"), "associations": {"companies": ["103"]}},
    ],
    "tickets": [
        {"id": f"t{n}", "properties": {"hs_ticket_priority": p, "createdate": "2026-02-01"},
         "associations": {"companies": [c]}}
        for n, p, c in ((1, "HIGH", "102"), (2, "HIGH", "102"), (3, "LOW", "102"),
                        (4, "HIGH", "101"))
    ],
    "contacts": [
        {"id": f"c{n}", "properties": {"nps_category": v}, "associations": {"companies": [c]}}
        for n, v, c in ((1, "promoter", "101"), (2, "detractor", "101"),
                        (3, "promoter", "103"), (4, "passive", "102"))
    ],
}  # fmt: skip
# By hand. Engagement: meetings in the last 30 days x5, capped at 15, + 20 when usage >= 50:
#   101: m1, m2 (m3 is 59 days old) = 10 + 20 = 30; 102: 0 + 0 = 0; 103: 4 x 5 -> 15 + 20 = 35.
# Support: 10 - 3 per HIGH ticket (floor 0) + average of promoter 10 / detractor -10:
#   101: 10 - 3 + avg(10, -10) = 7; 102: 10 - 6 + 0 (passive is no match) = 4;
#   103: 10 + avg(10) = 20.
EXPECTED = {
    "Engagement": {"101": 30.0, "102": 0.0, "103": 35.0},
    "Support": {"101": 7.0, "102": 4.0, "103": 20.0},
}
# One full pull of the union: owners, the companies' page, three association reads
# (meetings, tickets, contacts) and three batch reads; every object fits one call.
UNION_CALLS = {
    # the setup check: the token's scopes once, the definitions of each object type read
    # (companies, and meetings, tickets, contacts for the rules) once
    "POST /oauth/v2/private-apps/get/access-token-info": 1,
    "GET /crm/v3/properties/{objectType}": 4,
    # the pull
    "GET /crm/v3/owners": 1,
    "GET /crm/v3/objects/{objectType}": 1,
    "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read": 3,
    "POST /crm/v3/objects/{objectType}/batch/read": 3,
}


@pytest.fixture
def books(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in (
        ("engagement", ENGAGEMENT),
        ("support", SUPPORT),
        ("union", UNION),
        ("broken", BROKEN),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths[name] = str(path)
    return paths


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with running_sandbox(seed=SEED) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        monkeypatch.delenv("H16B_TEST_UNSET_WAREHOUSE_URL", raising=False)
        yield urls


def calls(urls: Any) -> dict[str, int]:
    """The sandbox's calls per endpoint: the run's setup check (the token's scopes, each
    object type's property definitions, read once for all its playbooks) and its pull."""
    return dict(httpx.get(urls.base_url + "/_sandbox/stats").json()["calls"])


def clear(urls: Any) -> None:
    httpx.post(urls.base_url + "/_sandbox/clear-stats").raise_for_status()


def run_flow(playbooks: str | list[str], db_url: str) -> Any:
    from flows.score_accounts import score_accounts

    return score_accounts(playbooks, source="sandbox", as_of=AS_OF, db_url=db_url)


def stored_scores(db_url: str, playbook: str) -> dict[str, float]:
    with open_store(db_url) as store:
        return {
            account: store.account_history(account, playbook, 1)[0].score
            for account in ("101", "102", "103")
        }


@pytest.mark.usefixtures("prefect_harness")
def test_two_playbooks_cost_one_pull_of_their_union_and_score_as_two_runs(
    books: dict[str, str],
    sandbox: Any,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear(sandbox)
    monkeypatch.setenv("HEALTHSCORE_DASHBOARD_DIR", str(tmp_path / "board.html"))
    both = run_flow([books["engagement"], books["support"]], db_url)
    together = calls(sandbox)
    # one .html named for a run of two playbooks: a file each beside it, none overwritten
    boards = sorted(p.name for p in tmp_path.glob("board*.html"))
    assert boards == ["board-engagement.html", "board-support.html"]
    assert "Support" in (tmp_path / "board-support.html").read_text(encoding="utf-8")
    assert together == UNION_CALLS
    assert [s["playbook"] for s in both] == ["Engagement", "Support"]
    assert [s["pull_calls"] for s in both] == [8, 8]  # the one pull, reported by each
    assert [s["pull_shared_with"] for s in both] == [["Support"], ["Engagement"]]
    assert [s["run_id"] for s in both] == [1, 2]  # each its own run in the history

    clear(sandbox)
    run_flow(books["union"], f"sqlite:///{tmp_path / 'union.db'}")
    assert calls(sandbox) == together  # exactly the calls of one pull of the union

    separate = {}
    for key, name in (("engagement", "Engagement"), ("support", "Support")):
        clear(sandbox)
        db = f"sqlite:///{tmp_path / f'{key}.db'}"
        run_flow(books[key], db)
        separate[name] = (stored_scores(db, name), sum(calls(sandbox).values()))
    # two setup checks and two pulls: Engagement 1 token + 2 definitions (companies,
    # meetings) + 4 pull calls; Support 1 + 3 (companies, tickets, contacts) + 6: 17 where
    # one run of both makes 13 (1 token + 4 definitions + 8 pull calls)
    assert (separate["Engagement"][1], separate["Support"][1]) == (1 + 2 + 4, 1 + 3 + 6)
    assert sum(together.values()) == 13

    for name, expected in EXPECTED.items():
        assert stored_scores(db_url, name) == expected
        assert separate[name][0] == expected


@pytest.mark.usefixtures("prefect_harness")
def test_one_failing_playbook_does_not_stop_the_others(
    books: dict[str, str], sandbox: Any, db_url: str
) -> None:
    from flows.score_accounts import score_accounts

    state = score_accounts(
        [books["broken"], books["engagement"]],
        source="sandbox",
        as_of=AS_OF,
        db_url=db_url,
        return_state=True,
    )
    assert state.is_failed()
    assert "1 of 2 playbooks failed" in (state.message or "")
    broken, engagement = state.result(raise_on_failure=False)
    assert broken["playbook"] == books["broken"]
    assert "H16B_TEST_UNSET_WAREHOUSE_URL is not set" in broken["error"]
    assert engagement["accounts"] == 3 and engagement["run_id"] == 1
    assert stored_scores(db_url, "Engagement") == EXPECTED["Engagement"]
    with open_store(db_url) as store:
        assert [r.playbook for r in store.runs()] == ["Engagement"]  # nothing half-written


@pytest.mark.usefixtures("prefect_harness")
def test_cli_run_with_two_playbooks_prints_both_and_exits_1_when_one_failed(
    books: dict[str, str], sandbox: Any, tmp_path: Path
) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    common = ["run", "-s", "sandbox", "--db", db, "--as-of", AS_OF]
    good = runner.invoke(app, [*common, "-p", books["engagement"], "-p", books["support"]])
    assert good.exit_code == 0, good.output
    assert "Engagement: 3 accounts" in good.output and "Support: 3 accounts" in good.output
    assert "shared with Support" in good.output
    # how the associations were read, and why (3 companies: the v4 read costs 1 call a type)
    read = [line for line in good.stdout.splitlines() if line.startswith("  associations: ")]
    v4 = "meetings, tickets, contacts with the v4 batch read"
    assert read == [f"  associations: {v4}: no more calls than an export"] * 2
    # each playbook's dashboard, where the run wrote it (HEALTHSCORE_DASHBOARD_DIR here)
    folder = Path(os.environ["HEALTHSCORE_DASHBOARD_DIR"])
    boards = [line for line in good.stdout.splitlines() if line.startswith("dashboard: ")]
    assert boards == [
        f"dashboard: {(folder / f'dashboard-{name}.html').resolve().as_uri()}"
        for name in ("engagement", "support")
    ]

    bad = runner.invoke(
        app, [*common, "-p", books["broken"], "-p", books["support"], "--json", "--dry-run"]
    )
    assert bad.exit_code == 1, bad.output
    summaries = json.loads(bad.stdout[bad.stdout.index("[") :])
    assert [s.get("error", "ok")[:11] for s in summaries] == ["SourceError", "ok"]
    assert summaries[1]["counts"] == {"Healthy": 0, "Neutral": 0, "At-risk": 3}


@pytest.mark.usefixtures("prefect_harness")
def test_two_playbooks_writing_back_are_remembered_under_their_shared_pull(
    books: dict[str, str], sandbox: Any, db_url: str, tmp_path: Path
) -> None:
    """Both write-backs of a shared pull are kept with that pull's cache, each record read
    back with every property the pull reads: the next incremental pull leaves all of
    them out of its change search and still scores exactly."""
    paths = []
    for key in ("engagement", "support"):
        path = tmp_path / f"{key}-writing.yaml"
        path.write_text(Path(books[key]).read_text().replace("writeback: false\n", ""))
        paths.append(str(path))
    first = run_flow(paths, db_url)
    assert [s["written_records"] for s in first] == [3, 3]
    with open_store(db_url) as store, store.engine.connect() as connection:
        rows = connection.execute(sa.select(CACHE.c.source_key, CACHE.c.writes)).all()
    assert len(rows) == 1  # one shared pull, one cache row
    remembered = OwnWrites.from_json(rows[0].writes)
    assert sorted(remembered.records) == ["101", "102", "103"]
    for _, values in remembered.records.values():  # both playbooks' properties, and usage
        assert {"engagement_score", "support_score", "usage"} <= set(values)
    clear(sandbox)
    from flows.score_accounts import score_accounts

    second = score_accounts(paths, source="sandbox", as_of=LATER, db_url=db_url)
    assert [s["pull_incremental"] for s in second] == [True, True]
    assert [s["written_records"] for s in second] == [0, 0]  # nothing changed since
    for name, expected in EXPECTED.items():
        assert stored_scores(db_url, name) == expected
