"""The portfolio at its latest run: the numbers the dashboard, the Prefect artifacts and the
weekly digest all show.

Why one module: an executive who reads 212 At-risk accounts in the Slack digest and 211 in
the dashboard stops trusting both. Every report is rendered from one `Portfolio`, loaded
from the history store with a handful of set queries (runs, the latest run's snapshots,
the recent scores of every account), never one query per account.

Status order: the playbook's thresholds when it is at hand (the flow, `--playbook FILE`);
otherwise statuses are ordered by the average stored score of the accounts that had them,
which is the threshold order because statuses are score bands. The last status is the
"at risk" one (the lowest band).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from healthscore.errors import UserError
from healthscore.history import HistoryStore, RunInfo
from healthscore.history.models import SQLModel

SNAPSHOTS = SQLModel.metadata.tables["account_snapshots"]
HISTORY_RUNS = 12  # runs shown in sparklines and the status timeline
NO_OWNER = "(no owner)"


class NoHistoryError(UserError, LookupError):
    """The store has no run (of that playbook) to report on yet."""


@dataclass(frozen=True)
class StatusLabel:
    label: str
    color: str


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account in the latest run, with its recent history.

    Its group and rule points stay the JSON text the store holds (`groups_json`,
    `rules_json`) until asked for: decoded, 100k accounts' rules are about 300 MB of
    dicts, and only the dashboard's account table reads them, one account at a time.
    """

    id: str
    name: str
    owner_id: str | None
    owner: str
    score: float
    status: str
    color: str
    trend: str
    delta: float | None  # vs the playbook's compare window (what the trend arrow says)
    previous_status: str | None
    since_last_run: float | None  # vs this account's score in the previous run
    groups_json: str | bytes = "{}"  # {group: points}, as stored
    rules_json: str | bytes = "{}"  # {group: {rule: points}}, as stored
    history: Sequence[tuple[datetime, float]] = ()  # oldest first, latest run included

    @property
    def groups(self) -> dict[str, float]:
        """Points per group, in the playbook's order (decoded on each call)."""
        return _decoded(self.groups_json)

    @property
    def rules(self) -> dict[str, dict[str, float]]:
        """Points per rule, by group (decoded on each call)."""
        return _decoded(self.rules_json)


@dataclass(frozen=True)
class StatusCount:
    label: str
    color: str
    count: int
    previous: int | None  # in the previous run; None when there is none

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.count - self.previous


@dataclass(frozen=True)
class OwnerView:
    """One CSM's book of business."""

    owner_id: str | None
    name: str
    accounts: int
    average: float
    by_status: Mapping[str, int]
    at_risk: int


@dataclass
class Portfolio:
    playbook: str
    run: RunInfo
    previous_run: RunInfo | None
    statuses: list[StatusLabel]
    accounts: list[AccountView]
    runs: list[RunInfo] = field(default_factory=list)  # oldest first, latest included

    # -- headline figures

    @property
    def risk_label(self) -> str:
        return self.statuses[-1].label if self.statuses else ""

    @property
    def average(self) -> float:
        return _mean([a.score for a in self.accounts])

    @property
    def previous_average(self) -> float | None:
        if self.previous_run is None:
            return None
        before = [a.score - a.since_last_run for a in self.accounts if a.since_last_run is not None]
        return _mean(before) if before else None

    def status_counts(self) -> list[StatusCount]:
        counts = {s.label: 0 for s in self.statuses}
        for account in self.accounts:
            counts[account.status] = counts.get(account.status, 0) + 1
        before = dict(self.previous_run.counts or {}) if self.previous_run else None
        return [
            StatusCount(
                s.label,
                s.color,
                counts.get(s.label, 0),
                None if before is None else int(before.get(s.label, 0)),
            )
            for s in self.statuses
        ]

    def share(self, label: str) -> float:
        """Percent of accounts with this status (0 when there are none)."""
        if not self.accounts:
            return 0.0
        return 100.0 * sum(1 for a in self.accounts if a.status == label) / len(self.accounts)

    def owners(self) -> list[OwnerView]:
        """CSMs by number of at-risk accounts, then book size, then name."""
        books: dict[str | None, list[AccountView]] = {}
        for account in self.accounts:
            books.setdefault(account.owner_id, []).append(account)
        views = []
        for owner_id, book in books.items():
            by_status = {s.label: 0 for s in self.statuses}
            for account in book:
                by_status[account.status] = by_status.get(account.status, 0) + 1
            views.append(
                OwnerView(
                    owner_id=owner_id,
                    name=book[0].owner,
                    accounts=len(book),
                    average=_mean([a.score for a in book]),
                    by_status=by_status,
                    at_risk=by_status.get(self.risk_label, 0),
                )
            )
        views.sort(key=lambda o: (-o.at_risk, -o.accounts, o.name.casefold(), o.owner_id or ""))
        return views

    def movers(self, limit: int = 10) -> list[AccountView]:
        """Largest stored |delta| first (the trend's window), ties by id."""
        moved = [a for a in self.accounts if a.delta]
        moved.sort(key=lambda a: (-abs(a.delta or 0.0), a.id))
        return moved[:limit]

    def fallers(self, limit: int = 5) -> list[AccountView]:
        """The largest drops over the trend window, largest first."""
        return [a for a in self.movers(len(self.accounts)) if (a.delta or 0) < 0][:limit]

    def risers(self, limit: int = 5) -> list[AccountView]:
        """The largest rises over the trend window, largest first."""
        return [a for a in self.movers(len(self.accounts)) if (a.delta or 0) > 0][:limit]

    def timeline(self) -> list[tuple[datetime, dict[str, int]]]:
        """Accounts per status in each recent run, oldest first."""
        return [
            (r.as_of, {s.label: int((r.counts or {}).get(s.label, 0)) for s in self.statuses})
            for r in self.runs
        ]


