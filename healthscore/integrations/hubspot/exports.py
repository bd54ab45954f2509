"""Every account's associations in one CRM export instead of a batch read per 1,000.

HubSpot sends no signal when an association is created or removed (neither
record's `hs_lastmodifieddate` moves), so an exact incremental pull must read
every account's associations on every run. The v4 batch read takes 1,000 ids a
call (developer changelog "Batch Read Limit for HubSpot Associations API",
2025-02-10): T types x ceil(A / 1,000) calls, 40 at 10,000 companies and 4
types, 400 at 100,000, far more than the rest of a daily run. One export of the
account type with its associated record ids costs a handful of calls whatever
the portal's size:

    POST /crm/v3/exports/export/async                      start   1 call
    GET  /crm/v3/exports/export/async/tasks/{id}/status    poll    1+ calls
    GET  <result URL>                                      file    1 call

(Spec: HubSpot/HubSpot-public-api-spec-collection, `PublicApiSpecs/CRM/Exports/
Rollouts/95922/v3/exports.json`; hubspot-api-client `hubspot/crm/exports/api/
public_exports_api.py`.) The export starts before the pull's other reads and
is polled only when its edges are needed, so HubSpot prepares it meanwhile.

The file: one row per record of the exported type, `Record ID` first, and per
associated type a column `Associated <Type> IDs` holding the ids joined by `;`
(HubSpot's knowledge base, "Export your records"; with
`overrideAssociatedObjectsPerDefinitionPerRowLimit` every id, not the first
1,000: changelog "Large Export Partitioning and Association Limits for the CRM
Export API", 2025-04-28). Past a million rows the file is a ZIP of CSV parts
(same changelog). The export's file format is not in the OpenAPI spec, so the
file is checked before it is trusted: a missing column, an unreadable file, a
refused or failed export, or one not ready within `EXPORT_WAIT` makes the pull
read those associations with the v4 batch endpoint instead (`ExportUnusable`,
its reason goes in the run summary). So does HubSpot's limit of 30 exports in a
rolling 24 hours (Exports guide, "Limits") and a token without `crm.export`.

Labels are not in the file (`includeLabeledAssociations` has no published
format): a type whose association labels a playbook reads keeps the v4 read,
which carries them (`associationTypes[].label`).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from healthscore.errors import VendorError
from healthscore.integrations import describe_error

EXPORT_NAMES = {
    "companies": "COMPANY",
    "contacts": "CONTACT",
    "deals": "DEAL",
    "tickets": "TICKET",
    "meetings": "MEETING",
    "calls": "CALL",
    "emails": "EMAIL",
    "notes": "NOTE",
    "tasks": "TASK",
}
"""The object types an export names (`objectType`, `associatedObjectType`): HubSpot's
standard objects by name, as the Exports guide writes them. Custom objects keep the
v4 read (their column heading would be their label, which a schema change renames)."""

REFUSALS = {
    403: "; exports need the token scope crm.export",
    429: "; HubSpot allows 30 exports in a rolling 24 hours",
}
"""What a refused export start most likely means, after HubSpot's status."""

ID_COLUMN = "Record ID"
EXPORT_CALLS = 3  # start, one status poll, the file: what an export costs at the least
EXPORT_WAIT = 15 * 60.0  # s an export may take before the pull reads associations itself
POLL_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # s between status polls, then the last
_EDGE_SCHEMA = {"id": pl.String, "to": pl.String}
_BOM = b"\xef\xbb\xbf"  # a spreadsheet-friendly CSV may start with one


class ExportUnusable(VendorError):
    """The export cannot stand in for the association read; the message says why."""


