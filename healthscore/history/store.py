"""The history store: open (and migrate) a database, record runs, answer history questions.

SQLite by default (one file in the user's data folder), PostgreSQL for teams;
the same SQL runs on both. Three rules shape the code:

- A run is written in ONE transaction (run row, every account snapshot, the CRM
  cache): a crash, a kill or a full disk leaves the database as it was before
  the run, never half a run that would poison the next trends.
- Every history question is one set query, never one query per account:
  "newest score of each account at or before T" is a window function over the
  `(playbook, account_id, as_of)` index.
- Memory grows with the number of accounts of one run, never with the length
  of the history: results are streamed and reduced to one row per account.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from healthscore.core.playbook import Playbook
from healthscore.core.trends import Baseline, Comparison, PastScore, WindowRange, trigger_windows
from healthscore.core.triggers import window_start
from healthscore.errors import StoreError as _StoreError
from healthscore.history.ledger import PendingAction, insert_pending
from healthscore.history.models import RUN_CRASHED, RUN_OUTCOMES, RUN_RUNNING, SQLModel
from healthscore.history.process import gone, host_name

DB_URL_ENV = "HEALTHSCORE_DB_URL"
DB_PASSWORD_ENV = "HEALTHSCORE_DB_PASSWORD"
"""The database password, kept out of URLs that Prefect records as flow parameters: a URL
with a user and no password gets it from here (`healthscore run` moves it here)."""
MIGRATION_LOCK = 7_331_001  # pg_advisory_xact_lock key: one migrating process at a time
MIGRATION_TRIES = 8
STALE_RUN = timedelta(days=1)
"""A `running` run recorded on another host is taken as crashed after this long."""
MID_WRITE_HOOKS: list[Callable[[int], None]] = []
"""Called inside `record_run`'s open transaction once the first snapshots are inserted,
with the new run id. Empty in production; a crash test's entry script registers one
that kills the process there (`tests/crash_points.py`)."""
INSERT_CHUNK = 2_000
_MIGRATED: set[str] = set()  # URLs already at head in this process: skip Alembic next time

RUNS = SQLModel.metadata.tables["runs"]
SNAPSHOTS = SQLModel.metadata.tables["account_snapshots"]
CACHE = SQLModel.metadata.tables["crm_cache"]


class StoreError(_StoreError):
    """The history database cannot be opened or used (bad URL, unreachable server)."""


class UnknownRunError(StoreError):
    """A run id that is not in the store."""


# ---------------------------------------------------------------- values in and out


@dataclass(frozen=True)
class RunInfo:
    """What the store knows about a run, before and after it is recorded."""

    playbook: str
    content_hash: str
    as_of: datetime
    source: str
    started_at: datetime
    id: int | None = None
    finished_at: datetime | None = None
    accounts: int = 0
    counts: Mapping[str, int] | None = None
    outcome: str = RUN_RUNNING
    message: str | None = None
    owners: Mapping[str, str] | None = None  # owner id -> display name, from the run's pull


@dataclass(frozen=True)
class CacheEntry:
    """The last pulled snapshot of a source (`payload`: the bytes of
    `healthscore.history.cache.pack_snapshot`), when, and what it asked for.

    `signature` is the source's own fingerprint of the requested properties: a
    snapshot pulled for other properties is not a base for an incremental pull.
    """

    source_key: str
    pulled_at: datetime
    payload: bytes
    signature: str | None = None
    writes_json: str | None = None
    """What the write-back wrote after this pull (`OwnWrites` JSON), set by `remember_writes`."""


@dataclass(frozen=True)
class HistoryEntry:
    """One stored score of an account, for `healthscore history` and the dashboard."""

    run_id: int
    playbook: str
    as_of: datetime
    account_id: str
    name: str
    score: float
    status: str
    color: str
    trend: str
    previous_score: float | None
    delta: float | None
    previous_status: str | None
    groups: Mapping[str, float]


# ---------------------------------------------------------------- opening


def data_dir() -> Path:
    """The user's data folder for healthscore, XDG on Linux (like platformdirs)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "healthscore"


