"""The history tables (SQLModel). The schema itself is owned by the Alembic migrations.

Datetimes are stored as naive UTC on every backend (SQLite has no time zones),
and turned back into aware UTC by the store. `as_of` and `playbook` are copied
onto every account snapshot so that "the newest score of each account at or
before a date" is one indexed query over one table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"
RUN_CRASHED = "crashed"
"""Left `running` by a process that is gone (killed, lost power): set by the next run."""
RUN_OUTCOMES = (RUN_RUNNING, RUN_SUCCEEDED, RUN_FAILED, RUN_CRASHED)


class Run(SQLModel, table=True):
    """One scoring run of one playbook."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_playbook_as_of", "playbook", "as_of"),)

    id: int | None = Field(default=None, primary_key=True)
    playbook: str = Field(max_length=200)
    content_hash: str = Field(max_length=64)
    as_of: datetime = Field(sa_type=DateTime())
    source: str = Field(max_length=500)
    started_at: datetime = Field(sa_type=DateTime())
    finished_at: datetime | None = Field(default=None, sa_type=DateTime())
    accounts: int = 0
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outcome: str = Field(default=RUN_RUNNING, max_length=20)
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # owner id -> display name at the time of the run (dashboard and digest name CSMs)
    owners: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # the process recording a `running` run (migration 0004): a crashed run is told apart
    # from a live one by whether this process still exists
    host: str | None = Field(default=None, max_length=200)
    pid: int | None = None


class AccountSnapshot(SQLModel, table=True):
    """One account's score in one run, with its comparison to the past."""

    __tablename__ = "account_snapshots"
    __table_args__ = (
        UniqueConstraint("run_id", "account_id", name="uq_account_snapshots_run_account"),
        Index("ix_account_snapshots_latest", "playbook", "account_id", "as_of"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", ondelete="CASCADE")
    playbook: str = Field(max_length=200)
    as_of: datetime = Field(sa_type=DateTime())
    account_id: str = Field(max_length=100)
    name: str = Field(sa_column=Column(Text, nullable=False))  # CRM text: unbounded (0004)
    owner_id: str | None = Field(default=None, max_length=100)
    score: float
    status: str = Field(max_length=200)
    color: str = Field(default="", max_length=50)
    trend: str = Field(max_length=10)
    previous_score: float | None = None
    delta: float | None = None
    previous_status: str | None = Field(default=None, max_length=200)
    groups: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CrmCache(SQLModel, table=True):
    """The last pulled CRM snapshot of a source, the base of the next incremental pull."""

    __tablename__ = "crm_cache"

    source_key: str = Field(primary_key=True, max_length=200)
    pulled_at: datetime = Field(sa_type=DateTime())
    signature: str | None = Field(default=None, max_length=64)
    snapshot: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # columnar (cache.py)
    run_id: int | None = Field(default=None, foreign_key="runs.id", ondelete="SET NULL")
    # What the run's write-back wrote after this pull (`OwnWrites` JSON), or None.
    writes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