def worth_exporting(types: Sequence[str], accounts: int, batch: int) -> bool:
    """Whether one export costs fewer calls than the v4 batch read of `types` for
    `accounts` accounts at `batch` ids a call."""
    return len(types) * -(-accounts // batch) > EXPORT_CALLS


def column(object_type: str) -> str:
    """The file's column of a type's associated ids: `Associated Contact IDs`."""
    return f"Associated {EXPORT_NAMES[object_type].title()} IDs"


@dataclass
class AssociationExport:
    """One export of `account_type` with the ids of its `types` associations.

    `call(function, *args)` makes one counted, rate-limited client call and
    returns HubSpot's JSON; `download(url)` one counted GET of a file.
    """

    account_type: str
    types: list[str]
    task_id: str
    call: Callable[..., Any]
    download: Callable[[str], bytes]
    progress: Callable[[str], None] | None = None
    wait: float = EXPORT_WAIT  # s the export may take before `ExportUnusable`
    started: float = 0.0
    polls: int = 0
    _edges: dict[str, pl.DataFrame] | None = None

    @classmethod
    def start(
        cls,
        start: Callable[[dict[str, Any]], Any],
        account_type: str,
        types: Sequence[str],
        **kwargs: Any,
    ) -> AssociationExport:
        """Ask HubSpot for the export (`start` sends the request body, answers its
        JSON `TaskLocator`). Raises `ExportUnusable` when HubSpot refuses it."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        body = {  # PublicExportViewRequest
            "exportType": "VIEW",
            "format": "CSV",
            "exportName": f"healthscore associations {stamp}",
            "language": "EN",
            "objectType": EXPORT_NAMES[account_type],
            "objectProperties": ["hs_object_id"],
            "associatedObjectType": [EXPORT_NAMES[kind] for kind in types],
            "exportInternalValuesOptions": ["NAMES", "VALUES"],
            "includeLabeledAssociations": False,
            "includePrimaryDisplayPropertyForAssociatedObjects": False,
            "overrideAssociatedObjectsPerDefinitionPerRowLimit": True,
        }
        try:
            located = start(body)
        except Exception as exc:
            hint = REFUSALS.get(getattr(exc, "status", None) or 0, "")
            why = describe_error(exc)
            raise ExportUnusable(f"HubSpot refused the export ({why}{hint})") from None
        task_id = located.get("id") if isinstance(located, Mapping) else None
        if not task_id:
            raise ExportUnusable("HubSpot's answer to the export named no task id")
        return cls(account_type, list(types), str(task_id), started=time.monotonic(), **kwargs)

    def edges(self, object_type: str, accounts: Iterable[str]) -> pl.DataFrame:
        """`object_type`'s associations of the exported accounts that are in `accounts`:
        `id` (the associated record), `to` (the account), each pair once, ordered by
        account as the file lists them. Waits for the export the first time; each
        type is given once (its table is let go). Raises `ExportUnusable`."""
        if self._edges is None:
            self._edges = self._read(self._wait())
        edges = self._edges.pop(object_type)
        wanted = pl.Series("to", list(accounts), dtype=pl.String)
        return edges.filter(pl.col("to").is_in(wanted.implode()))

    def exported_ids(self) -> set[str]:
        """The accounts the file lists (read after `edges`)."""
        if self._edges is None:
            return set()
        return set(self._edges[ID_COLUMN].get_column("to").to_list())

    def _wait(self) -> str:
        """Poll the export's status until it is COMPLETE; its file's URL."""
        pauses = iter(POLL_PAUSES)
        pause = POLL_PAUSES[0]
        while True:
            status = self.call(self.task_id)
            self.polls += 1
            state = str((status or {}).get("status") or "")
            if state == "COMPLETE":
                url = status.get("result")
                if not url:
                    raise ExportUnusable("the export is COMPLETE but names no file")
                return str(url)
            if state not in ("PENDING", "PROCESSING"):
                raise ExportUnusable(f"the export ended {state or 'without a status'}")
            waited = time.monotonic() - self.started
            if waited >= self.wait:
                raise ExportUnusable(f"the export was not ready after {self.wait:g} s")
            if self.progress:
                self.progress(f"waiting for HubSpot's export ({state.lower()})")
            pause = next(pauses, pause)
            time.sleep(min(pause, max(0.0, self.wait - waited)))

    def _read(self, url: str) -> dict[str, pl.DataFrame]:
        try:
            data = self.download(url)
        except Exception as exc:
            why = describe_error(exc)
            raise ExportUnusable(f"the export file could not be read ({why})") from None
        return read_file(data, self.types)


def read_file(data: bytes, types: Sequence[str]) -> dict[str, pl.DataFrame]:
    """The edges of each of `types` in an export file (CSV, or a ZIP of CSV parts), and
    under `ID_COLUMN` every listed account (`to`). Raises `ExportUnusable`."""
    try:
        parts = _csv_parts(data)
        wanted = [ID_COLUMN, *(column(kind) for kind in types)]
        frames = []
        for part in parts:
            table = pl.read_csv(part, infer_schema=False, encoding="utf8")
            absent = [name for name in wanted if name not in table.columns]
            if absent:
                raise ExportUnusable(f"the export file has no column {absent[0]!r}")
            frames.append(table.select(wanted))
    except ExportUnusable:
        raise
    except Exception as exc:
        why = describe_error(exc)
        raise ExportUnusable(f"the export file is not a readable CSV ({why})") from None
    table = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(schema={name: pl.String for name in [ID_COLUMN, *map(column, types)]})
    )
    accounts = table.get_column(ID_COLUMN).str.strip_chars()
    out = {ID_COLUMN: pl.DataFrame({"id": accounts, "to": accounts}, schema=_EDGE_SCHEMA)}
    for kind in types:
        out[kind] = (
            table.select(
                pl.col(column(kind)).str.split(";").alias("id"),
                accounts.alias("to"),
            )
            .explode("id", empty_as_null=True)
            .with_columns(pl.col("id").str.strip_chars())
            .filter(pl.col("id").is_not_null() & (pl.col("id") != ""))
            .unique(maintain_order=True)
        )
    return out


def _csv_parts(data: bytes) -> list[io.BytesIO]:
    """The CSV files of an export: the file itself, or a ZIP's CSV members in name order."""
    if not data.startswith(b"PK\x03\x04"):
        return [io.BytesIO(data.removeprefix(_BOM))]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(
            (n for n in archive.namelist() if n.lower().endswith(".csv")), key=_part_order
        )
        if not names:
            raise ExportUnusable("the export ZIP holds no CSV file")
        return [io.BytesIO(archive.read(name).removeprefix(_BOM)) for name in names]


def _part_order(name: str) -> tuple[int, str]:
    """`export-2.csv` before `export-10.csv`: by the part's number, then by name."""
    digits = re.findall(r"\d+", name)
    return (int(digits[-1]) if digits else 0, name)
