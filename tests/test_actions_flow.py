"""Playbook actions through the real flow under Prefect, against the sandbox's Slack, Jira, HubSpot.

What each vendor received is read back through the sandbox's inspection
endpoints (the raw requests' content), never through our own code.
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
from healthscore.history.ledger import ActionLedger
from healthscore.sandbox import running_sandbox

PLAYBOOK = """
name: Action test health
object: companies
writeback: false
trend: {compare_days: 7, flat_band: 3}
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 80]}}
  - name: Sentiment
    rules:
      - {property: csm_pulse, points_each: {green: 20, yellow: 10, red: 0}}
actions:
  - name: Alert CSM on at-risk
    on: {status_changed_to: At-risk}
    do: slack
    to: owner
    fallback_channel: "#cs-alerts"
    message: "{{ account.name }} is now {{ status }} ({{ score }}, {{ trend_arrow }})"
  - name: Escalation ticket
    on: {status_changed_to: At-risk}
    do: jira
    project: CS
    summary: "Health drop: {{ account.name }}"
    description: "{{ account.name }} needs a call from {{ owner.name }}."
    labels: [health-score]
  - name: Call task
    on: {status_changed_to: At-risk}
    do: hubspot_task
    subject: "Call {{ account.name }}"
    description: "<p>{{ account.name }} is {{ status }}</p>"
    due_in_days: 2
  - name: Upsell segment
    on: {score_at_least: 85}
    do: hubspot_list
    list: Upsell candidates
    sync: true