# ---------------------------------------------------------------- loading


def load_portfolio(
    store: HistoryStore,
    playbook: str | None = None,
    statuses: Sequence[tuple[str, str]] | None = None,
    history_runs: int = HISTORY_RUNS,
) -> Portfolio:
    """The latest run of `playbook` (default: the playbook of the newest run) and its past.

    `statuses`: the playbook's `(label, color)` thresholds, highest first, when known.
    """
    if playbook is None:
        newest = store.runs(limit=1)
        if not newest:
            raise NoHistoryError(f"no runs in {store.url} yet; `healthscore run` records one")
        playbook = newest[0].playbook
    runs = store.runs(playbook, limit=history_runs)
    if not runs:
        raise NoHistoryError(f"no runs of playbook {playbook!r} in {store.url}")
    latest, previous = runs[0], (runs[1] if len(runs) > 1 else None)
    owners = _owner_names(runs)
    run_ids = [r.id for r in runs if r.id is not None]
    as_of_of = {r.id: r.as_of for r in runs}

    history: dict[str, list[tuple[datetime, float]]] = {}
    before: dict[str, float] = {}
    seen: dict[str, tuple[list[float], str]] = {}  # status -> (scores, color), recent runs
    query = sa.select(
        SNAPSHOTS.c.account_id,
        SNAPSHOTS.c.run_id,
        SNAPSHOTS.c.score,
        SNAPSHOTS.c.status,
        SNAPSHOTS.c.color,
    ).where(SNAPSHOTS.c.run_id.in_(run_ids))
    previous_id = previous.id if previous is not None else None
    with store.engine.connect() as connection:
        for account_id, run_id, score, status, color in connection.execute(query):
            history.setdefault(account_id, []).append((as_of_of[run_id], score))
            seen.setdefault(status, ([], color or ""))[0].append(score)
            if run_id == previous_id:
                before[account_id] = score
        c = SNAPSHOTS.c
        latest_rows = connection.execution_options(yield_per=5_000).execute(
            sa.select(
                c.account_id,
                c.name,
                c.owner_id,
                c.score,
                c.status,
                c.color,
                c.trend,
                c.delta,
                c.previous_status,
                # the points as the stored text: decoded only when read
                sa.cast(c.groups, sa.Text),
                sa.cast(c.rules, sa.Text),
            )
            .where(c.run_id == latest.id)
            .order_by(c.score, c.account_id)
        )  # streamed: each row becomes its view and is let go
        accounts = [
            AccountView(
                account_id,
                name,
                owner_id,
                owners.get(owner_id or "", owner_id or NO_OWNER),
                score,
                status,
                color or "",
                trend,
                delta,
                previous_status,
                round(score - before[account_id], 2) if account_id in before else None,
                groups or "{}",
                rules or "{}",
                sorted(history.pop(account_id, ())),
            )
            for (
                account_id,
                name,
                owner_id,
                score,
                status,
                color,
                trend,
                delta,
                previous_status,
                groups,
                rules,
            ) in latest_rows
        ]
    labels = (
        [StatusLabel(label, color) for label, color in statuses]
        if statuses
        else _statuses_by_score(seen)
    )
    return Portfolio(
        playbook=playbook,
        run=latest,
        previous_run=previous,
        statuses=labels,
        accounts=accounts,
        runs=list(reversed(runs)),
    )


def _owner_names(runs: Sequence[RunInfo]) -> dict[str, str]:
    """Owner names of the newest run that has them, older runs filling gaps."""
    names: dict[str, str] = {}
    for run in reversed(runs):  # oldest first: newer names win
        names.update(run.owners or {})
    return names


def _statuses_by_score(seen: Mapping[str, tuple[list[float], str]]) -> list[StatusLabel]:
    """Statuses of the recent runs, highest average score first (statuses are score bands)."""
    order = sorted(seen, key=lambda label: (-_mean(seen[label][0]), label))
    return [StatusLabel(label, seen[label][1]) for label in order]


def _decoded(text: str | bytes) -> dict[str, Any]:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0