def default_db_url() -> str:
    """`HEALTHSCORE_DB_URL`, else SQLite at `<data dir>/history.db`."""
    configured = os.environ.get(DB_URL_ENV, "").strip()
    if configured:
        return configured
    return f"sqlite:///{data_dir() / 'history.db'}"


def store_exists(url: str | None = None) -> bool:
    """False only for a SQLite file that does not exist yet (a dry run must not create it)."""
    parsed = sa.make_url(url or default_db_url())
    if parsed.get_backend_name() != "sqlite":
        return True
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    return Path(database).expanduser().exists()


def open_store(url: str | None = None) -> HistoryStore:
    """Open the history database at `url` (default: `default_db_url()`), migrated to head."""
    url = url or default_db_url()
    try:
        engine = _engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError) as exc:
        raise StoreError(
            f"--db {_safe(url)!r} is not a database URL ({exc}); use e.g. "
            "sqlite:///history.db or postgresql+psycopg://user@host/db"
        ) from None
    existed = store_exists(url)
    try:
        if url not in _MIGRATED or not existed:
            _migrate_serialised(engine)
            _MIGRATED.add(url)
    except (DBAPIError, CommandError) as exc:
        engine.dispose()
        raise database_problem(url, exc) from None
    return HistoryStore(engine)


def database_problem(url: str, exc: BaseException) -> StoreError:
    """One line naming the database and the fix, for the faults a user has to fix.

    Newer schema (Alembic cannot find the revision), read-only file or folder,
    full disk, a damaged file; anything else keeps the driver's message.
    """
    where = _safe(url)
    text = str(getattr(exc, "orig", None) or exc)
    lower = text.lower()
    if isinstance(exc, CommandError) and "can't locate revision" in lower:
        return StoreError(
            f"the history database {where} was written by a newer healthscore ({text}); "
            "upgrade healthscore (pip install -U healthscore) or pass --db for another database"
        )
    if "readonly" in lower or "read-only" in lower or "unable to open database file" in lower:
        return StoreError(
            f"cannot write the history database {where} ({text}): make the file and its folder "
            "writable, or pass --db with a writable location"
        )
    if any(m in lower for m in ("disk is full", "no space left", "disk full", "disk i/o error")):
        return StoreError(
            f"the disk holding the history database {where} is full or failing ({text}): "
            "free space (or check the disk) and run again; nothing of this run was stored"
        )
    if "malformed" in lower or "not a database" in lower or "corrupt" in lower:
        return StoreError(
            f"the history database {where} is damaged ({text}): restore it from a backup, "
            "or move it aside to start a new history"
        )
    return StoreError(f"cannot open the history database {where}: {text}")


def _migrate_serialised(engine: Engine) -> None:
    """Migrate once even when several runs open a fresh database at the same moment.

    PostgreSQL: a transaction-scoped advisory lock, so the second process waits
    and then finds the schema at head (Alembic's DDL is transactional there).
    SQLite: DDL is not transactional through the driver, so a process that
    loses the race ("table ... already exists", "database is locked") waits and
    tries again until the winner has finished.
    """
    for attempt in range(MIGRATION_TRIES):
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                _migrate(connection)
            return
        except DBAPIError as exc:
            text = str(exc.orig).lower()
            racing = "already exists" in text or "locked" in text or "duplicate" in text
            if not racing or attempt + 1 == MIGRATION_TRIES:
                raise
            time.sleep(0.25 * (attempt + 1))


def _engine(url: str) -> Engine:
    parsed = sa.make_url(url)
    password = os.environ.get(DB_PASSWORD_ENV)
    if parsed.username and parsed.password is None and password:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, **JSON_CODEC)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, **JSON_CODEC)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
