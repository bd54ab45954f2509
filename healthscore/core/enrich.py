"""Joining warehouse rows onto the accounts (a playbook's `enrich:`), before scoring. No I/O.

Product usage lives in the product's database or warehouse, not in HubSpot. A
source (`healthscore.sources.enrich`) fetches an entry's rows, a query's result
or a .csv/.parquet file, as an `EnrichTable`; `join` puts them onto the
snapshot's accounts, and the engine never knows a value came from elsewhere:

- the key: an account property (`domain`, matched trimmed and case-insensitively
  as `eq` compares text, `values.as_text`) or `hs_object_id` (the record id),
  against one column of the rows; a key seen on two rows is an error (aggregate
  in the query), an empty key never matches;
- every other column becomes an account property, its value a string as HubSpot
  sends them (`cell_string`): the entry owns those columns, so an account with
  no row gets them unset (`unknown`), never a stale copy the CRM may hold;
- rows that match no account and accounts that match no row are counted
  (`EnrichCounts`) for the run summary, not dropped silently.

The layout of docs/playbook.md, section "Enrichment".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.frame import CrmFrame, ObjectFrame
from healthscore.core.playbook.model import RECORD_ID, Enrichment
from healthscore.core.values import as_text
from healthscore.errors import SourceError

SAMPLE_KEYS = 5
"""How many unmatched keys a summary names, to help find a mismatch (`ACME.com ` vs `acme.com`)."""


@dataclass(frozen=True)
class EnrichTable:
    """The rows of one `enrich:` entry as fetched: column names and rows of raw values.

    `origin` names where they came from for `explain` and the summary:
    `enrich:usage (postgresql)`, `enrich:usage (usage.csv)`.
    """

    entry: Enrichment
    origin: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    where: str = ""  # `playbook.yaml:12` for errors


@dataclass(frozen=True)
class EnrichCounts:
    """What one entry's join did: rows read, rows that found an account, and which accounts."""

    name: str
    origin: str
    rows: int
    matched_rows: int
    unmatched_keys: tuple[str, ...] = ()  # the first SAMPLE_KEYS keys that found no account
    matched_accounts: frozenset[str] = frozenset()  # account ids that got a row

    @property
    def unmatched_rows(self) -> int:
        return self.rows - self.matched_rows

    def unmatched_accounts(self, account_ids: Iterable[str]) -> int:
        """Of `account_ids` (e.g. the scored ones), how many got no row."""
        return sum(1 for i in set(account_ids) if i not in self.matched_accounts)


@dataclass
class Enriched:
    """A snapshot with the joined columns, per entry counts, and each column's origin."""

    snapshot: CrmSnapshot
    counts: list[EnrichCounts] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # property -> `enrich:usage (...)`


def cell_string(value: Any) -> str | None:
    """A database or file value as HubSpot would send a property: a string, or None.

    Whole floats lose their `.0` (`12.0` -> "12"); NaN is unset; booleans are
    "true"/"false"; dates and times are ISO 8601 (a time without zone is UTC to
    `values.as_timestamp`); Decimals keep their digits ("12.50").
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return None if not value.is_finite() else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def join_key(value: Any) -> str | None:
    """The comparable form of a key (trimmed, case-folded text); None when empty."""
    text = cell_string(value)
    if text is None or not text.strip():
        return None
    return as_text(text)


def join(snapshot: CrmSnapshot, account_object: str, tables: Sequence[EnrichTable]) -> Enriched:
    """The snapshot with each table's columns on its accounts (a new snapshot; the input is
    left as it was, e.g. for the CRM cache). Raises `SourceError` (file:line of the entry)
    for a missing key column or a key on two rows."""
    accounts = snapshot.records(account_object)
    added: list[dict[str, str | None]] = [{} for _ in accounts]
    result = Enriched(snapshot)
    for table in tables:
        counts = _join_one(table, accounts, added, result.origins)
        result.counts.append(counts)
    if not tables:
        return result
    enriched = [
        replace(r, properties={**r.properties, **extra})
        for r, extra in zip(accounts, added, strict=True)
    ]
    # only the accounts' columns are rebuilt; every other object, the lists and the
    # custom object schemas are the snapshot's own
    frames = dict(snapshot.frame.objects)
    frames[account_object] = ObjectFrame.from_records(enriched)
    frame = CrmFrame(frames, snapshot.lists, snapshot.schemas)
    result.snapshot = CrmSnapshot(snapshot.owners, frame=frame)
    return result


def _join_one(
    table: EnrichTable,
    accounts: Sequence[CrmRecord],
    added: list[dict[str, str | None]],
    origins: dict[str, str],
) -> EnrichCounts:
    entry = table.entry
    where = f"{table.where}: " if table.where else ""
    key_index = _column_index(table, entry.key_column, where)
    columns = [(i, c) for i, c in enumerate(table.columns) if i != key_index]
    rows: dict[str, Sequence[Any]] = {}
    for row in table.rows:
        key = join_key(row[key_index])
        if key is None:
            continue
        if key in rows:
            raise SourceError(
                f"{where}{entry.label}: two rows have the key {cell_string(row[key_index])!r} "
                f"in column {entry.key_column!r}; return one row per account "
                "(e.g. GROUP BY the key)"
            )
        rows[key] = row
    matched_keys: set[str] = set()
    matched_accounts: set[str] = set()
    for record, extra in zip(accounts, added, strict=True):
        own = (
            record.id
            if entry.key_account == RECORD_ID
            else record.properties.get(entry.key_account)
        )
        key = join_key(own)
        found = rows.get(key) if key is not None else None
        if found is not None:
            matched_keys.add(key or "")
            matched_accounts.add(record.id)
        for index, name in columns:
            extra[name] = cell_string(found[index]) if found is not None else None
    for _, name in columns:
        origins[name] = table.origin
    unmatched = tuple(
        cell_string(row[key_index]) or "" for key, row in rows.items() if key not in matched_keys
    )
    return EnrichCounts(
        name=entry.name,
        origin=table.origin,
        rows=len(table.rows),
        matched_rows=len(matched_keys),
        unmatched_keys=unmatched[:SAMPLE_KEYS],
        matched_accounts=frozenset(matched_accounts),
    )


def _column_index(table: EnrichTable, name: str, where: str) -> int:
    """The key column's position: its exact name, else the one equal ignoring case."""
    if name in table.columns:
        return table.columns.index(name)
    folded = [c.casefold() for c in table.columns]
    if name.casefold() in folded:
        return folded.index(name.casefold())
    raise SourceError(
        f"{where}{table.entry.label}: no column {name!r} (key.column) in {table.origin}; "
        f"the columns are: {', '.join(table.columns) or '(none)'}"
    )
