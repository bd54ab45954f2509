"""Scale past one machine (issue 15): two Prefect workers, one work pool, one PostgreSQL.

Real parts: a Prefect server (`flows/local_server.py`'s, in its own process), a
process work pool, the flow deployed from this checkout, two `prefect worker start`
processes that take one flow run at a time each, the sandbox, and PostgreSQL. The
first flow run is the playbook's baseline; then Acme and Beta turn At-risk
(`tests/test_actions_flow.py`), and two flow runs of the same deployment, as-of
and database, one per worker, both complete with each action done once: 2 Slack
messages, 2 Jira issues, 2 HubSpot tasks, not 4.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from healthscore.history import open_store
from healthscore.history.ledger import ActionLedger
from healthscore.sandbox import SandboxUrls, running_sandbox
from tests.conftest import pg_schema_url
from tests.test_actions_flow import DAY, PLAYBOOK, issues, messages, seed, tasks, turn_at_risk

REPO = Path(__file__).resolve().parent.parent
POOL = "healthscore-test-pool"
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    from flows.local_server import PID_FILE, local_api_url

    home = tmp_path / "prefect"
    url, _ = local_api_url(home)
    try:
        yield url
    finally:
        pid = int((home / PID_FILE).read_text(encoding="utf-8").strip())
        os.killpg(pid, signal.SIGTERM)


@pytest.fixture
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(seed=seed()) as urls:
        yield urls


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    yield from pg_schema_url(pg_url)


def _env(api_url: str, sandbox: SandboxUrls) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HEALTHSCORE_"))}
    return env | {
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "HEALTHSCORE_SANDBOX_URL": sandbox.hubspot_url,
        "HEALTHSCORE_ACTION_BACKOFF_SECONDS": "0",
        "JIRA_MAX_RETRIES": "0",
        "PYTHONPATH": str(REPO),
    }


def _deploy(api_url: str, playbook: Path, db_url: str) -> UUID:
    """A process work pool and the flow deployed on it from this checkout."""
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        subprocess.run(
            [sys.executable, "-m", "prefect", "work-pool", "create", POOL, "--type", "process"],
            env={**os.environ, "PREFECT_API_URL": api_url},
            check=True,
            capture_output=True,
        )
        deployable: Any = flow.from_source(
            source=str(REPO), entrypoint="flows/score_accounts.py:score_accounts"
        )
        return UUID(
            str(
                deployable.deploy(
                    name="two-workers",
                    work_pool_name=POOL,
                    parameters={
                        "playbook_path": str(playbook),
                        "source": "sandbox",
                        "db_url": db_url,
                        "enroll_existing": True,
                    },
                    print_next_steps=False,
                )
            )
        )


def _runs(api_url: str, deployment: UUID, as_of: str, count: int) -> list[UUID]:
    """`count` flow runs of the deployment, waited for until each is final; their ids."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        ids = [
            client.create_flow_run_from_deployment(deployment, parameters={"as_of": as_of}).id
            for _ in range(count)
        ]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = [client.read_flow_run(i).state for i in ids]
            if all(s is not None and s.is_final() for s in states):
                assert all(s is not None and s.is_completed() for s in states), states
                return ids
            time.sleep(1)
    raise AssertionError(f"flow runs {ids} did not finish")


def test_two_workers_share_one_pool_and_one_database(
    tmp_path: Path, prefect_server: str, sandbox: SandboxUrls, pg_db: str
) -> None:
    playbook = tmp_path / "actions.yaml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    db_url = pg_db
    deployment = _deploy(prefect_server, playbook, db_url)
    env = _env(prefect_server, sandbox)
    workers: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    try:
        for number, log in enumerate(logs, start=1):
            command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
            command += ["--name", f"w{number}", "--limit", "1", "--type", "process"]
            with open(log, "wb") as out:
                workers.append(
                    subprocess.Popen(
                        command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )  # fmt: skip
        _runs(prefect_server, deployment, DAY[0], 1)  # the baseline: nothing is sent
        assert messages(sandbox) == []
        turn_at_risk(sandbox)
        both = _runs(prefect_server, deployment, DAY[1], 2)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
    took = [{str(i) for i in both if str(i) in log.read_text(encoding="utf-8")} for log in logs]
    assert sorted(len(t) for t in took) == [1, 1], took  # one flow run each
    assert took[0] != took[1]
    # Acme (Ana's DM) and Beta (Bo has no Slack user: the fallback channel), once each
    assert sorted(m["channel_name"] for m in messages(sandbox)) == ["@UANA00001", "cs-alerts"]
    assert sorted(i["fields"]["summary"] for i in issues(sandbox)) == [
        "Health drop: Acme",
        "Health drop: Beta",
    ]
    assert len(tasks(sandbox)) == 2
    with open_store(db_url) as store:
        rows = ActionLedger(store.engine).entries(limit=100)
        runs = store.runs(limit=10)
    assert len(runs) == 3 and {r.outcome for r in runs} == {"succeeded"}
    # one ledger row per At-risk action and account, every one sent
    at_risk = [r for r in rows if r.action != "Upsell segment"]
    assert sorted((r.action, r.account_id, r.state) for r in at_risk) == [
        (action, account, "sent")
        for action in ("Alert CSM on at-risk", "Call task", "Escalation ticket")
        for account in ("101", "102")
    ]