"""The JSON columns (a run's counts, every snapshot's group and rule points) through
orjson: compact UTF-8, about 5x the standard library's speed on 100k rows a run."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _migrate(connection: Connection) -> None:
    """`alembic upgrade head` on this connection, with the migrations shipped in the package."""
    config = Config()
    location = resources.files("healthscore") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


# ---------------------------------------------------------------- the store


class HistoryStore:
    """Runs and account snapshots of every playbook, plus the CRM cache."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- questions about the past

    def latest_per_account(self, playbook: str, at_or_before: datetime) -> dict[str, PastScore]:
        """The newest stored score of every account at or before a date: one query.

        ```sql
        SELECT account_id, score, status, as_of, run_id FROM (
          SELECT account_id, score, status, as_of, run_id,
                 row_number() OVER (PARTITION BY account_id
                                    ORDER BY as_of DESC, run_id DESC) AS rn
          FROM account_snapshots
          WHERE playbook = :playbook AND as_of <= :cutoff
        ) AS ranked WHERE rn = 1
        ```
        """
        ranked = (
            sa.select(
                SNAPSHOTS.c.account_id,
                SNAPSHOTS.c.score,
                SNAPSHOTS.c.status,
                SNAPSHOTS.c.as_of,
                SNAPSHOTS.c.run_id,
                sa.func.row_number()
                .over(
                    partition_by=SNAPSHOTS.c.account_id,
                    order_by=(SNAPSHOTS.c.as_of.desc(), SNAPSHOTS.c.run_id.desc()),
                )
                .label("rn"),
            )
            .where(SNAPSHOTS.c.playbook == playbook, SNAPSHOTS.c.as_of <= _naive(at_or_before))
            .subquery("ranked")
        )
        query = sa.select(
            ranked.c.account_id, ranked.c.score, ranked.c.status, ranked.c.as_of, ranked.c.run_id
        ).where(ranked.c.rn == 1)
        return {
            row.account_id: PastScore(row.score, row.status, _aware(row.as_of), row.run_id)
            for row in self._stream(query)
        }

    def score_ranges(
        self, playbook: str, since: datetime, until: datetime
    ) -> dict[str, WindowRange]:
        """Highest and lowest stored score of every account with an as-of in [since, until]."""
        query = (
            sa.select(
                SNAPSHOTS.c.account_id,
                sa.func.max(SNAPSHOTS.c.score).label("high"),
                sa.func.min(SNAPSHOTS.c.score).label("low"),
            )
            .where(
                SNAPSHOTS.c.playbook == playbook,
                SNAPSHOTS.c.as_of >= _naive(since),
                SNAPSHOTS.c.as_of <= _naive(until),
            )
            .group_by(SNAPSHOTS.c.account_id)
        )
        return {row.account_id: WindowRange(row.high, row.low) for row in self._stream(query)}

    def baseline(self, playbook: Playbook, as_of: datetime) -> Baseline:
        """Everything `trends.compare` needs, in 2 + (one per trigger window) queries."""
        return Baseline(
            previous=self.latest_per_account(
                playbook.name, as_of - timedelta(days=playbook.trend.compare_days)
            ),
            last_run=self.latest_per_account(playbook.name, as_of),
            windows={
                days: self.score_ranges(
                    playbook.name, window_start(as_of, days, playbook.timezone), as_of
                )
                for days in trigger_windows(playbook)
            },
        )

    def account_history(
        self, account_id: str, playbook: str | None = None, limit: int = 20
    ) -> list[HistoryEntry]:
        """An account's stored scores, newest first."""
        query = sa.select(SNAPSHOTS).where(SNAPSHOTS.c.account_id == account_id)
        if playbook is not None:
            query = query.where(SNAPSHOTS.c.playbook == playbook)
        query = query.order_by(SNAPSHOTS.c.as_of.desc(), SNAPSHOTS.c.run_id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_history_entry(row) for row in connection.execute(query)]

    def runs(self, playbook: str | None = None, limit: int = 20) -> list[RunInfo]:
        """Recorded runs, newest as-of first."""
        query = sa.select(RUNS)
        if playbook is not None:
            query = query.where(RUNS.c.playbook == playbook)
        query = query.order_by(RUNS.c.as_of.desc(), RUNS.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_run_info(row) for row in connection.execute(query)]

    def run(self, run_id: int) -> RunInfo:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).first()
        if row is None:
            raise UnknownRunError(f"no run with id {run_id}")
        return _run_info(row)

    def snapshot_count(self, run_id: int | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(SNAPSHOTS)
        if run_id is not None:
            query = query.where(SNAPSHOTS.c.run_id == run_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    # -- the CRM cache

    def load_cache(self, source_key: str) -> CacheEntry | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(CACHE).where(CACHE.c.source_key == source_key)
            ).first()
        if row is None:
            return None
        return CacheEntry(
            row.source_key, _aware(row.pulled_at), bytes(row.snapshot), row.signature, row.writes
        )

    def remember_writes(
        self,
        source_key: str,
        run_id: int,
        writes_json: str,
        merge: Callable[[str, str], str] | None = None,
    ) -> bool:
        """Keep what run `run_id`'s write-back wrote with the cache that run stored.

        Only on that run's own cache row: when a later run has stored its cache
        since, its pull already saw these writes. `merge(held, new)`: how to join
        writes already kept for the same pull (another playbook of a shared pull
        wrote too; `_upsert_cache` keeps them when the same pull is stored again);
        without it they are replaced. Returns whether a row was updated.
        """
        where = (CACHE.c.source_key == source_key, CACHE.c.run_id == run_id)
        with self.engine.begin() as connection:
            if merge is not None:
                held = connection.execute(sa.select(CACHE.c.writes).where(*where)).scalar()
                if held:
                    writes_json = merge(held, writes_json)
            updated = connection.execute(sa.update(CACHE).where(*where).values(writes=writes_json))
        return bool(updated.rowcount)

    # -- writing

    def record_run(
        self,
        run: RunInfo,
        comparisons: Sequence[Comparison],
        cache: CacheEntry | None = None,
        actions: Sequence[PendingAction] = (),
    ) -> int:
        """Write the run, its account snapshots and the CRM cache in one transaction.

        The run is recorded as `running`; `finish_run` sets the outcome once the
        write-back and the actions are done. Returns the new run id. `actions`:
        the run's due playbook actions, recorded `pending` in the action ledger
        in the same transaction (an outbox: see `healthscore.history.ledger`).
        """
        counts: dict[str, int] = dict(run.counts or {})
        if not counts:
            for c in comparisons:
                counts[c.status] = counts.get(c.status, 0) + 1
        as_of = _naive(run.as_of)
        try:
            with self.engine.begin() as connection:
                return self._record(connection, run, as_of, counts, comparisons, cache, actions)
        except sa.exc.OperationalError as exc:  # the database's trouble, not the data's
            raise database_problem(self.url, exc) from None

    def _record(
        self,
        connection: Connection,
        run: RunInfo,
        as_of: datetime,
        counts: dict[str, int],
        comparisons: Sequence[Comparison],
        cache: CacheEntry | None,
        actions: Sequence[PendingAction],
    ) -> int:
        mark_crashed(connection, run.playbook)
        run_id = connection.execute(
            sa.insert(RUNS)
            .values(
                playbook=run.playbook,
                content_hash=run.content_hash,
                as_of=as_of,
                source=run.source,
                started_at=_naive(run.started_at),
                finished_at=None,
                accounts=len(comparisons),
                counts=counts,
                outcome=RUN_RUNNING,
                message=None,
                owners=dict(run.owners) if run.owners is not None else None,
                host=host_name(),
                pid=os.getpid(),
            )
            .returning(RUNS.c.id)
        ).scalar_one()
        rows = (_snapshot_row(run_id, run.playbook, as_of, c) for c in comparisons)
        for number, chunk in enumerate(_chunks(rows, INSERT_CHUNK)):
            connection.execute(sa.insert(SNAPSHOTS), chunk)
            if number == 0:
                for hook in MID_WRITE_HOOKS:
                    hook(int(run_id))
        if cache is not None:
            _upsert_cache(connection, cache, int(run_id))
        insert_pending(connection, int(run_id), actions)
        return int(run_id)

    def newest_as_of(self, playbook: str) -> datetime | None:
        """The latest as-of of any stored run of the playbook (None: no run yet)."""
        query = sa.select(sa.func.max(RUNS.c.as_of)).where(RUNS.c.playbook == playbook)
        with self.engine.connect() as connection:
            newest = connection.execute(query).scalar_one_or_none()
        return _aware(newest) if newest is not None else None

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        message: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Set a recorded run's outcome (succeeded or failed) and finish time."""
        if outcome not in RUN_OUTCOMES:
            raise ValueError(f"outcome must be one of {RUN_OUTCOMES}, not {outcome!r}")
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(RUNS)
                .where(RUNS.c.id == run_id)
                .values(
                    outcome=outcome,
                    message=message,
                    finished_at=_naive(finished_at or datetime.now(UTC)),
                )
            )
        if result.rowcount == 0:
            raise UnknownRunError(f"no run with id {run_id}")

    def _stream(self, query: sa.Select[Any]) -> Iterator[Any]:
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=5_000).execute(
                query
            )
            yield from result


