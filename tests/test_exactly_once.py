"""Issue 13, exactly once for real: lost answers, poison actions, hostile values, bad databases.

Faults are real: the sandbox applies a write and then drops the connection or
answers 5xx (`faults_after_write`); a database is really read-only, really
damaged or really at a newer revision; a crashed run's process really exited.
What the vendors hold is read back through the sandbox's inspection endpoints.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.core.playbook import load_playbook
from healthscore.history import open_store
from healthscore.history.ledger import ActionLedger
from healthscore.history.models import RUN_CRASHED, RUN_RUNNING
from healthscore.history.store import RUNS, StoreError
from healthscore.sandbox import running_sandbox
from tests.conftest import pg_schema_url
from tests.test_actions_flow import (
    DAY,
    PLAYBOOK,
    inspect,
    issues,
    list_members,
    messages,
    seed,
    tasks,
    turn_at_risk,
)


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRA_MAX_RETRIES", "0")
    monkeypatch.setenv("HEALTHSCORE_ACTION_BACKOFF_SECONDS", "0")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'h.db'}"
        return
    base = request.getfixturevalue("pg_url")
    yield from pg_schema_url(base)


def write_playbook(tmp_path: Path, text: str = PLAYBOOK) -> str:
    path = tmp_path / "actions.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_flow(playbook_path: str, db_url: str, as_of: str, **kw: Any) -> dict[str, Any]:
    from flows.score_accounts import score_accounts

    kw.setdefault("enroll_existing", True)  # these tests send from the first run on
    result: dict[str, Any] = score_accounts(
        playbook_path, source="sandbox", as_of=as_of, db_url=db_url, **kw
    )
    return result


def ledger_rows(db: str) -> list[Any]:
    with open_store(db) as store:
        return ActionLedger(store.engine).entries(limit=1000)


# ---------------------------------------------------------------- 1. lost answers


def recover(urls: Any, extra: int = 0) -> None:
    """Acme, Beta and the first half of the extras back to full usage and a green pulse."""
    api = HubSpot(access_token="t", host=urls.hubspot_url).crm.companies.basic_api
    healthy = SimplePublicObjectInput(properties={"usage": "100", "csm_pulse": "green"})
    for company_id in ["101", "102", *(str(201 + i) for i in range(extra // 2))]:
        api.update(company_id, simple_public_object_input=healthy)


@pytest.mark.usefixtures("prefect_harness")
def test_answers_lost_after_the_write_never_double_an_action(
    tmp_path: Path, any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every POST kind loses answers after the write (30 %): Slack messages, Jira issues and
    (on the second At-risk occurrence, while the issue is still open) Jira comments,
    HubSpot tasks and list memberships; re-runs settle each action exactly once."""
    extra = 12
    playbook = write_playbook(tmp_path)

    def settle(as_of: str) -> None:
        for _ in range(12):
            run_flow(playbook, any_db, as_of)
            if all(r.state == "sent" for r in ledger_rows(any_db)):
                return

    with running_sandbox(seed=seed(extra=extra)) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)

        def faults(rate: float) -> None:  # the test's own CRM edits are not faulted
            httpx.post(
                f"{urls.base_url}/_sandbox/faults-after-write", json={"rate": rate, "seed": 5}
            ).raise_for_status()

        run_flow(playbook, any_db, DAY[0])
        turn_at_risk(urls, extra)
        faults(0.3)
        settle(DAY[1])
        faults(0)
        recover(urls, extra)
        faults(0.3)
        settle(DAY[2])
        faults(0)
        turn_at_risk(urls, extra)
        faults(0.3)
        settle("2026-02-22T09:00:00Z")  # At-risk again: a comment on each open issue
        faulted = inspect(urls, "stats")["faults_after_write_by_kind"]
        sent = messages(urls)
        opened = issues(urls)
        created = tasks(urls)
        lists = list_members(urls)
    rows = ledger_rows(any_db)
    assert [r for r in rows if r.state != "sent"] == []
    assert sum(faulted.values()) >= 5, faulted  # the faults really happened
    at_risk = 2 + extra // 2  # Acme, Beta and half the extras
    # exactly one message, issue, comment and task per action, whatever answers were lost
    assert len(sent) == 2 * at_risk
    assert len({m["metadata"]["event_payload"]["ledger_key"] for m in sent}) == 2 * at_risk
    assert len(opened) == at_risk
    assert len({i["fields"]["summary"] for i in opened}) == at_risk
    assert sorted(len(i["fields"]["comment"]["comments"]) for i in opened) == [1] * at_risk
    assert len(created) == 2 * at_risk
    assert len({tuple(t["companies"]) for t in created}) == at_risk
    assert lists == {"Upsell candidates": [str(201 + i) for i in range(6, 12)]}


