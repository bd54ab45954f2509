"""A local Prefect server that `healthscore run` starts once and later runs reuse.

With no `PREFECT_API_URL`, Prefect 3 starts a temporary server in a subprocess for
every process that runs a flow, waits until it answers, and stops it when the
process ends: every `healthscore run` paid that start (a one-task flow took
56-89 s on a busy 2-core VM, most of it the server's start) and, on an offline
machine, printed the server's failed telemetry call.

Here the first run starts `prefect server start` detached, its home (SQLite
database, `server.log`, Prefect's own `server.pid`) in `<data dir>/prefect`,
telemetry off, no background services (nothing is scheduled on it), and records
its address in `api-url` there; a later run that finds that address answering
uses it at once. `PREFECT_HOME=<that folder> prefect server stop` stops it, and
the next run starts it again. A configured `PREFECT_API_URL` (environment or
Prefect profile, e.g. a team's server or Prefect Cloud) is always used instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

URL_FILE = "api-url"
PID_FILE = "server.pid"  # the name `prefect server stop` reads (prefect.cli._server_utils)
LOG_FILE = "server.log"
STARTUP_SECONDS = 180.0
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry call (fails offline)
    "PREFECT_SERVER_UI_ENABLED": "true",  # the runs stay browsable at the address
}


class ServerStartError(RuntimeError):
    """The local Prefect server did not answer within `STARTUP_SECONDS`; see its log."""


def configured_api_url() -> str | None:
    """`PREFECT_API_URL` from the environment or the active Prefect profile, if any."""
    value = PREFECT_API_URL.value()
    return str(value) if value else None


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers `GET <url>/health` with 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the number
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


@contextmanager
def prefect_api(home: Path) -> Iterator[tuple[str, bool]]:
    """Flow runs inside go to the configured Prefect API, else to the local server.

    Yields (API URL, whether this call started the local server).
    """
    configured = configured_api_url()
    if configured is not None:
        yield configured, False
        return
    url, started = local_api_url(home)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url, started


def local_api_url(home: Path) -> tuple[str, bool]:
    """The address of the persistent local server under `home`, started if needed.

    Returns (API URL, whether this call started it). A server another run is
    starting right now (its pid file exists, the process lives) is waited for
    rather than started twice. Raises `ServerStartError` when it does not answer
    within `STARTUP_SECONDS`.
    """
    home.mkdir(parents=True, exist_ok=True)
    url_file, pid_file = home / URL_FILE, home / PID_FILE
    url = _read(url_file)
    if url and answers(url):
        return url, False
    pid = _read(pid_file)
    if pid and pid.isdigit() and _alive(int(pid)) and url:
        other = int(pid)
        return _wait(url, lambda: _alive(other), home), False  # another run is starting it
    if pid and pid.isdigit() and _alive(int(pid)):
        os.kill(int(pid), signal.SIGTERM)  # a server whose address we lost
    pid_file.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{_free_port()}/api"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PREFECT_API_URL", "PREFECT_HOME")
    }
    env |= QUIET_ENV | {"PREFECT_HOME": str(home)}
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", port, "--no-services", "--analytics-off"]
    with open(home / LOG_FILE, "ab") as server_log:
        process = subprocess.Popen(  # detached: it outlives this run on purpose
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid), encoding="utf-8")
    url_file.write_text(url, encoding="utf-8")
    return _wait(url, lambda: process.poll() is None, home), True


def _wait(url: str, running: Callable[[], bool], home: Path) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if answers(url):
            return url
        if not running():
            break
        time.sleep(0.25)
    raise ServerStartError(
        f"the local Prefect server ({url}) did not start; see {home / LOG_FILE}, or set "
        "PREFECT_API_URL to a Prefect server you run yourself"
    )
