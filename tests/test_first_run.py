"""Issue 14, the first run: fast failure, a baseline first run, unconfigured channels, the CLI.

Real parts: the console script in a subprocess with nothing listening, the demo's
drifting sandbox CRM scored by the real Prefect flow, the action ledger in SQLite.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.history import open_store
from healthscore.history.ledger import ActionLedger
from tests.conftest import PLAYBOOKS

runner = CliRunner()
HEALTHSCORE = str(Path(sys.executable).parent / "healthscore")


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_against_a_sandbox_that_is_not_running_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["HEALTHSCORE_SANDBOX_URL"] = url
    done = subprocess.run(
        [HEALTHSCORE, "run", "-p", "default", "-s", "sandbox", "--dry-run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no Prefect server, no flow run, no retries
    assert done.stderr.splitlines() == [
        f"error: could not read HubSpot at {url}: connection refused: nothing is listening; "
        "start it with "
        "`healthscore sandbox` (another terminal), or set HEALTHSCORE_SANDBOX_URL to where "
        "it listens"
    ]


def test_score_from_an_unknown_host_names_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", "http://no-such-host.invalid:8765")
    result = runner.invoke(app, ["score", "-p", "default", "-s", "sandbox"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: could not read HubSpot at http://no-such-host.invalid:8765: unknown host "
        "'no-such-host.invalid'; "
    )
    assert len(result.stderr.splitlines()) == 1


def _demo(tmp_path: Path, **flow_args: Any) -> tuple[list[dict[str, Any]], list[int], Any]:
    """A small demo through the real flow; per week its summary and the Slack alerts sent."""
    from flows.score_accounts import score_accounts
    from healthscore.demo.run import run_demo

    alerts: list[int] = []

    def run_week(as_of: str, db_url: str) -> dict[str, Any]:
        base = os.environ["HEALTHSCORE_SANDBOX_URL"]
        before = _alerts(base)
        summary: dict[str, Any] = score_accounts(
            playbook_path=str(PLAYBOOKS / "default.yaml"),
            source="sandbox",
            as_of=as_of,
            db_url=db_url,
            **flow_args,
        )
        alerts.append(_alerts(base) - before)
        return summary

    result = run_demo(tmp_path / "demo", run_week, accounts=150, weeks=3, seed=7)
    return result.summaries, alerts, result


def _alerts(base: str) -> int:
    messages = httpx.get(f"{base}/_sandbox/slack/messages", timeout=30).json()["messages"]
    return sum(1 for m in messages if m.get("channel_name") != "cs-leadership")


def _turned_at_risk(summary: dict[str, Any]) -> int:
    return sum(1 for c in summary["changes"] if c["after"] == "At-risk")


@pytest.mark.usefixtures("prefect_harness")
def test_the_demo_first_week_is_a_baseline_then_exactly_the_transitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHSCORE_DASHBOARD_DIR", str(tmp_path / "dash"))
    summaries, alerts, result = _demo(tmp_path)
    first = summaries[0]
    assert first["counts"]["At-risk"] > 0  # accounts already At-risk on day one ...
    assert alerts[0] == 0  # ... and nobody is messaged about them
    assert first["actions"]["held"] >= first["counts"]["At-risk"]
    assert any(n.startswith(f"held {first['actions']['held']} (") for n in first["action_notes"])
    # later weeks: one alert per account that turned At-risk that week, no more
    assert alerts[1:] == [_turned_at_risk(s) for s in summaries[1:]]
    assert sum(alerts[1:]) > 0
    assert [s["actions"].get("held", 0) for s in summaries[1:]] == [0, 0]

    db = f"sqlite:///{result.db_path}"
    with open_store(db) as store:
        total = ActionLedger(store.engine).count()
    assert total > 2
    shown = runner.invoke(app, ["actions", "--db", db, "-n", "2"])
    assert shown.exit_code == 0, shown.output
    assert f"showing 2 of {total} (--limit)" in shown.stderr
    assert len(shown.stdout.splitlines()) == 3  # TSV: the header and two rows


@pytest.mark.usefixtures("prefect_harness")
def test_enroll_existing_sends_the_first_week_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHSCORE_DASHBOARD_DIR", str(tmp_path / "dash"))
    summaries, alerts, _ = _demo(tmp_path, enroll_existing=True)
    assert alerts[0] == summaries[0]["counts"]["At-risk"] > 0
    assert summaries[0]["actions"].get("held", 0) == 0
    assert alerts[1:] == [_turned_at_risk(s) for s in summaries[1:]]


ACTIONS_PLAYBOOK = """\
name: Unconfigured
groups:
  - name: Usage
    max_points: 100
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
thresholds:
  - {min: 80, label: Healthy}
  - {min: 50, label: Neutral}
  - {min: 0, label: At-risk}
actions:
  - name: Alert
    on: {status_is: At-risk}
    do: slack
    to: "#cs-alerts"
    message: "{{ account.name }} is At-risk"
  - name: Ticket
    on: {status_is: At-risk}
    do: jira
    project: CS
    summary: "Health: {{ account.name }}"
  - name: Task
    on: {status_is: At-risk}
    do: hubspot_task
    subject: "Call {{ account.name }}"