# ---------------------------------------------------------------- 2. account-info 429


@pytest.mark.usefixtures("prefect_harness")
def test_a_429_on_account_info_is_waited_out_and_the_portal_id_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six 429s (Retry-After: 1) in a row on account-info: five tries of the portal-id loop,
    each after the limiter held off for Retry-After, then the task's retry (a 429 is
    transient) gets the sixth 429 and a seventh answer. The next run asks no more."""
    playbook = write_playbook(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        httpx.post(f"{urls.base_url}/_sandbox/faults", json={
            "rate": 1.0, "kinds": ["429"], "path": "/account-info/", "limit": 6,
        }).raise_for_status()  # fmt: skip
        first = run_flow(playbook, db, DAY[0])
        turn_at_risk(urls)
        second = run_flow(playbook, db, DAY[1])
        stats = inspect(urls, "stats")
        sent = messages(urls)
    assert stats["faults_by_kind"] == {"429": 6}
    assert stats["calls"]["GET /account-info/v3/details"] == 7
    assert first["actions"]["sent"] == 2  # the day-0 list members
    assert second["actions"]["sent"] == 6  # Acme and Beta: message, issue, task each
    links = sorted(a for m in sent for a in ("101", "102") if f"/12345678/company/{a}" in str(m))
    assert links == ["101", "102"]  # the record links carry the sandbox's portal id


# ---------------------------------------------------------------- 3. poison actions

POISON = """
name: Poison
object: companies
writeback: false
trend: {compare_days: 7, flat_band: 3}
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
actions:
  - name: Alert nowhere
    on: {status_changed_to: At-risk}
    do: slack
    to: owner
    message: "{{ account.name }} is {{ status }}"
  - name: Ticket nowhere
    on: {status_changed_to: At-risk}
    do: jira
    project: RO
    summary: "Health drop: {{ account.name }}"