# ---------------------------------------------------------------- helpers


def mark_crashed(connection: Connection, playbook: str) -> int:
    """Mark the playbook's runs left `running` by a process that is gone as `crashed`.

    Gone: recorded on this host by a pid that no longer exists, or started more
    than `STALE_RUN` ago (another host, or a run from before migration 0004).
    A live concurrent run is left alone. Returns how many were marked.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = connection.execute(
        sa.select(RUNS.c.id, RUNS.c.host, RUNS.c.pid, RUNS.c.started_at).where(
            RUNS.c.playbook == playbook, RUNS.c.outcome == RUN_RUNNING
        )
    ).all()
    crashed = [
        row.id
        for row in rows
        if gone(row.host, row.pid) or _naive(row.started_at) < now - STALE_RUN
    ]
    if crashed:
        connection.execute(
            sa.update(RUNS)
            .where(RUNS.c.id.in_(crashed), RUNS.c.outcome == RUN_RUNNING)
            .values(
                outcome=RUN_CRASHED,
                finished_at=now,
                message="the process running it stopped (killed or crashed) before it finished",
            )
        )
    return len(crashed)


def _upsert_cache(connection: Connection, cache: CacheEntry, run_id: int) -> None:
    """Insert or replace a source's cached snapshot in one statement (no delete+insert race)."""
    values = {
        "source_key": cache.source_key,
        "pulled_at": _naive(cache.pulled_at),
        "signature": cache.signature,
        "snapshot": cache.payload,
        "run_id": run_id,
        "writes": None,  # this pull saw every earlier write; the run's own come later
    }
    insert: Any = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(CACHE)
    update = {k: v for k, v in values.items() if k not in ("source_key", "writes")}
    # The same pull stored again (the next playbook of a shared pull): the writes made
    # since it by the playbooks before stay; any other pull saw them, so they go.
    update["writes"] = sa.case(
        (CACHE.c.pulled_at == insert.excluded.pulled_at, CACHE.c.writes), else_=sa.null()
    )
    connection.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=[CACHE.c.source_key], set_=update
        )
    )


