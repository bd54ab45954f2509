"""CSV source: `--source csv:PATH`, one row per account, every column a property.

This is how outcome tables (a churn export, a Kaggle dataset, a spreadsheet a
CS ops person keeps) reach the engine without a HubSpot portal. Values stay the
strings the file holds, as HubSpot would send them, so scoring parses them the
way the playbook spec says. A file a person exported from Excel often starts
with a UTF-8 byte-order mark and ends lines with CRLF; both are accepted.

Every problem is a `SourceError` naming `file:line`, so the CLI exits 2 with a
message the user can act on instead of a traceback.
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path
from typing import TextIO

from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.sources import SourceError

DEFAULT_ID_COLUMNS = ("id", "hs_object_id", "customerID")
"""Tried in this order (case-insensitively) when `--id-column` is not given; else
the first column. `customerID` is the id column of the IBM telco churn table."""


def load_csv(
    path: Path, *, object_type: str = "companies", id_column: str | None = None
) -> CrmSnapshot:
    """Read `path` into a snapshot holding one `object_type` record per row."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        try:
            return _read(handle, path, object_type, id_column)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path}: not UTF-8 text (byte {exc.start}); export the file as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise SourceError(f"{path}: not a readable CSV file ({exc})") from None


def _read(handle: TextIO, path: Path, object_type: str, id_column: str | None) -> CrmSnapshot:
    reader = csv.reader(handle)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise SourceError(f"{path}:1: empty file; the first line must name the columns")
    columns = [h.strip() for h in header]
    _check_header(path, columns)
    id_index = _id_index(path, columns, id_column)
    records: list[CrmRecord] = []
    first_line: dict[str, int] = {}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num  # a quoted field may span lines
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line (a trailing newline, a separator an editor left)
        if len(row) != len(columns):
            raise SourceError(
                f"{path}:{start}: {len(row)} fields, but the header has {len(columns)}; "
                "check for an unquoted comma or a missing value"
            )
        record_id = row[id_index].strip()
        if not record_id:
            raise SourceError(f"{path}:{start}: empty id in column {columns[id_index]!r}")
        if record_id in first_line:
            raise SourceError(
                f"{path}:{start}: duplicate id {record_id!r} "
                f"(first on line {first_line[record_id]}); ids must be unique"
            )
        first_line[record_id] = start
        records.append(CrmRecord(id=record_id, properties=dict(zip(columns, row, strict=True))))
    return CrmSnapshot(owners=[], objects={object_type: records})


def _check_header(path: Path, columns: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(columns, start=1):
        if not name:
            raise SourceError(f"{path}:1: column {index} has no name")
        if name in seen:
            raise SourceError(f"{path}:1: column {name!r} appears twice")
        seen.add(name)


def _id_index(path: Path, columns: list[str], id_column: str | None) -> int:
    if id_column is not None:
        if id_column in columns:
            return columns.index(id_column)
        folded = [c.casefold() for c in columns]
        close = difflib.get_close_matches(id_column.casefold(), folded, n=3, cutoff=0.6)
        hint = (
            " (did you mean " + " or ".join(repr(columns[folded.index(c)]) for c in close) + "?)"
            if close
            else ""
        )
        raise SourceError(
            f"{path}:1: no id column {id_column!r}{hint}; the columns are: {', '.join(columns)}"
        )
    folded = [c.casefold() for c in columns]
    for candidate in DEFAULT_ID_COLUMNS:
        if candidate.casefold() in folded:
            return folded.index(candidate.casefold())
    return 0