"""
# Poison that the setup check at the start of each run cannot see: no owner has a Slack
# user (and there is no fallback channel), and the Jira user may not create issues in RO.
POISON_SEED = {
    "slack_users": [],
    "jira_projects": [{"key": "RO", "name": "Read only", "can_create": False}],
}
SENDS = ("/rest/api/{version}/issue", "/rest/api/{version}/search", "/api/chat.")


def cli_run(playbook: str, db: str, as_of: str, *extra: str) -> Any:
    return CliRunner().invoke(
        app,
        ["run", "--playbook", playbook, "--source", "sandbox", "--db", db, "--as-of", as_of,
         "--json", *extra],
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_harness")
def test_poison_actions_die_at_the_cap_and_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = write_playbook(tmp_path, POISON)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with running_sandbox(seed={**seed(), **POISON_SEED}) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        assert cli_run(playbook, db, DAY[0]).exit_code == 0
        turn_at_risk(urls)
        summaries, codes, calls = [], [], []
        for _ in range(8):
            result = cli_run(playbook, db, DAY[1])
            codes.append(result.exit_code)
            summaries.append(json.loads(result.stdout[result.stdout.index("{") :])["actions"])
            stats = inspect(urls, "stats")["calls"]
            calls.append({k: n for k, n in stats.items() if any(p in k for p in SENDS)})
        assert messages(urls) == [] and issues(urls) == []
    assert calls[0]["POST /rest/api/{version}/issue"] == 2  # the sends really were attempted
    rows = ledger_rows(db)
    assert sorted((r.action, r.account_id, r.state, r.attempts) for r in rows) == [
        ("Alert nowhere", "101", "dead", 5),
        ("Alert nowhere", "102", "dead", 5),
        ("Ticket nowhere", "101", "dead", 5),
        ("Ticket nowhere", "102", "dead", 5),
    ]
    assert all(r.last_error for r in rows)
    assert [(s["failed"], s["dead"]) for s in summaries] == [(4, 0)] * 4 + [(0, 4)] + [(0, 0)] * 3
    assert [s["dead_total"] for s in summaries] == [0] * 4 + [4] * 4  # still there, still shown
    assert codes == [1] * 5 + [0] * 3  # failed or dead this run: exit 1
    assert calls[5] == calls[6] == calls[7]  # no vendor call for dead rows any more
    listed = CliRunner().invoke(app, ["actions", "--db", db, "--state", "dead", "--json"])
    assert listed.exit_code == 0
    assert len(json.loads(listed.stdout)) == 4
    assert [(s.type.value, s.name) for s in flow_run_states(db)] == [
        ("COMPLETED", "Completed"),
        *[("COMPLETED", "ActionsFailed")] * 5,
        *[("COMPLETED", "Completed")] * 3,
    ]
    assert flow_run_states(db)[5].message == "actions: 0 sent, 0 failed (retried later), " \
        "4 dead (gave up), 4 dead in the ledger"  # fmt: skip


def flow_run_states(db: str) -> list[Any]:
    """The final states of the flow runs that used this database, oldest first (Prefect API)."""
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def read() -> list[Any]:
        async with get_client() as client:
            runs = await client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC)
        return [r.state for r in runs if r.parameters.get("db_url") == db]

    return asyncio.run(read())


# ---------------------------------------------------------------- 4. hostile values

HOSTILE = "Evil\x00 \ufffd \u202eCorp\u2066 " + "x" * 1_000_000
"""Over the sandbox's JSON API: a lone surrogate cannot travel there (the sandbox's own encoder
refuses it), so `test_a_lone_surrogate_is_stored_replaced` sends it through a file source."""


@pytest.mark.usefixtures("prefect_harness")
def test_one_hostile_name_sinks_nothing(
    tmp_path: Path, any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = write_playbook(tmp_path)
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        run_flow(playbook, any_db, DAY[0])
        turn_at_risk(urls)
        api = HubSpot(access_token="t", host=urls.hubspot_url).crm.companies.basic_api
        api.update("101", simple_public_object_input=SimplePublicObjectInput(
            properties={"name": HOSTILE}))  # fmt: skip
        summary = run_flow(playbook, any_db, DAY[1])
        sent = messages(urls)
        opened = issues(urls)
    assert summary["accounts"] == 3 and summary["actions"]["sent"] == 6
    with open_store(any_db) as store:
        names = {e.account_id: e.name for e in store.account_history("101", limit=5)[:1]}
    stored = names["101"]
    assert stored == HOSTILE.replace("\x00", "")  # stored whole; bidi is stripped on the way out
    for text in [m["text"] for m in sent] + [i["fields"]["summary"] for i in opened]:
        assert not any(c in text for c in "\x00\u202e\u2066\ud800")
    dm = next(m for m in sent if m["text"].startswith("Evil"))
    assert len(dm["text"]) == 40_000 and dm["text"].endswith("…")
    assert len(dm["blocks"][0]["text"]["text"]) <= 150
    issue = next(i for i in opened if "Evil" in i["fields"]["summary"])
    assert len(issue["fields"]["summary"]) == 255
    assert len(issue["fields"]["description"]) <= 32_767


def test_a_lone_surrogate_is_stored_replaced(tmp_path: Path, any_db: str) -> None:
    from datetime import UTC, datetime

    from healthscore.core.crm import CrmSnapshot
    from healthscore.core.scoring import Scorer
    from healthscore.core.trends import Baseline, compare
    from healthscore.history import RunInfo

    book = load_playbook(write_playbook(tmp_path))
    data = json.loads(json.dumps(seed()))  # JSON text carries "\ud800" escaped, as HubSpot's
    data["companies"][0]["properties"]["name"] = "Bad\ud800\x00Co"
    snapshot = CrmSnapshot.from_json(data)
    now = datetime(2026, 2, 1, tzinfo=UTC)
    scores = Scorer(book).score_snapshot(snapshot, now)
    with open_store(any_db) as store:
        store.record_run(
            RunInfo(book.name, "h", now, "file:x", now), compare(scores, Baseline(), 3)
        )
        (entry,) = store.account_history("101")
    assert entry.name == "Bad\ufffdCo"


# ---------------------------------------------------------------- 5. past as-of, backfill


@pytest.mark.usefixtures("prefect_harness")
def test_as_of_in_the_past_is_refused_unless_backfill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = write_playbook(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        assert cli_run(playbook, db, DAY[2], "--enroll-existing").exit_code == 0
        turn_at_risk(urls)
        refused = cli_run(playbook, db, DAY[1])
        assert refused.exit_code == 2
        assert "is before the newest stored run" in refused.stderr
        assert "--backfill" in refused.stderr
        backfilled = cli_run(playbook, db, DAY[1], "--backfill")
        assert backfilled.exit_code == 0, backfilled.output
        assert messages(urls) == [] and issues(urls) == [] and tasks(urls) == []
    with open_store(db) as store:
        assert sorted(r.as_of.isoformat()[:10] for r in store.runs()) == [
            "2026-02-08",
            "2026-02-15",
        ]
    assert [r.action for r in ledger_rows(db)] == ["Upsell segment", "Upsell segment"]


# ---------------------------------------------------------------- 5. crashed runs


def test_a_run_left_running_by_a_dead_process_is_marked_crashed(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from healthscore.history import RunInfo
    from healthscore.history.process import host_name

    db = f"sqlite:///{tmp_path / 'h.db'}"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    now = datetime.now(UTC)
    with open_store(db) as store:
        dead = store.record_run(RunInfo("P", "h", now, "file:x", now), [])
        live = store.record_run(RunInfo("P", "h", now, "file:x", now), [])
        with store.engine.begin() as connection:
            connection.execute(
                sa.update(RUNS).where(RUNS.c.id == dead)
                .values(host=host_name(), pid=int(gone.stdout))
            )  # fmt: skip
        store.record_run(RunInfo("P", "h", now, "file:x", now), [])
        outcomes = {r.id: r.outcome for r in store.runs("P")}
    assert outcomes[dead] == RUN_CRASHED
    assert outcomes[live] == RUN_RUNNING  # this process is alive: not crashed


@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_run_is_crashed_in_the_history_and_in_prefect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `kill -9` in the middle of the actions; the next run marks both records."""
    import asyncio
    import signal

    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    from healthscore.history.process import host_name

    playbook = write_playbook(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    repo = Path(__file__).resolve().parent.parent
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        run_flow(playbook, db, DAY[0])
        turn_at_risk(urls)
        path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": path}
        driver = repo / "tests" / "crash_points.py"
        cli = ["run", "--playbook", playbook, "--source", "sandbox", "--db", db, "--as-of", DAY[1]]
        killed = subprocess.Popen(
            [sys.executable, str(driver), "kill-after-sends", "1", "--", *cli],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, stderr = killed.communicate(timeout=300)
        assert killed.returncode == -signal.SIGKILL, stderr.decode()

        async def states() -> dict[str, tuple[str, str | None]]:
            async with get_client() as client:
                runs = await client.read_flow_runs()
            return {
                r.infrastructure_pid or str(r.id): (r.state_type.value if r.state_type else "",
                                                    r.state.message if r.state else None)
                for r in runs
            }  # fmt: skip

        pid = f"{host_name()}:{killed.pid}"
        assert asyncio.run(states())[pid][0] == "RUNNING"  # left behind by the kill
        with open_store(db) as store:
            assert [r.outcome for r in store.runs()] == [RUN_RUNNING, "succeeded"]
        run_flow(playbook, db, DAY[1])
    after = asyncio.run(states())
    assert after[pid][0] == "CRASHED"
    assert f"({pid}) stopped (killed or crashed)" in str(after[pid][1])
    with open_store(db) as store:
        assert [r.outcome for r in store.runs()] == ["succeeded", RUN_CRASHED, "succeeded"]


# ---------------------------------------------------------------- 5. database trouble


def _cli_history(db: str) -> Any:
    return CliRunner().invoke(app, ["history", "101", "--db", db])


def test_a_newer_database_revision_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    from healthscore.history import store as store_module

    store_module._MIGRATED.clear()
    with pytest.raises(StoreError, match="written by a newer healthscore") as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    result = _cli_history(f"sqlite:///{path}")
    assert result.exit_code == 2 and "newer healthscore" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "h.db"
    with sqlite3.connect(path) as connection:  # an empty database, not migrated yet
        connection.execute("CREATE TABLE keep (x INTEGER)")
    before = path.read_bytes()
    path.chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreError, match="make the file and its folder writable"):
            open_store(f"sqlite:///{path}")
        assert path.read_bytes() == before  # nothing changed
    finally:
        folder.chmod(stat.S_IRWXU)


def test_a_damaged_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not an sqlite file at all" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is damaged") as caught:
        open_store(f"sqlite:///{path}")
    assert "restore it from a backup" in str(caught.value)
    assert path.read_bytes() == before
    result = _cli_history(f"sqlite:///{path}")
    assert result.exit_code == 2 and "damaged" in result.stderr