"""
NASTY = "<!channel> *bold* <script>"


def seed(name_101: str = "Acme", extra: int = 0) -> dict[str, Any]:
    """Three companies, plus `extra` healthy ones (ids 201...) for the scale of the fault test."""
    more = [
        {
            "id": str(201 + i),
            "properties": {
                "name": f"Extra {i}",
                "usage": "100",
                "csm_pulse": "green",
                "hubspot_owner_id": str(1 + i % 2),
            },
        }
        for i in range(extra)
    ]
    return {
        "owners": [
            {"id": "1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Ruiz"},
            {"id": "2", "email": "bo@example.com", "firstName": "Bo", "lastName": "Chen"},
        ],
        # Bo has no Slack user: his alerts go to the fallback channel
        "slack_users": [{"id": "UANA00001", "email": "ana@example.com", "name": "Ana Ruiz"}],
        "companies": [
            {"id": "101", "properties": {"name": name_101, "usage": "100",
                                         "csm_pulse": "green", "hubspot_owner_id": "1"}},
            {"id": "102", "properties": {"name": "Beta", "usage": "90",
                                         "csm_pulse": "green", "hubspot_owner_id": "2"}},
            {"id": "103", "properties": {"name": "Gamma", "usage": "75",
                                         "csm_pulse": "yellow", "hubspot_owner_id": "1"}},
            *more,
        ],
    }  # fmt: skip


DAY = ["2026-02-01T09:00:00Z", "2026-02-08T09:00:00Z", "2026-02-15T09:00:00Z"]


@pytest.fixture
def playbook_path(tmp_path: Path) -> str:
    path = tmp_path / "actions.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def _fast_jira(monkeypatch: pytest.MonkeyPatch) -> None:
    # The jira client sleeps 10-20 s before retrying a dropped connection; the
    # ledger retries on the next run instead, which is what these tests exercise.
    monkeypatch.setenv("JIRA_MAX_RETRIES", "0")
    # these tests re-run at once until the ledger converges: no backoff between attempts
    monkeypatch.setenv("HEALTHSCORE_ACTION_BACKOFF_SECONDS", "0")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        yield urls


def run_flow(playbook_path: str, db_url: str, as_of: str, **kw: Any) -> dict[str, Any]:
    from flows.score_accounts import score_accounts

    kw.setdefault("enroll_existing", True)  # day 0 adds the list members, as before baselines
    return score_accounts(playbook_path, source="sandbox", as_of=as_of, db_url=db_url, **kw)


def turn_at_risk(urls: Any, extra: int = 0) -> None:
    """Acme (Ana's) and Beta (Bo's) fall to At-risk, and the first half of the extras."""
    api = HubSpot(access_token="t", host=urls.hubspot_url).crm.companies.basic_api
    changes = [("101", {"usage": "30"}), ("102", {"usage": "20", "csm_pulse": "red"})]
    changes += [(str(201 + i), {"usage": "10"}) for i in range(extra // 2)]
    for company_id, props in changes:
        api.update(company_id, simple_public_object_input=SimplePublicObjectInput(properties=props))


def inspect(urls: Any, what: str) -> Any:
    return httpx.get(f"{urls.base_url}/_sandbox/{what}", timeout=10).json()


def messages(urls: Any) -> list[dict[str, Any]]:
    return list(inspect(urls, "slack/messages")["messages"])


def issues(urls: Any) -> list[dict[str, Any]]:
    return list(inspect(urls, "jira/issues")["issues"])


def list_members(urls: Any) -> dict[str, list[str]]:
    return {lst["name"]: sorted(lst["members"]) for lst in inspect(urls, "hubspot/lists")["lists"]}


def tasks(urls: Any) -> list[dict[str, Any]]:
    """Tasks as HubSpot holds them, read with the real client, with their companies."""
    client = HubSpot(access_token="t", host=urls.hubspot_url)
    page = client.crm.objects.tasks.basic_api.get_page(
        limit=100,
        properties=["hs_task_subject", "hs_task_body", "hubspot_owner_id", "hs_timestamp"],
        associations=["companies"],
    )
    out = []
    for task in page.results:
        companies = task.associations["companies"].results if task.associations else []
        out.append({**task.properties, "companies": sorted(str(c.id) for c in companies)})
    return out


def outcome(urls: Any) -> dict[str, Any]:
    """Everything the vendors hold, in a form two sandboxes can be compared by."""
    return {
        "slack": sorted((m["channel_name"], m["text"]) for m in messages(urls)),
        "jira": sorted(
            (
                i["fields"]["summary"],
                tuple(sorted(i["fields"]["labels"])),
                len(i["fields"]["comment"]["comments"]),
            )
            for i in issues(urls)
        ),
        "lists": list_members(urls),
        "tasks": sorted((t["hs_task_subject"], tuple(t["companies"])) for t in tasks(urls)),
    }


@pytest.mark.usefixtures("prefect_harness")
def test_turning_at_risk_sends_each_action_once(
    playbook_path: str, tmp_path: Path, sandbox: Any
) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    first = run_flow(playbook_path, db, DAY[0])
    assert first["counts"] == {"Healthy": 2, "Neutral": 1, "At-risk": 0}
    assert messages(sandbox) == [] and issues(sandbox) == []
    assert list_members(sandbox) == {"Upsell candidates": ["101", "102"]}

    turn_at_risk(sandbox)
    second = run_flow(playbook_path, db, DAY[1])
    assert second["counts"]["At-risk"] == 2
    sent = messages(sandbox)
    by_channel = {m["channel_name"]: m for m in sent}
    assert sorted(by_channel) == ["@UANA00001", "cs-alerts"] and len(sent) == 2
    dm = by_channel["@UANA00001"]  # Ana's DM: Acme
    assert dm["channel"].startswith("D")
    assert dm["text"] == "Acme is now At-risk (44.0, ↘️)"
    header, _text, fields, dropped, buttons = dm["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "🟥 Acme", "emoji": True}
    assert "*Status*\n🟥 At-risk" in [f["text"] for f in fields["fields"]]
    assert "Usage: 80 → 24 (-56)" in dropped["text"]["text"]
    assert buttons["elements"][0]["url"] == "https://app.hubspot.com/contacts/12345678/company/101"
    assert dm["metadata"]["event_type"] == "healthscore_action"
    assert by_channel["cs-alerts"]["text"].startswith("Beta is now At-risk")  # Bo: no Slack user

    opened = issues(sandbox)
    assert sorted(i["fields"]["summary"] for i in opened) == [
        "Health drop: Acme",
        "Health drop: Beta",
    ]
    labels = next(i for i in opened if i["fields"]["summary"].endswith("Acme"))["fields"]["labels"]
    assert {"health-score", "healthscore-acct-101",
            "healthscore-rule-action-test-health-escalation-ticket"} <= set(labels)  # fmt: skip
    assert sorted(
        (t["hs_task_subject"], t["hubspot_owner_id"], tuple(t["companies"])) for t in tasks(sandbox)
    ) == [
        ("Call Acme", "1", ("101",)),
        ("Call Beta", "2", ("102",)),
    ]
    assert list_members(sandbox) == {"Upsell candidates": []}  # sync: both fell below 85
    before = outcome(sandbox)

    # the same as-of again, then a later run with nothing new: nothing new anywhere
    run_flow(playbook_path, db, DAY[1])
    run_flow(playbook_path, db, DAY[2])
    assert outcome(sandbox) == before
    with open_store(db) as store:
        rows = ActionLedger(store.engine).entries(limit=100)
    assert sorted((r.action, r.account_id, r.state) for r in rows) == [
        ("Alert CSM on at-risk", "101", "sent"),
        ("Alert CSM on at-risk", "102", "sent"),
        ("Call task", "101", "sent"),
        ("Call task", "102", "sent"),
        ("Escalation ticket", "101", "sent"),
        ("Escalation ticket", "102", "sent"),
        ("Upsell segment", "101", "sent"),
        ("Upsell segment", "102", "sent"),
    ]
    assert all(r.attempts == 1 for r in rows)

    from typer.testing import CliRunner

    from healthscore.cli import app

    listed = CliRunner().invoke(
        app, ["actions", "--db", db, "--account", "101", "--state", "sent", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert sorted(r["action"] for r in json.loads(listed.output)) == [
        "Alert CSM on at-risk",
        "Call task",
        "Escalation ticket",
        "Upsell segment",
    ]
    table = CliRunner().invoke(app, ["actions", "--db", db, "--playbook", playbook_path])
    assert table.exit_code == 0 and "Escalation" in table.output and "sent" in table.output


def scenario(
    playbook_path: str, db: str, urls: Any, *, faults: float, extra: int, want_lists: Any = None
) -> None:
    """Day 0, the CRM change, day 1; each day re-run until nothing is left to converge."""
    for day in (DAY[0], DAY[1]):
        if day == DAY[1]:
            httpx.post(f"{urls.base_url}/_sandbox/faults", json={"rate": 0}).raise_for_status()
            turn_at_risk(urls, extra)
        httpx.post(
            f"{urls.base_url}/_sandbox/faults", json={"rate": faults, "seed": 3}
        ).raise_for_status()
        unsent: list[Any] = []
        for _ in range(10):
            try:
                run_flow(playbook_path, db, day)
            except Exception:  # a run that failed outright (e.g. the pull): run it again
                continue
            with open_store(db) as store:
                rows = ActionLedger(store.engine).entries(limit=1000)
            unsent = [r for r in rows if r.state != "sent"]
            synced = want_lists is None or day == DAY[0] or list_members(urls) == want_lists
            if not unsent and synced:
                break
        else:
            pytest.fail(f"no convergence on {day}: {unsent}")
    httpx.post(f"{urls.base_url}/_sandbox/faults", json={"rate": 0}).raise_for_status()


@pytest.mark.usefixtures("prefect_harness")
def test_faults_converge_to_the_clean_outcome(
    playbook_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = 12
    with running_sandbox(seed=seed(extra=extra)) as clean:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", clean.hubspot_url)
        scenario(playbook_path, f"sqlite:///{tmp_path / 'clean.db'}", clean, faults=0, extra=extra)
        expected = outcome(clean)
    assert len(expected["slack"]) == len(expected["jira"]) == len(expected["tasks"]) == 8
    assert expected["lists"] == {"Upsell candidates": [str(201 + i) for i in range(6, 12)]}
    with running_sandbox(seed=seed(extra=extra)) as faulty:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", faulty.hubspot_url)
        scenario(
            playbook_path,
            f"sqlite:///{tmp_path / 'faulty.db'}",
            faulty,
            faults=0.2,
            extra=extra,
            want_lists=expected["lists"],
        )
        got = outcome(faulty)
        faults = inspect(faulty, "stats")["faults_by_kind"]
    assert sum(faults.values()) >= 20, faults  # the faults really happened
    assert got == expected


@pytest.mark.usefixtures("prefect_harness")
def test_kill_after_sends_then_rerun_sends_the_rest_once(
    playbook_path: str, tmp_path: Path, sandbox: Any
) -> None:
    from prefect.settings import PREFECT_API_URL

    db = f"sqlite:///{tmp_path / 'h.db'}"
    run_flow(playbook_path, db, DAY[0])
    turn_at_risk(sandbox)
    repo = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "HEALTHSCORE_SANDBOX_URL": sandbox.hubspot_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    driver = repo / "tests" / "crash_points.py"
    command = [sys.executable, str(driver), "kill-after-sends", "3", "--", "run",
               "--playbook", playbook_path, "--source", "sandbox", "--db", db,
               "--as-of", DAY[1]]  # fmt: skip
    process = subprocess.run(command, env=env, capture_output=True, timeout=180, check=False)
    assert process.returncode == -signal.SIGKILL, process.stdout.decode() + process.stderr.decode()
    # the kill came after the 3rd delivery (Jira 101, Jira 102, task 101), before the batch
    # of outcomes was written: the claimed batch of Jira and task rows is left attempting
    assert len(messages(sandbox)) + len(issues(sandbox)) + len(tasks(sandbox)) == 3
    with open_store(db) as store:
        rows = ActionLedger(store.engine).entries(limit=100)
    assert sorted((r.action, r.account_id, r.state) for r in rows) == [
        ("Alert CSM on at-risk", "101", "pending"),
        ("Alert CSM on at-risk", "102", "pending"),
        ("Call task", "101", "attempting"),
        ("Call task", "102", "attempting"),
        ("Escalation ticket", "101", "attempting"),
        ("Escalation ticket", "102", "attempting"),
        ("Upsell segment", "101", "sent"),  # the day-0 list adds
        ("Upsell segment", "102", "sent"),
    ]

    started = time.monotonic()
    run_flow(playbook_path, db, DAY[1])
    assert time.monotonic() - started < 30
    assert len(messages(sandbox)) == 2 and len(issues(sandbox)) == 2 and len(tasks(sandbox)) == 2
    with open_store(db) as store:
        rows = ActionLedger(store.engine).entries(limit=100)
    assert all(r.state == "sent" for r in rows)
    reconciled = [r for r in rows if (r.external or {}).get("reconciled")]
    # the three delivered before the kill are found, not sent again; task 102 is created
    assert sorted((r.action, r.account_id) for r in reconciled) == [
        ("Call task", "101"),
        ("Escalation ticket", "101"),
        ("Escalation ticket", "102"),
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_crm_text_reaches_every_target_inert(
    playbook_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandbox(seed=seed(name_101=NASTY)) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        db = f"sqlite:///{tmp_path / 'h.db'}"
        run_flow(playbook_path, db, DAY[0])
        turn_at_risk(urls)
        run_flow(playbook_path, db, DAY[1])
        dm = next(m for m in messages(urls) if m["channel_name"] == "@UANA00001")
        jira = next(i for i in issues(urls) if "healthscore-acct-101" in i["fields"]["labels"])
        task = next(t for t in tasks(urls) if t["companies"] == ["101"])

    # Slack mrkdwn: <, > and & escaped, so neither @channel nor a link can happen
    assert dm["text"].startswith("&lt;!channel&gt; *bold* &lt;script&gt; is now At-risk")
    mrkdwn = [dm["text"], dm["blocks"][1]["text"]["text"]]
    assert not any("<!channel>" in t or "<script>" in t for t in mrkdwn)
    assert dm["blocks"][0]["text"]["type"] == "plain_text"  # headers are never parsed
    # Jira: wiki markup escaped in the description; the summary is a plain-text field
    description = jira["fields"]["description"]
    assert "<\\!channel> \\*bold\\* <script> needs a call from Ana Ruiz." in description
    assert "*bold*" not in description.replace("\\*bold\\*", "")
    assert jira["fields"]["summary"] == f"Health drop: {NASTY}"
    # HubSpot: the task body is HTML, escaped; the subject is plain text
    assert task["hs_task_body"] == "<p>&lt;!channel&gt; *bold* &lt;script&gt; is At-risk</p>"
    assert task["hs_task_subject"] == f"Call {NASTY}"


@pytest.mark.usefixtures("prefect_harness")
def test_dry_run_prints_every_action_and_records_nothing(
    playbook_path: str, tmp_path: Path, sandbox: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'h.db'}"
    run_flow(playbook_path, db, DAY[0])
    turn_at_risk(sandbox)
    capfd.readouterr()
    run_flow(playbook_path, db, DAY[1], dry_run=True)
    printed = capfd.readouterr().out
    assert (
        "[Alert CSM on at-risk] would send a Slack message to owner ana@example.com "
        "(else #cs-alerts) for Acme (101): status changed from Healthy to At-risk"
    ) in printed
    assert (
        "[Escalation ticket] would open (or comment on) a Jira issue in project CS for Beta (102)"
        in printed
    )
    assert "[Call task] would create a HubSpot task for owner Bo Chen for Beta (102)" in printed
    assert "would remove from list 'Upsell candidates'" in printed
    assert messages(sandbox) == [] and issues(sandbox) == [] and tasks(sandbox) == []
    with open_store(db) as store:
        assert [r.state for r in ActionLedger(store.engine).entries()] == [
            "sent",
            "sent",
        ]  # day 0 list
