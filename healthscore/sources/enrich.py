"""Fetching a playbook's `enrich:` entries: a SQL query through SQLAlchemy, or a file.

The rows are joined onto the accounts by `healthscore.core.enrich.join`, which
stays pure; this is the I/O half. A query runs on the database named by the
entry's `url_env` (an environment variable; the Prefect flow also looks up the
Secret block of the same name, `tasks.enrich`) or its password-free `url`, any
database SQLAlchemy has a driver for (PostgreSQL through psycopg, SQLite built in;
Snowflake, BigQuery... with their SQLAlchemy dialect installed). A file is CSV
(read as text, every value as written) or Parquet (typed, converted to
HubSpot-style strings), with polars, relative to the playbook's folder.

Every problem is a `SourceError` naming the playbook's
`file:line` of the entry, so the CLI exits 2 with a message to act on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from healthscore.core.crm import CrmSnapshot
from healthscore.core.enrich import Enriched, EnrichTable, join
from healthscore.core.playbook import Playbook
from healthscore.core.playbook.model import Enrichment
from healthscore.errors import SourceError

SecretLookup = Callable[[str], str | None]
"""An environment variable name -> its value (or None): `os.environ.get`, or one that
also reads a Prefect Secret block."""


def secret_block_name(env: str) -> str:
    """The Prefect Secret block read when `env` is unset: `WAREHOUSE_URL` -> `warehouse-url`."""
    return env.lower().replace("_", "-")


def enrich(
    snapshot: CrmSnapshot, playbook: Playbook, *, secret: SecretLookup = os.environ.get
) -> Enriched:
    """The snapshot with every `enrich:` entry of the playbook joined onto its accounts."""
    tables = [fetch(entry, playbook, secret=secret) for entry in playbook.enrich]
    return join(snapshot, playbook.object, tables)


def fetch(
    entry: Enrichment,
    playbook: Playbook,
    *,
    secret: SecretLookup = os.environ.get,
    columns_only: bool = False,
) -> EnrichTable:
    """One entry's rows: its query's result, or its file's rows.

    `columns_only`: the columns and no rows (the setup check's question): the query
    runs, but its rows are not fetched; a file's header (or Parquet schema) is read.
    """
    where = f"{playbook.path or '<playbook>'}:{entry.line}"
    if entry.file is not None:
        return _read_file(entry, _file_path(entry.file, playbook), where, columns_only)
    return _run_query(entry, _database_url(entry, where, secret), where, columns_only)


def _database_url(entry: Enrichment, where: str, secret: SecretLookup) -> str:
    if entry.url is not None:
        return entry.url
    env = entry.url_env or ""
    url = (secret(env) or "").strip()
    if not url:
        raise SourceError(
            f"{where}: {entry.label}: the environment variable {env} is not set; "
            f"export {env}=postgresql+psycopg://user:password@host/db (or, for scheduled "
            f"runs, a Prefect Secret block named {secret_block_name(env)!r})"
        )
    return url


def _run_query(entry: Enrichment, url: str, where: str, columns_only: bool = False) -> EnrichTable:
    import sqlalchemy
    import sqlalchemy.exc

    try:
        engine = sqlalchemy.create_engine(url)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as exc:
        raise SourceError(
            f"{where}: {entry.label}: not a usable database URL ({exc}); use a SQLAlchemy "
            "URL such as postgresql+psycopg://user@host/db or sqlite:///usage.db"
        ) from None
    origin = f"{entry.label} ({engine.dialect.name})"
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        try:
            connection = engine.raw_connection()
        except (sqlalchemy.exc.DBAPIError, driver_error) as exc:
            raise SourceError(f"{where}: cannot connect to {origin}: {_first_line(exc)}") from None
        try:
            # the driver's own cursor, no parameters: `%`, `::date` and `:name` in the SQL
            # mean what they mean to the database (SQLAlchemy would read them as placeholders)
            cursor = connection.cursor()
            cursor.execute(entry.query or "")
            if not cursor.description:
                raise SourceError(f"{where}: {origin}: the query returns no rows (a SELECT?)")
            columns = tuple(str(d[0]) for d in cursor.description)
            rows = [] if columns_only else [tuple(row) for row in cursor.fetchall()]
        except driver_error as exc:
            raise SourceError(f"{where}: {origin}: the query failed: {_first_line(exc)}") from None
        finally:
            connection.close()
    finally:
        engine.dispose()
    return EnrichTable(entry, origin, columns, rows, where)


def _first_line(exc: BaseException) -> str:
    """The driver's message, first line (psycopg adds the statement and a caret below)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _file_path(file: str, playbook: Playbook) -> Path:
    path = Path(file).expanduser()
    if not path.is_absolute() and playbook.path:
        path = Path(playbook.path).parent / path
    return path


def _read_file(
    entry: Enrichment, path: Path, where: str, columns_only: bool = False
) -> EnrichTable:
    import polars as pl

    origin = f"{entry.label} ({path.name})"
    if not path.is_file():
        raise SourceError(f"{where}: {entry.label}: no such file {path}")
    try:
        rows = 0 if columns_only else None
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path, n_rows=rows)
        else:  # text as written: "007" stays "007", as a HubSpot property would
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", n_rows=rows)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{where}: {entry.label}: cannot read {path}: {exc}") from None
    return EnrichTable(entry, origin, tuple(frame.columns), frame.rows(), where)