def test_a_full_disk_is_one_line_and_nothing_half_written(tmp_path: Path) -> None:
    """A real EFBIG: the child process may not grow any file past 64 KiB (RLIMIT_FSIZE)."""
    path = tmp_path / "h.db"
    open_store(f"sqlite:///{path}").close()
    size = path.stat().st_size
    script = f"""
import resource, signal
from datetime import UTC, datetime
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({size} + 4096, {size} + 4096))
from healthscore.core.playbook import load_playbook
from healthscore.core.scoring import Scorer
from healthscore.core.trends import compare, Baseline
from healthscore.history import open_store, RunInfo, StoreError
now = datetime(2026, 2, 1, tzinfo=UTC)
store = open_store("sqlite:///{path}")
try:
    store.record_run(RunInfo("P", "h", now, "x" * 200_000, now), [])
except StoreError as exc:
    print("ERR", exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)  # fmt: skip
    assert "ERR the disk holding the history database" in done.stdout, done.stdout + done.stderr
    with open_store(f"sqlite:///{path}") as store:
        assert store.runs() == []


# ---------------------------------------------------------------- 5. secrets


@pytest.mark.usefixtures("prefect_harness")
def test_the_database_password_never_reaches_prefect(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import get_client

    playbook = write_playbook(tmp_path)
    schema = pg_schema_url(pg_url)  # kept referenced: closing it drops the schema
    url = next(schema)
    request_cleanup = schema.close
    with_password = url.replace("postgres@", "postgres:s3cret-pw@", 1)
    with running_sandbox(seed=seed()) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        result = cli_run(playbook, with_password, DAY[0])
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output

    async def parameters() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            return [json.dumps(r.parameters) for r in runs]

    import asyncio

    recorded = asyncio.run(parameters())
    assert recorded and not any("s3cret-pw" in p for p in recorded)
    with open_store(url) as store:
        assert all("s3cret" not in r.source for r in store.runs())
    request_cleanup()


# ---------------------------------------------------------------- 6. template properties


def test_a_property_used_only_in_a_template_is_pulled(tmp_path: Path) -> None:
    text = PLAYBOOK.replace(
        'message: "{{ account.name }} is now',
        "message: \"{{ account.description }} {{ account['tier'] }} is now",
    )
    book = load_playbook(write_playbook(tmp_path, text))
    needs = book.required_properties()["companies"]
    assert {"description", "tier"} <= needs and "id" not in needs