def _naive(moment: datetime) -> datetime:
    """Naive UTC: what every backend stores and compares the same way."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _snapshot_row(run_id: int, playbook: str, as_of: datetime, c: Comparison) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "playbook": playbook,
        "as_of": as_of,
        "account_id": c.score.id,
        "name": c.score.name,
        "owner_id": c.score.owner_id,
        "score": c.rounded,
        "status": c.score.status,
        "color": c.score.color,
        "trend": c.trend,
        "previous_score": c.previous,
        "delta": c.delta,
        "previous_status": c.previous_status,
        "groups": c.score.group_points(),
        "rules": c.score.rule_points(),
    }


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _history_entry(row: Any) -> HistoryEntry:
    return HistoryEntry(
        run_id=row.run_id,
        playbook=row.playbook,
        as_of=_aware(row.as_of),
        account_id=row.account_id,
        name=row.name,
        score=row.score,
        status=row.status,
        color=row.color,
        trend=row.trend,
        previous_score=row.previous_score,
        delta=row.delta,
        previous_status=row.previous_status,
        groups=dict(row.groups or {}),
    )


def _run_info(row: Any) -> RunInfo:
    return RunInfo(
        id=row.id,
        playbook=row.playbook,
        content_hash=row.content_hash,
        as_of=_aware(row.as_of),
        source=row.source,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at) if row.finished_at else None,
        accounts=row.accounts,
        counts=dict(row.counts or {}),
        outcome=row.outcome,
        message=row.message,
        owners=dict(row.owners) if row.owners is not None else None,
    )
