"""`healthscore demo`: the whole product on a laptop, with no account anywhere.

Why it is built the way it is: a demo that takes shortcuts proves nothing. So it
generates a realistic CRM (`healthscore.demo.sample`), serves it from the in-process
HubSpot/Slack/Jira sandbox, and then runs the *real* scoring flow once per simulated
week while the CRM drifts *through the sandbox's HubSpot API* (batch updates and
creates with `hubspot-api-client`), exactly as a customer's CRM changes between two
scheduled runs. The incremental pull, the history, the trends, the Slack alerts, the
Jira tickets and the list changes are therefore the ones a real deployment produces.

This module holds no Prefect code (the engine never imports it): the CLI hands in
`run_week`, which runs the flow, and `post_digest`, which runs the digest flow.

Simulated time: the as-of dates are the `weeks` most recent Mondays at 09:00 UTC,
the last one being the latest Monday at or before now, so the dashboard reads like
this morning's report. The sample generator is relative to its as-of date, so the
numbers do not depend on the day the demo runs (only the dates do).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from healthscore.demo.sample import apply_changes, evolve_snapshot, generate_snapshot
from healthscore.files import atomic_write
from healthscore.integrations.hubspot.client import SANDBOX_URL_ENV, HubSpotConnection, connect

DEMO_SEED = 7
BATCH = 100  # HubSpot's batch limit
# HubSpot's own association type ids (v4), event -> company.
TO_COMPANY = {"meetings": 188, "calls": 182, "tickets": 339, "emails": 186, "notes": 190}
# Written by HubSpot itself on every change; never sent.
READ_ONLY = frozenset({"hs_lastmodifieddate", "lastmodifieddate", "hs_object_id"})

Progress = Callable[[str, int, int], None]
"""`(what is happening, steps done, steps in all)`: the CLI draws it as a progress bar."""


@dataclass
class DemoResult:
    """What the demo did, for its closing report."""

    out_dir: Path
    db_path: Path
    dashboard: Path
    crm: Path
    accounts: int
    scored: int
    weeks: int
    dates: list[datetime]
    counts: dict[str, int] = field(default_factory=dict)
    actions: int = 0
    slack_messages: int = 0
    slack_alerts: int = 0  # every message but the digest
    slack_direct: int = 0  # of which direct messages to the account's CSM
    digest_posted: bool = False
    jira_issues: int = 0
    lists: dict[str, int] = field(default_factory=dict)
    crm_updates: int = 0
    crm_creates: int = 0
    seconds: float = 0.0
    summaries: list[dict[str, Any]] = field(default_factory=list)


def demo_dates(weeks: int, now: datetime | None = None) -> list[datetime]:
    """The `weeks` latest Mondays at 09:00 UTC (oldest first), the last at or before now."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    if monday > now:
        monday -= timedelta(days=7)
    return [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


class DriftingCrm:
    """The demo's CRM: a local snapshot mirrored in the sandbox, moved on a week at a time.

    Every change goes through the HubSpot API, so the sandbox stamps
    `hs_lastmodifieddate` and the next incremental pull finds it. Records created in
    the sandbox get the sandbox's ids, which replace the generator's in the local
    copy, so later weeks (closing a ticket opened earlier) address the right record.
    """

    def __init__(self, snapshot: dict[str, Any], connection: HubSpotConnection, seed: int) -> None:
        self.snapshot = snapshot
        self.connection = connection
        self.seed = seed
        self.updates = 0
        self.creates = 0

    def advance(self, week: int, as_of: datetime) -> None:
        changes = evolve_snapshot(self.snapshot, week, self.seed, as_of)
        for object_type, by_id in changes.items():
            if object_type != "_new":
                self._update(object_type, by_id)
        for object_type, records in changes.get("_new", {}).items():
            self._create(object_type, records)
        apply_changes(self.snapshot, changes)

    def _update(self, object_type: str, by_id: Mapping[str, Mapping[str, Any]]) -> None:
        from hubspot.crm.objects import (
            BatchInputSimplePublicObjectBatchInput,
            SimplePublicObjectBatchInput,
        )

        inputs = [
            SimplePublicObjectBatchInput(id=record_id, properties=_writable(values))
            for record_id, values in by_id.items()
            if _writable(values)
        ]
        for chunk in _chunks(inputs, BATCH):
            self.connection.call(
                self.connection.client.crm.objects.batch_api.update,
                object_type,
                batch_input_simple_public_object_batch_input=(
                    BatchInputSimplePublicObjectBatchInput(inputs=chunk)
                ),
            )
            self.updates += len(chunk)

    def _create(self, object_type: str, records: list[dict[str, Any]]) -> None:
        from hubspot.crm.objects import (
            AssociationSpec,
            BatchInputSimplePublicObjectBatchInputForCreate,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectBatchInputForCreate,
        )

        type_id = TO_COMPANY[object_type]
        for chunk in _chunks(records, BATCH):
            inputs = [
                SimplePublicObjectBatchInputForCreate(
                    properties=_writable(record.get("properties", {})),
                    associations=[
                        PublicAssociationsForObject(
                            to=PublicObjectId(id=company_id),
                            types=[
                                AssociationSpec(
                                    association_category="HUBSPOT_DEFINED",
                                    association_type_id=type_id,
                                )
                            ],
                        )
                        for company_id in record.get("associations", {}).get("companies", [])
                    ],
                )
                for record in chunk
            ]
            answer = self.connection.call(
                self.connection.client.crm.objects.batch_api.create,
                object_type,
                batch_input_simple_public_object_batch_input_for_create=(
                    BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
                ),
            )
            results = list(answer.results or [])
            if len(results) != len(chunk):
                raise RuntimeError(
                    f"the sandbox created {len(results)} {object_type} of {len(chunk)}"
                )
            for record, created in zip(chunk, results, strict=True):
                record["id"] = str(created.id)  # the sandbox's id from now on
            self.creates += len(chunk)


def run_demo(
    out_dir: Path,
    run_week: Callable[[str, str], dict[str, Any]],
    *,
    accounts: int = 600,
    weeks: int = 8,
    seed: int = DEMO_SEED,
    post_digest: Callable[[str], None] | None = None,
    write_dashboard: Callable[[str, Path], None] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> DemoResult:
    """Generate, serve, drift and score `weeks` times, then count what happened.

    `run_week(as_of_iso, db_url)` runs the scoring flow once and returns its summary;
    `post_digest(db_url)` posts the leadership digest; `write_dashboard(db_url, path)`
    writes the dashboard file. The previous demo database in `out_dir` is replaced,
    so two demos never mix their histories.
    """
    from healthscore.sandbox import running_sandbox

    started = time.monotonic()
    report = progress or (lambda _what, _done, _total: None)
    total = weeks + 2
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = (out_dir / "history.db").resolve()
    for stale in (db_path, db_path.with_name(db_path.name + "-journal")):
        stale.unlink(missing_ok=True)
    db_url = f"sqlite:///{db_path}"
    dashboard = (out_dir / "dashboard.html").resolve()
    dates = demo_dates(weeks, now)

    report(f"generating a CRM of {accounts} companies", 0, total)
    snapshot = generate_snapshot(accounts, seed=seed, as_of=dates[0])
    result = DemoResult(
        out_dir=out_dir.resolve(),
        db_path=db_path,
        dashboard=dashboard,
        crm=(out_dir / "crm.json").resolve(),
        accounts=accounts,
        scored=0,
        weeks=weeks,
        dates=dates,
    )
    with running_sandbox(seed=snapshot) as urls, _env(SANDBOX_URL_ENV, urls.hubspot_url):
        crm = DriftingCrm(snapshot, connect(sandbox=True, base_url=urls.hubspot_url), seed)
        for week, as_of in enumerate(dates):
            day = as_of.strftime("%a %d %b %Y")
            if week:
                report(f"week {week + 1}/{weeks}: the CRM drifts ({day})", week + 1, total)
                crm.advance(week, as_of)
            report(f"week {week + 1}/{weeks}: scoring as of {day}", week + 1, total)
            summary = run_week(as_of.isoformat(), db_url)
            result.summaries.append(summary)
            delivered = summary.get("actions") or {}  # the summary's ActionCounts object
            result.actions += int(delivered.get("sent", 0)) + int(delivered.get("reconciled", 0))
        report("posting the leadership digest and writing the dashboard", weeks + 1, total)
        # The CRM as it ended, so `healthscore explain` works after the sandbox is gone.
        atomic_write(result.crm, json.dumps(crm.snapshot, ensure_ascii=False))
        if post_digest is not None:
            post_digest(db_url)
        _count_sandbox(result, urls.base_url)
    if write_dashboard is not None:
        write_dashboard(db_url, dashboard)
    last = result.summaries[-1] if result.summaries else {}
    result.counts = dict(last.get("counts") or {})
    result.scored = int(last.get("accounts") or 0)
    result.crm_updates, result.crm_creates = crm.updates, crm.creates
    result.seconds = time.monotonic() - started
    report("done", total, total)
    return result


def _count_sandbox(result: DemoResult, base_url: str) -> None:
    """What really reached Slack, Jira and HubSpot lists, from the sandbox's inspection API."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        messages = client.get("/_sandbox/slack/messages").json().get("messages", [])
        issues = client.get("/_sandbox/jira/issues").json().get("issues", [])
        lists = client.get("/_sandbox/hubspot/lists").json().get("lists", [])
    channels = [str(m.get("channel_name") or "") for m in messages]
    result.slack_messages = len(messages)
    result.digest_posted = "cs-leadership" in channels
    result.slack_alerts = sum(1 for c in channels if c != "cs-leadership")
    result.slack_direct = sum(1 for c in channels if c.startswith("@"))
    result.jira_issues = len(issues)
    result.lists = {str(x.get("name")): len(x.get("members") or []) for x in lists}


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _writable(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in values.items() if k not in READ_ONLY}


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
