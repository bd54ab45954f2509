"""The action ledger: a transactional outbox of playbook actions, one row per occurrence.

Why an outbox: a Slack message or a Jira issue cannot be rolled back, so the
decision "this action is due" is committed first, together with the run's
snapshots (`insert_pending` runs inside `HistoryStore.record_run`'s
transaction), and the sending happens after: rows are claimed and their
outcomes written a batch at a time (`claim_many`, `record`), one transaction per
batch. The UNIQUE key (playbook, action, account, occurrence) makes a re-run of
the same as-of insert nothing new; a row leaves `pending`/`failed` only by being
sent.

States: `pending` (recorded, never tried), `attempting` (claimed: a vendor call
may be in flight or may have happened before a crash), `sent`, `failed` (the
last attempt raised; retried once `next_attempt_at` has passed), `dead` (failed
`RetryPolicy.max_attempts` times: never tried again, listed by
`healthscore actions --state dead`). A row that was ever attempted is
reconciled with the vendor before it is sent again (see
`healthscore.actions.dispatch`).

Leases: a claim names its process (`claimed_by`, "host:pid") and lasts until
`lease_until`. Another run leaves an `attempting` row alone while its claim
holds, so two live runs never both send (or reconcile too early) the same row;
the claim is void once it expires or, on the same host, once its process is
gone (a kill -9 in the middle of a send).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from healthscore.errors import HealthscoreError
from healthscore.history.process import claim_gone, this_process

PENDING = "pending"
ATTEMPTING = "attempting"
SENT = "sent"
FAILED = "failed"
DEAD = "dead"
LEDGER_STATES = (PENDING, ATTEMPTING, SENT, FAILED, DEAD)
ERROR_LIMIT = 2_000
CHUNK = 500  # ids per IN (...): under SQLite's and PostgreSQL's bound-parameter limits


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failing row is tried again.

    `max_attempts`: after this many failed attempts the row is `dead`.
    `backoff_seconds`: the wait after the first failure, doubled after each
    further one (300 s: 5, 10, 20, 40 minutes), capped at `max_backoff_seconds`.
    `lease_seconds`: how long a claim holds against another host's run; it must
    outlast one send with the clients' timeouts and read retries (about a minute).
    """

    max_attempts: int = 5
    backoff_seconds: float = 300.0
    max_backoff_seconds: float = 86_400.0
    lease_seconds: float = 600.0

    def retry_at(self, attempts: int, now: datetime) -> datetime:
        """When a row that has failed `attempts` times (>= 1) may be tried again."""
        delay = min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.max_backoff_seconds)
        return now + timedelta(seconds=delay)

    def refusal(self, entry: LedgerEntry, error: str) -> Refused:
        """A claimed row's failed attempt: back off, or `dead` at the attempt cap."""
        dead = entry.attempts >= self.max_attempts
        retry_at = None if dead else self.retry_at(entry.attempts, now_naive())
        return Refused(entry.id, error, retry_at, dead)


@dataclass(frozen=True)
class Delivered:
    """A claimed row the vendor accepted (or an earlier attempt's write was found)."""

    entry_id: int
    external_id: str | None
    external: Mapping[str, Any] | None


@dataclass(frozen=True)
class Refused:
    """A claimed row whose attempt failed: `failed` until `retry_at` (None: the next run),
    or `dead` (never tried again)."""

    entry_id: int
    error: str
    retry_at: datetime | None = None
    dead: bool = False


