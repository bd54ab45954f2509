"""The action ledger: a transactional outbox of playbook actions, one row per occurrence.

Why an outbox: a Slack message or a Jira issue cannot be rolled back, so the
decision "this action is due" is committed first, together with the run's
snapshots (`insert_pending` runs inside `HistoryStore.record_run`'s
transaction), and the sending happens after, row by row. The UNIQUE key
(playbook, action, account, occurrence) makes a re-run of the same as-of insert
nothing new; a row leaves `pending`/`failed` only by being sent.

States: `pending` (recorded, never tried), `attempting` (claimed: a vendor call
may be in flight or may have happened before a crash), `sent`, `failed` (the
last attempt raised; retried on the next run). A row that was ever attempted
is reconciled with the vendor before it is sent again (see
`healthscore.actions.dispatch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from healthscore.errors import HealthscoreError

PENDING = "pending"
ATTEMPTING = "attempting"
SENT = "sent"
FAILED = "failed"
LEDGER_STATES = (PENDING, ATTEMPTING, SENT, FAILED)
ERROR_LIMIT = 2_000


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
    target: str = Field(max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_id: str | None = Field(default=None, max_length=500)
    external: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=DateTime())
    updated_at: datetime = Field(sa_type=DateTime())
    attempted_at: datetime | None = Field(default=None, sa_type=DateTime())
    sent_at: datetime | None = Field(default=None, sa_type=DateTime())


LEDGER = SQLModel.metadata.tables["action_ledger"]


class LedgerError(HealthscoreError, RuntimeError):
    """The ledger was asked for something it does not hold (an unknown state or row)."""


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

    @property
    def key(self) -> str:
        return ledger_key(self.playbook, self.action, self.account_id, self.occurrence)


def ledger_key(playbook: str, action: str, account_id: str, occurrence: str) -> str:
    """The idempotency key as text: what vendors are tagged with to find our own writes."""
    return f"{playbook}|{action}|{account_id}|{occurrence}"


def now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


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
            "target": a.target[:500],
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

    def due(self, playbook: str) -> list[LedgerEntry]:
        """Every row of the playbook not yet sent (pending, attempting, failed), oldest first."""
        query = (
            sa.select(LEDGER)
            .where(LEDGER.c.playbook == playbook, LEDGER.c.state != SENT)
            .order_by(LEDGER.c.id)
        )
        with self.engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

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

    def claim(self, entry: LedgerEntry) -> LedgerEntry | None:
        """Move a row to `attempting` (attempts + 1) if nobody changed it since it was read.

        The compare-and-set on (state, attempts) means two dispatchers running at
        once cannot both send the same row: the second one's claim updates nothing.
        """
        now = now_naive()
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(LEDGER)
                .where(
                    LEDGER.c.id == entry.id,
                    LEDGER.c.state == entry.state,
                    LEDGER.c.attempts == entry.attempts,
                )
                .values(
                    state=ATTEMPTING,
                    attempts=entry.attempts + 1,
                    attempted_at=now,
                    updated_at=now,
                )
            )
        if result.rowcount != 1:
            return None
        return LedgerEntry(
            **{
                **entry.__dict__,
                "state": ATTEMPTING,
                "attempts": entry.attempts + 1,
                "attempted_at": _aware(now),
                "updated_at": _aware(now),
            }
        )

    def mark_sent(
        self, entry_id: int, external_id: str | None, external: Mapping[str, Any] | None
    ) -> None:
        now = now_naive()
        self._update(
            entry_id,
            state=SENT,
            external_id=(external_id or "")[:500] or None,
            external=dict(external) if external is not None else None,
            last_error=None,
            sent_at=now,
            updated_at=now,
        )

    def mark_failed(self, entry_id: int, error: str) -> None:
        self._update(entry_id, state=FAILED, last_error=error[:ERROR_LIMIT], updated_at=now_naive())

    def _update(self, entry_id: int, **values: Any) -> None:
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(LEDGER).where(LEDGER.c.id == entry_id).values(**values)
            )
        if result.rowcount != 1:
            raise LedgerError(f"no ledger row with id {entry_id}")


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
