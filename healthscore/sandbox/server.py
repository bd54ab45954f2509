"""Running the sandbox: in a background thread for tests and the demo, or in the foreground.

`running_sandbox()` binds 127.0.0.1 (port 0 picks a free one), waits until
uvicorn is accepting connections, yields the URLs each vendor client needs, and
shuts the server down on exit. `serve()` is what `healthscore sandbox` runs.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from healthscore.core.crm import CrmSnapshot

from .app import DROPPED, SandboxApp, create_app
from .hubspot import SEARCH_RESULT_CAP
from .hubspot_exports import EXPORT_DAILY_LIMIT, EXPORT_PARTITION_ROWS
from .limits import Limits
from .state import SandboxState


@dataclass(frozen=True)
class SandboxUrls:
    """Where each client points: `HubSpot(host=)`, `WebClient(base_url=)`, `JIRA(server=)`."""

    base_url: str
    app: SandboxApp

    @property
    def hubspot_url(self) -> str:
        return self.base_url

    @property
    def slack_url(self) -> str:
        return self.base_url + "/api/"

    @property
    def jira_url(self) -> str:
        return self.base_url

    @property
    def state(self) -> SandboxState:
        return self.app.state

    @property
    def limits(self) -> Limits:
        return self.app.limits


class _QuietDrops(logging.Filter):
    """Dropped connections are deliberate; keep uvicorn from logging them as app errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and DROPPED in record.args)


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _build(
    seed: Mapping[str, Any] | CrmSnapshot | None,
    rate_limit: int,
    search_rate_per_second: float,
    faults: float,
    fault_seed: int,
    slow_seconds: float,
    daily_limit: int,
    jira_deployment_type: str,
    faults_after_write: float = 0.0,
    tokens: Mapping[str, Sequence[str]] | None = None,
    slack_tokens: Mapping[str, Sequence[str]] | None = None,
    slack_channel_rate: float | None = None,
) -> SandboxApp:
    state = SandboxState.from_seed(
        seed,
        jira_deployment_type=jira_deployment_type,
        # One `--tokens` file maps HubSpot and Slack tokens alike; Slack's start with `xox`.
        slack_tokens=slack_tokens if slack_tokens is not None else tokens,
        slack_channel_rate=slack_channel_rate,
    )
    limits = Limits(
        rate_limit=rate_limit,
        daily_limit=daily_limit,
        search_rate_per_second=search_rate_per_second,
        faults=faults,
        fault_seed=fault_seed,
        slow_seconds=slow_seconds,
        faults_after_write=faults_after_write,
    )
    return create_app(state, limits=limits, tokens=tokens)


@contextmanager
def running_sandbox(
    seed: Mapping[str, Any] | CrmSnapshot | None = None,
    *,
    rate_limit: int = 190,
    search_rate_per_second: float = 5,
    faults: float = 0.0,
    fault_seed: int = 0,
    slow_seconds: float = 0.5,
    port: int = 0,
    daily_limit: int = 1_000_000,
    jira_deployment_type: str = "Server",
    faults_after_write: float = 0.0,
    tokens: Mapping[str, Sequence[str]] | None = None,
    slack_tokens: Mapping[str, Sequence[str]] | None = None,
    slack_channel_rate: float | None = None,
    search_cap: int = SEARCH_RESULT_CAP,
    export_daily_limit: int = EXPORT_DAILY_LIMIT,
    export_seconds: float = 0.0,
    export_partition_rows: int = EXPORT_PARTITION_ROWS,
) -> Iterator[SandboxUrls]:
    """Run the sandbox on 127.0.0.1 in a background thread for the duration of a `with`.

    `tokens` and `faults_after_write` as in `create_app`; `tokens` also gives the Slack
    tokens' scopes unless `slack_tokens` is set; `slack_channel_rate` is chat.postMessage's
    per-channel limit in messages per second (None: off). `search_cap`: CRM search's
    results per query, HubSpot's 10,000 unless a test wants a smaller one.
    `export_daily_limit` (CRM exports started per rolling 24 hours, HubSpot's 30),
    `export_seconds` (how long an export stays PROCESSING, 0: ready at once) and
    `export_partition_rows` (rows past which the file is a ZIP of CSVs, HubSpot's
    1,000,000): the Exports API's knobs. All four are `SandboxState` attributes a test
    may also change on `urls.state` while the sandbox runs; `/_sandbox/reset` keeps them.
    """
    app = _build(
        seed,
        rate_limit,
        search_rate_per_second,
        faults,
        fault_seed,
        slow_seconds,
        daily_limit,
        jira_deployment_type,
        faults_after_write,
        tokens,
        slack_tokens,
        slack_channel_rate,
    )
    app.state.search_cap = search_cap
    app.state.export_daily_limit = export_daily_limit
    app.state.export_seconds = export_seconds
    app.state.export_partition_rows = export_partition_rows
    _install_log_filter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,  # returns a value on purpose to drop connections (see app.py)
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="healthscore-sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield SandboxUrls(base_url=f"http://127.0.0.1:{bound_port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def serve(
    seed_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    rate_limit: int = 190,
    faults: float = 0.0,
    fault_seed: int = 0,
    faults_after_write: float = 0.0,
    tokens: Mapping[str, Sequence[str]] | None = None,
    slack_channel_rate: float | None = None,
    jira_deployment_type: str = "Server",
) -> None:
    """Run in the foreground until interrupted; prints where each client should point.

    `tokens` (e.g. from `hubspot_scopes.load_tokens(path)`) turns on scope checks for
    HubSpot and Slack tokens; `slack_channel_rate` as in `running_sandbox`.
    """
    seed = CrmSnapshot.load(seed_path) if seed_path else None
    app = _build(
        seed,
        rate_limit,
        5,
        faults,
        fault_seed,
        0.5,
        1_000_000,
        jira_deployment_type,
        faults_after_write,
        tokens,
        None,
        slack_channel_rate,
    )
    _install_log_filter()
    base = f"http://{host}:{port}"
    print(f"HubSpot: HubSpot(access_token='any', host='{base}')")
    print(f"Slack:   WebClient(token='xoxb-any', base_url='{base}/api/')")
    print(f"Jira:    JIRA(server='{base}', token_auth='any')")
    print(f"Inspect: {base}/_sandbox/stats  (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off")
