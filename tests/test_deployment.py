"""deployments/prefect.yaml is accepted by `prefect deploy` against a real local server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free port with its own PREFECT_HOME; stopped after."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "prefect server did not start:\n" + (tmp_path / "server.log").read_text()
                )
            time.sleep(0.5)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
        log.close()


def test_prefect_deploy_accepts_the_deployment(prefect_server: dict[str, str]) -> None:
    def prefect(*args: str) -> None:
        done = subprocess.run(
            [PREFECT, *args], env=prefect_server, cwd=REPO, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr

    prefect("work-pool", "create", "local", "--type", "process")
    prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")

    api = prefect_server["PREFECT_API_URL"]
    found = httpx.get(f"{api}/deployments/name/score-accounts/daily-customer-health", timeout=10)
    assert found.status_code == 200, found.text
    deployment = found.json()
    assert deployment["entrypoint"] == "flows/score_accounts.py:score_accounts"
    assert deployment["work_pool_name"] == "local"
    assert deployment["parameters"]["playbook_path"] == "playbooks/default.yaml"
    (schedule,) = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Berlin"
    parameters = deployment["parameter_openapi_schema"]["properties"]
    # one playbook, or a list of them scored from one pull
    assert {"type": "string"} in parameters["playbook_path"]["anyOf"]
    assert {"type": "array", "items": {"type": "string"}} in parameters["playbook_path"]["anyOf"]
    assert set(parameters) == {
        "playbook_path",
        "source",
        "as_of",
        "dry_run",
        "db_url",
        "dashboard",
        "full",
        "full_pull_every_days",
        "enroll_existing",
        "backfill",
    }

    digest = httpx.get(f"{api}/deployments/name/weekly-digest/weekly-leadership-digest", timeout=10)
    assert digest.status_code == 200, digest.text
    (weekly,) = digest.json()["schedules"]
    assert weekly["schedule"]["cron"] == "30 7 * * 1"
    assert weekly["schedule"]["timezone"] == "Europe/Berlin"