class ActionLedgerRow(SQLModel, table=True):
    """One due action of one account for one trigger occurrence (migration 0003)."""

    __tablename__ = "action_ledger"
    __table_args__ = (
        UniqueConstraint(
            "playbook", "action", "account_id", "occurrence", name="uq_action_ledger_occurrence"
        ),
        Index("ix_action_ledger_state", "playbook", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    playbook: str = Field(max_length=200)
    action: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    account_id: str = Field(max_length=100)
    occurrence: str = Field(max_length=100)
    run_id: int | None = Field(default=None, foreign_key="runs.id", ondelete="SET NULL")
    as_of: datetime = Field(sa_type=DateTime())
    state: str = Field(default=PENDING, max_length=20)
    attempts: int = 0
    reason: str = Field(sa_column=Column(Text, nullable=False))
    target: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    external: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=DateTime())
    updated_at: datetime = Field(sa_type=DateTime())
    attempted_at: datetime | None = Field(default=None, sa_type=DateTime())
    sent_at: datetime | None = Field(default=None, sa_type=DateTime())
    # migration 0004: the claim of an `attempting` row and the backoff of a `failed` one
    lease_until: datetime | None = Field(default=None, sa_type=DateTime())
    claimed_by: str | None = Field(default=None, max_length=200)
    next_attempt_at: datetime | None = Field(default=None, sa_type=DateTime())


LEDGER = SQLModel.metadata.tables["action_ledger"]


class LedgerError(HealthscoreError, RuntimeError):
    """The ledger was asked for something it does not hold (an unknown state or row)."""


@dataclass
class ActionCounts:
    """What a dispatch did with the action ledger: `Dispatcher.run`'s answer and the run
    summary's `actions` (`run --json`), one type for both.

    `sent`: delivered now; `reconciled`: found already delivered (a lost answer);
    `failed`: tried and failed, retried after a backoff; `dead`: failed at the
    attempt cap this run, never tried again; `skipped`: another live run holds
    the claim; `removed`: list members removed by `sync: true`; `dead_total`: every
    dead row of the playbook in the ledger after this run, this run's and earlier
    ones (they stay until someone acts on them, so a later run that killed nothing
    still reports them, and exits 0: only what failed or died this run is a new
    problem). Other steps may add their own counts (e.g. `held`) in `extra`.
    `problems` is true when a user should look (failed or dead rows): the CLI
    exits 1 and the Prefect flow run ends `ActionsFailed`.
    """

    sent: int = 0
    reconciled: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    removed: int = 0
    dead_total: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> bool:
        return self.failed > 0 or self.dead > 0

    def to_json(self) -> dict[str, int]:
        """The run summary's `actions` object: every count, `extra`'s flattened in."""
        counts = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**counts, **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionCounts:
        """The counts a `to_json` object was made from (unknown integer keys: `extra`)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        counts = {k: int(v) for k, v in data.items() if k in known}
        extra = {k: int(v) for k, v in data.items() if k not in known and isinstance(v, int)}
        return cls(**counts, extra=extra)

    def describe(self) -> str:
        """One line for the terminal and the markdown report, e.g. `3 sent, 1 failed, 2 dead`."""
        parts = [
            f"{n} {label}"
            for label, n in (
                ("sent", self.sent),
                ("already delivered", self.reconciled),
                ("failed (retried later)", self.failed),
                ("dead (gave up)", self.dead),
                ("left to another run", self.skipped),
                ("removed from lists", self.removed),
                ("dead in the ledger", self.dead_total),
                *sorted(self.extra.items()),
            )
            if n or label in ("sent", "failed (retried later)", "dead (gave up)")
        ]
        return ", ".join(parts)


@dataclass(frozen=True)
class PendingAction:
    """A due action as the planner hands it to the store: rendered, ready to send."""

    playbook: str
    action: str
    kind: str
    account_id: str
    occurrence: str
    as_of: datetime
    reason: str
    target: str
    payload: Mapping[str, Any]

    @property
    def key(self) -> str:
        return ledger_key(self.playbook, self.action, self.account_id, self.occurrence)


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row, read back."""

    id: int
    playbook: str
    action: str
    kind: str
    account_id: str
    occurrence: str
    run_id: int | None
    as_of: datetime
    state: str
    attempts: int
    reason: str
    target: str
    payload: Mapping[str, Any]
    external_id: str | None
    external: Mapping[str, Any] | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempted_at: datetime | None
    sent_at: datetime | None
    lease_until: datetime | None = None
    claimed_by: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def key(self) -> str:
        return ledger_key(self.playbook, self.action, self.account_id, self.occurrence)

    def claim_held(self, now: datetime) -> bool:
        """True while another run's claim on this `attempting` row holds (see the module doc)."""
        lease = _aware(self.lease_until)
        if self.state != ATTEMPTING or lease is None:
            return False  # rows claimed before migration 0004 carry no lease: free
        return _utc(now) < lease and not claim_gone(self.claimed_by)

    def waiting(self, now: datetime) -> bool:
        """True while a `failed` row's backoff runs."""
        wait = _aware(self.next_attempt_at)
        return self.state == FAILED and wait is not None and _utc(now) < wait


def ledger_key(playbook: str, action: str, account_id: str, occurrence: str) -> str:
    """The idempotency key as text: what vendors are tagged with to find our own writes."""
    return f"{playbook}|{action}|{account_id}|{occurrence}"


def now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (what the database holds)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_pending(
    connection: Connection, run_id: int | None, actions: Sequence[PendingAction]
) -> int:
    """Insert the due actions as `pending`, skipping occurrences already in the ledger.

    Runs on the caller's connection, so inside the run's transaction: either the
    run and its due actions are both recorded, or neither is. Returns the number
    of new rows.
    """
    if not actions:
        return 0
    now = now_naive()
    rows = [
        {
            "playbook": a.playbook,
            "action": a.action,
            "kind": a.kind,
            "account_id": a.account_id,
            "occurrence": a.occurrence,
            "run_id": run_id,
            "as_of": _naive(a.as_of),
            "state": PENDING,
            "attempts": 0,
            "reason": a.reason,
            "target": a.target,
            "payload": dict(a.payload),
            "created_at": now,
            "updated_at": now,
        }
        for a in actions
    ]
    dialect = connection.dialect.name
    inserted = 0
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(LEDGER).on_conflict_do_nothing(
                constraint="uq_action_ledger_occurrence"
            )
        elif dialect == "sqlite":
            statement = sqlite.insert(LEDGER).on_conflict_do_nothing()
        else:  # pragma: no cover - the store supports SQLite and PostgreSQL only
            raise LedgerError(f"the action ledger does not support {dialect}")
        result = connection.execute(statement, chunk)
        inserted += max(result.rowcount or 0, 0)
    return inserted


class ActionLedger:
    """Reads and state changes of the ledger; each change is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def due(self, playbook: str, now: datetime | None = None) -> list[LedgerEntry]:
        """The rows of the playbook to try now, oldest first.

        Pending rows; failed rows whose backoff has passed; attempting rows whose
        claim no longer holds. Not sent or dead rows, not a live run's claims.
        """
        moment = _utc(now) if now is not None else datetime.now(UTC)
        query = (
            sa.select(LEDGER)
            .where(LEDGER.c.playbook == playbook, LEDGER.c.state.in_((PENDING, ATTEMPTING, FAILED)))
            .order_by(LEDGER.c.id)
        )
        with self.engine.connect() as connection:
            rows = [_entry(row) for row in connection.execute(query)]
        return [r for r in rows if not r.claim_held(moment) and not r.waiting(moment)]

    def counts(self, playbook: str) -> dict[str, int]:
        """Rows of the playbook per state (every state present, zeros included)."""
        query = (
            sa.select(LEDGER.c.state, sa.func.count())
            .where(LEDGER.c.playbook == playbook)
            .group_by(LEDGER.c.state)
        )
        found = dict.fromkeys(LEDGER_STATES, 0)
        with self.engine.connect() as connection:
            for state, count in connection.execute(query):
                found[state] = int(count)
        return found

    def entries(
        self,
        playbook: str | None = None,
        state: str | None = None,
        account_id: str | None = None,
        limit: int = 100,
    ) -> list[LedgerEntry]:
        """Rows for `healthscore actions`, newest first."""
        query = sa.select(LEDGER).where(*_filters(playbook, state, account_id))
        query = query.order_by(LEDGER.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def count(
        self, playbook: str | None = None, state: str | None = None, account_id: str | None = None
    ) -> int:
        """How many rows `entries` would list without a limit ("showing 50 of 478")."""
        query = sa.select(sa.func.count()).select_from(LEDGER)
        query = query.where(*_filters(playbook, state, account_id))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def recorded(
        self, playbook: str, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], str]:
        """State of each (action, account, occurrence) already in the ledger (for dry runs)."""
        wanted = set(keys)
        if not wanted:
            return {}
        accounts = sorted({account for _, account, _ in wanted})
        found: dict[tuple[str, str, str], str] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(accounts), 500):
                query = sa.select(
                    LEDGER.c.action, LEDGER.c.account_id, LEDGER.c.occurrence, LEDGER.c.state
                ).where(
                    LEDGER.c.playbook == playbook,
                    LEDGER.c.account_id.in_(accounts[start : start + 500]),
                )
                for row in connection.execute(query):
                    key = (row.action, row.account_id, row.occurrence)
                    if key in wanted:
                        found[key] = row.state
        return found

    def claim(
        self, entry: LedgerEntry, lease_seconds: float = RetryPolicy.lease_seconds
    ) -> LedgerEntry | None:
        """`claim_many` of one row: the claimed row, or None when another dispatcher won."""
        claimed = self.claim_many([entry], lease_seconds)
        return claimed[0] if claimed else None

    def claim_many(
        self, entries: Sequence[LedgerEntry], lease_seconds: float = RetryPolicy.lease_seconds
    ) -> list[LedgerEntry]:
        """Move rows to `attempting` (attempts + 1) if nobody changed them since they were read.

        One transaction for the whole batch: one UPDATE per (state, attempts) pair
        read, each a compare-and-set on those two columns (`WHERE id IN (...) AND
        state = ? AND attempts = ?`), so two dispatchers running at once cannot
        both claim a row: the second one's UPDATE matches nothing for it. The
        claim names this process and holds for `lease_seconds`. Returns the rows
        this call claimed, in the order given; the others were taken by someone else.
        """
        if not entries:
            return []
        now = now_naive()
        lease_until = now + timedelta(seconds=lease_seconds)
        claimant = this_process()
        groups: dict[tuple[str, int], list[int]] = {}
        for entry in entries:
            groups.setdefault((entry.state, entry.attempts), []).append(entry.id)
        won: set[int] = set()
        with self.engine.begin() as connection:
            for (state, attempts), ids in groups.items():
                for start in range(0, len(ids), CHUNK):
                    result = connection.execute(
                        sa.update(LEDGER)
                        .where(
                            LEDGER.c.id.in_(ids[start : start + CHUNK]),
                            LEDGER.c.state == state,
                            LEDGER.c.attempts == attempts,
                        )
                        .values(
                            state=ATTEMPTING,
                            attempts=attempts + 1,
                            attempted_at=now,
                            updated_at=now,
                            lease_until=lease_until,
                            claimed_by=claimant,
                        )
                        .returning(LEDGER.c.id)
                    )
                    won.update(row.id for row in result)
        return [
            LedgerEntry(
                **{
                    **entry.__dict__,
                    "state": ATTEMPTING,
                    "attempts": entry.attempts + 1,
                    "attempted_at": _aware(now),
                    "updated_at": _aware(now),
                    "lease_until": _aware(lease_until),
                    "claimed_by": claimant,
                }
            )
            for entry in entries
            if entry.id in won
        ]

    def mark_sent(
        self, entry_id: int, external_id: str | None, external: Mapping[str, Any] | None
    ) -> None:
        self.record([Delivered(entry_id, external_id, external)], [])

    def mark_failed(
        self, entry_id: int, error: str, *, retry_at: datetime | None = None, dead: bool = False
    ) -> None:
        """Record a failed attempt: `failed` (tried again from `retry_at`, None: next run), or
        `dead` (never again). Policy lives in `fail()`; this is the bare state change."""
        self.record([], [Refused(entry_id, error, retry_at, dead)])

    def fail(self, entry: LedgerEntry, error: str, policy: RetryPolicy) -> str:
        """A claimed row's attempt failed: back off, or `dead` at the attempt cap.

        Returns the row's new state (`failed` or `dead`)."""
        refused = policy.refusal(entry, error)
        self.record([], [refused])
        return DEAD if refused.dead else FAILED

    def record(self, delivered: Sequence[Delivered], refused: Sequence[Refused]) -> None:
        """Write the outcomes of claimed rows, all in one transaction (one statement per kind,
        executed for every row): `sent` with the vendor's id, or `failed`/`dead` with the error.

        Raises `LedgerError` (and writes nothing) when a row id is not in the ledger.
        """
        if not delivered and not refused:
            return
        now = now_naive()
        sent_rows = [
            {
                "b_id": d.entry_id,
                "external_id": d.external_id or None,
                "external": dict(d.external) if d.external is not None else None,
            }
            for d in delivered
        ]
        failed_rows = [
            {
                "b_id": r.entry_id,
                "state": DEAD if r.dead else FAILED,
                "last_error": r.error[:ERROR_LIMIT],
                "next_attempt_at": _naive(r.retry_at) if r.retry_at is not None else None,
            }
            for r in refused
        ]
        by_id = LEDGER.c.id == sa.bindparam("b_id")
        with self.engine.begin() as connection:
            wanted = {d.entry_id for d in delivered} | {r.entry_id for r in refused}
            found: set[int] = set()
            listed = sorted(wanted)
            for start in range(0, len(listed), CHUNK):
                query = sa.select(LEDGER.c.id).where(LEDGER.c.id.in_(listed[start : start + CHUNK]))
                found.update(connection.execute(query).scalars())
            if missing := wanted - found:
                raise LedgerError(f"no ledger row with id {min(missing)}")
            if sent_rows:
                connection.execute(
                    sa.update(LEDGER)
                    .where(by_id)
                    .values(
                        state=SENT,
                        last_error=None,
                        sent_at=now,
                        updated_at=now,
                        lease_until=None,
                        next_attempt_at=None,
                    ),
                    sent_rows,
                )
            if failed_rows:
                connection.execute(
                    sa.update(LEDGER).where(by_id).values(updated_at=now, lease_until=None),
                    failed_rows,
                )


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        playbook=row.playbook,
        action=row.action,
        kind=row.kind,
        account_id=row.account_id,
        occurrence=row.occurrence,
        run_id=row.run_id,
        as_of=_aware(row.as_of) or row.as_of,
        state=row.state,
        attempts=row.attempts,
        reason=row.reason,
        target=row.target,
        payload=dict(row.payload or {}),
        external_id=row.external_id,
        external=dict(row.external) if row.external is not None else None,
        last_error=row.last_error,
        created_at=_aware(row.created_at) or row.created_at,
        updated_at=_aware(row.updated_at) or row.updated_at,
        attempted_at=_aware(row.attempted_at),
        sent_at=_aware(row.sent_at),
        lease_until=_aware(row.lease_until),
        claimed_by=row.claimed_by,
        next_attempt_at=_aware(row.next_attempt_at),
    )


def _filters(playbook: str | None, state: str | None, account_id: str | None) -> list[Any]:
    """The WHERE clauses of `entries` and `count`; a state outside LEDGER_STATES is refused."""
    if state is not None and state not in LEDGER_STATES:
        raise LedgerError(f"state must be one of {', '.join(LEDGER_STATES)}, not {state!r}")
    where: list[Any] = []
    if playbook is not None:
        where.append(LEDGER.c.playbook == playbook)
    if state is not None:
        where.append(LEDGER.c.state == state)
    if account_id is not None:
        where.append(LEDGER.c.account_id == account_id)
    return where
