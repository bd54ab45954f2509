"""Issue 13, concurrent runs: five `healthscore run` processes of one playbook at once.

Real processes (`python -m healthscore run`), one sandbox, one history database;
each round starts five runs at the same moment, five rounds per database:
SQLite (a new file each round: the five race the migrations too), PostgreSQL
fresh (a new schema each round) and PostgreSQL already migrated. After each
round, what the vendors hold is counted against the ledger: one Slack message,
one Jira issue and one HubSpot task per at-risk account, one list membership per
healthy one, each ledger row sent by exactly one of the five runs, and all five
runs stored as succeeded (a run may also be refused, with one clear line, exit 2: seen
once, a test Prefect server too busy to create the flow run; a refusal without a message
fails the test).

Slow (75 processes on a shared machine): `pytest -m "not slow"` skips it; `H13_ROUNDS=1`
runs one round per database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from healthscore.history import open_store
from healthscore.history.ledger import ActionLedger
from healthscore.history.models import RUN_SUCCEEDED
from healthscore.sandbox import running_sandbox
from tests.conftest import REPO, pg_schema_url
from tests.test_actions_flow import PLAYBOOK, issues, list_members, messages, seed, tasks

RUNS_AT_ONCE = 5
ROUNDS = int(os.environ.get("H13_ROUNDS", "5"))
EXTRA = 37  # 3 + 37 = 40 companies
AS_OF = "2026-02-01T09:00:00Z"


def crm() -> dict[str, Any]:
    """40 companies; Acme, Beta and the first 18 extras start At-risk (usage 10, red)."""
    data = seed(extra=EXTRA)
    for company in data["companies"][: 2 + EXTRA // 2]:
        if company["id"] in ("103",):
            continue
        company["properties"].update({"usage": "10", "csm_pulse": "red"})
    return data


AT_RISK = sorted(["101", "102", *(str(201 + i) for i in range(EXTRA // 2 - 1))])
# score >= 85: usage 100 and green (80 + 20); Gamma (75 usage, yellow) is not
UPSELL = sorted(str(201 + i) for i in range(EXTRA // 2 - 1, EXTRA))


def start_runs(playbook: str, db: str, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "healthscore", "run", "--playbook", playbook,
               "--source", "sandbox", "--db", db, "--as-of", AS_OF, "--enroll-existing",
               "--json"]  # fmt: skip
    return [
        subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(RUNS_AT_ONCE)
    ]


def finish(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        done.append((process.returncode, stdout, stderr))
    return done


def check_round(urls: Any, db: str, done: list[tuple[int, str, str]]) -> None:
    summaries = []
    for code, stdout, stderr in done:
        if code == 2:  # cleanly refused: one `error:` line that says why
            lines = [line for line in stderr.splitlines() if line.strip()]
            assert lines and lines[-1].startswith("error: "), stderr
            continue
        assert code == 0, f"exit {code}\n{stdout}\n{stderr}"
        summaries.append(json.loads(stdout[stdout.index("{") :]))
    with open_store(db) as store:
        runs = store.runs(limit=100)
        rows = ActionLedger(store.engine).entries(limit=1000)
    # no run lost: every run that did not refuse is stored, and finished
    assert sorted(r.id for r in runs) == sorted(s["run_id"] for s in summaries)
    assert [r.outcome for r in runs] == [RUN_SUCCEEDED] * len(summaries)
    assert all(r.accounts == 3 + EXTRA for r in runs)
    # no action doubled: one ledger row per action and account, sent by exactly one run
    per_kind = {kind: sorted(r.account_id for r in rows if r.kind == kind) for kind in
                ("slack", "jira", "hubspot_task", "hubspot_list")}  # fmt: skip
    assert per_kind == {"slack": AT_RISK, "jira": AT_RISK, "hubspot_task": AT_RISK,
                        "hubspot_list": UPSELL}  # fmt: skip
    assert [r for r in rows if r.state != "sent"] == []
    assert sum(s["actions"]["sent"] + s["actions"]["reconciled"] for s in summaries) == len(rows)
    # and the vendors hold exactly what the ledger says was sent
    sent = messages(urls)
    assert sorted(m["metadata"]["event_payload"]["ledger_key"] for m in sent) == sorted(
        r.key for r in rows if r.kind == "slack"
    )
    opened = issues(urls)
    assert sorted(i["key"] for i in opened) == sorted(
        r.external_id or "" for r in rows if r.kind == "jira"
    )
    created = tasks(urls)
    assert sorted(c for t in created for c in t["companies"]) == AT_RISK
    assert list_members(urls) == {"Upsell candidates": UPSELL}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JIRA_MAX_RETRIES": "0",
        "HEALTHSCORE_DASHBOARD_DIR": str(tmp_path / "dashboards"),
    }


def databases(kind: str, tmp_path: Path, round_no: int) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'round{round_no}.db'}"
        return
    schema = pg_schema_url(os.environ.get("HEALTHSCORE_TEST_PG_URL") or _pg_base())
    url = next(schema)
    try:
        if kind == "postgres-migrated":
            open_store(url).close()
        yield url
    finally:
        schema.close()


def _pg_base() -> str:
    from tests.conftest import PG_URL

    return PG_URL


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres-fresh", marks=pytest.mark.postgres),
        pytest.param("postgres-migrated", marks=pytest.mark.postgres),
    ],
)
def test_five_runs_at_once_double_nothing_and_lose_nothing(
    kind: str, tmp_path: Path, env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if kind != "sqlite":
        request.getfixturevalue("pg_url")  # skips when PostgreSQL is not reachable
    playbook = tmp_path / "actions.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    for round_no in range(ROUNDS):
        with running_sandbox(seed=crm()) as urls:
            env["HEALTHSCORE_SANDBOX_URL"] = urls.hubspot_url
            for db in databases(kind, tmp_path, round_no):
                done = finish(start_runs(str(playbook), db, env))
                check_round(urls, db, done)
                httpx.post(f"{urls.base_url}/_sandbox/clear-stats")


def test_a_prefect_server_answering_503_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """What a run lost to a busy Prefect server (its SQLite database locked under five runs
    at once) shows: a real HTTP server answering 503 to every call as the Prefect API."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from prefect import __version__ as prefect_version

    class Busy(BaseHTTPRequestHandler):
        def _busy(self) -> None:
            body = b'{"exception_message": "Service Unavailable"}'
            status = 503
            if self.path.rstrip("/").endswith("/admin/version"):  # the client's first check
                body, status = json.dumps(prefect_version).encode(), 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _busy

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}/api"
    crm_file = tmp_path / "crm.json"
    crm_file.write_text(json.dumps(crm()), encoding="utf-8")
    playbook = tmp_path / "actions.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    db = tmp_path / "h.db"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_CLIENT_MAX_RETRIES": "0",
           "PYTHONPATH": path}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-m", "healthscore", "run", "--playbook", str(playbook),
             "--source", f"file:{crm_file}", "--db", f"sqlite:///{db}"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: the Prefect server at {api} failed a call of this run (HTTP 503 Service "
        "Unavailable); it is down or overloaded (e.g. many runs at once on a local server): run "
        "again later, actions already sent are not sent twice"
    ]
    assert not db.exists()  # the flow run was never created: nothing ran