"""


def _crm(path: Path) -> Path:
    companies = [
        {"id": str(100 + i), "properties": {"name": f"Co {i}", "usage": str(usage)}}
        for i, usage in enumerate([10, 20, 30, 90])
    ]
    path.write_text(json.dumps({"owners": [], "companies": companies}), encoding="utf-8")
    return path


@pytest.mark.usefixtures("prefect_harness")
def test_a_file_source_skips_each_unconfigured_kind_in_one_line_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SLACK_BOT_TOKEN", "JIRA_URL", "JIRA_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEALTHSCORE_DASHBOARD_DIR", str(tmp_path / "dash"))
    book = tmp_path / "book.yaml"
    book.write_text(ACTIONS_PLAYBOOK, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    source = f"file:{_crm(tmp_path / 'crm.json')}"
    result = runner.invoke(
        app, ["run", "-p", str(book), "-s", source, "--db", db, "--enroll-existing"]
    )
    assert result.exit_code == 0, result.output
    counts, *notes = [line for line in result.stdout.splitlines() if line.startswith("actions: ")]
    assert counts == "actions: 0 sent, 9 unconfigured"
    assert notes == [
        "actions: skipped 3 slack: no Slack token: set SLACK_BOT_TOKEN (a bot token, scopes "
        "chat:write, users:read.email, im:write, channels:read, channels:history, "
        "groups:history) or the Prefect Secret block `slack-bot-token`",
        "actions: skipped 3 jira: no Jira address: set JIRA_URL",
        "actions: skipped 3 hubspot_task: no CRM to write to: HubSpot lists and tasks need "
        "--source hubspot (HUBSPOT_ACCESS_TOKEN) or --source sandbox",
    ]
    with open_store(db) as store:
        assert ActionLedger(store.engine).count() == 0  # nothing failed, nothing to retry


def test_help_version_and_flags() -> None:
    assert runner.invoke(app, ["--version"]).stdout.startswith("healthscore 0.")
    short = runner.invoke(app, ["run", "-h"])
    assert short.exit_code == 0 and "--enroll-existing  " in short.stdout
    assert "<bool>" not in short.stdout and "local Prefect server" in short.stdout
    validate = runner.invoke(app, ["validate", "--help"])
    assert "<list[Path]>" not in validate.stdout and "PLAYBOOK" in validate.stdout


def test_score_piped_is_whole_tsv_and_csv_names_the_owner(tmp_path: Path) -> None:
    from healthscore.demo.sample import generate_snapshot

    crm = tmp_path / "crm.json"
    crm.write_text(json.dumps(generate_snapshot(30, seed=5)), encoding="utf-8")
    snapshot = json.loads(crm.read_text(encoding="utf-8"))
    companies = snapshot["companies"]
    companies[0]["properties"]["name"] = "[bold]Markup[/bold] " + " ".join(["Long Name"] * 12)
    crm.write_text(json.dumps(snapshot), encoding="utf-8")
    args = ["score", "-p", "default", "-s", f"file:{crm}", "--as-of", "2026-11-01"]

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split("\t")[:5] == ["id", "account", "owner", "score", "status"]
    names = {row.split("\t")[1] for row in rows if "\t" in row}
    assert companies[0]["properties"]["name"] in names  # whole, markup as written

    scored = runner.invoke(app, [*args, "-f", "csv"])
    owners = {o["id"]: f"{o['firstName']} {o['lastName']}" for o in snapshot["owners"]}
    lines = scored.stdout.splitlines()
    assert lines[0].startswith("id,name,owner_id,score,status,")
    assert lines[0].endswith(",owner")
    for row in list(csv.DictReader(lines))[:10]:
        assert row["owner"] == owners.get(row["owner_id"], "")


def test_an_unreachable_slack_or_jira_fails_each_kind_once_without_retrying() -> None:
    from healthscore.actions.config import ActionSettings
    from healthscore.errors import Unreachable
    from tasks.actions import vendors_for

    closed = f"http://127.0.0.1:{_closed_port()}"
    settings = ActionSettings(
        slack_url=closed + "/api/",
        slack_token="xoxb-test",
        jira_url=closed,
        jira_token="pat",
        jira_email=None,
        jira_api_token=None,
    )
    vendors = vendors_for("file:crm.json", settings)
    for kind, env in (("slack", "SLACK_API_URL"), ("jira", "JIRA_URL")):
        with pytest.raises(Unreachable) as raised:
            vendors.get(kind)
        assert str(raised.value).startswith(f"could not reach {kind.title()} at {closed}")
        assert "connection refused: nothing is listening" in str(raised.value)
        assert env in str(raised.value)
        with pytest.raises(Unreachable) as again:  # remembered: no second connection
            vendors.get(kind)
        assert again.value is raised.value


def test_the_local_prefect_server_is_started_once_and_reused(tmp_path: Path) -> None:
    import signal

    from flows.local_server import PID_FILE, URL_FILE, answers, local_api_url

    home = tmp_path / "prefect"
    url, started = local_api_url(home)
    pid = int((home / PID_FILE).read_text(encoding="utf-8"))
    try:
        assert started and answers(url)
        assert (home / URL_FILE).read_text(encoding="utf-8") == url
        assert local_api_url(home) == (url, False)  # the next run: no start
        assert (home / "prefect.db").is_file()  # its database lives in the home
    finally:
        os.kill(pid, signal.SIGTERM)
