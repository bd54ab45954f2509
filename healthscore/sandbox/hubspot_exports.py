"""HubSpot's CRM Exports API v3 at HubSpot's own paths and shapes.

Spec: HubSpot/HubSpot-public-api-spec-collection,
`PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json` (scope `crm.export`):

- `POST /crm/v3/exports/export/async` starts a VIEW or LIST export (202 TaskLocator);
- `GET /crm/v3/exports/export/async/tasks/{taskId}/status` says PROCESSING, then
  COMPLETE with `result`, the URL of the file;
- `GET /crm/v3/exports/export/{exportId}` describes the export (PublicExportResponse).

The file is made **when the export starts**: a snapshot of the CRM at that moment,
which later writes do not change. It is served, with no credentials, at
`/hubfs/exports/<id>.csv` (or `.zip`) on the sandbox's own base URL, outside the
`/crm/` paths, like HubSpot's pre-signed file links: downloads are counted in
`/_sandbox/stats` but are not rate limited.

File format (CSV only, UTF-8, `csv` module quoting, `\\r\\n` line ends): a header row,
then one row per live record of the object type in ascending numeric id order.
Columns: `Record ID`; one per `objectProperties` entry (headed by the property's
label, or its internal name when `exportInternalValuesOptions` holds `NAMES`;
values as stored); then per associated object type, in request order,
`Associated <Singular> IDs` (the live associated ids in the v4 association read's
order, `;`-joined, at most `ASSOCIATIONS_PER_ROW` unless
`overrideAssociatedObjectsPerDefinitionPerRowLimit`) and, with
`includePrimaryDisplayPropertyForAssociatedObjects`, `Associated <Singular>` (their
primary display values, `;`-joined in the same order). More rows than
`SandboxState.export_partition_rows`: a ZIP of `<exportName>-<n>.csv` files, each
with the header row.

Limits: `SandboxState.export_daily_limit` exports per rolling 24 hours (HubSpot's
Exports guide, "Limits": 30), then 429 RATE_LIMITS; the per-row association limit
and the partitioning follow HubSpot's changelog "Breaking Change: Large Export
Partitioning and Association Limits for the CRM Export API" (effective 2025-04-28).
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import hubspot_search as search
from .hubspot import HubSpotError, _json, _list_or_404, _not_found, _validation
from .state import SINGULAR, HsExport, HsObject, HubSpotState, SandboxState
from .timefmt import hubspot_iso, utc_now

SPEC = "PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json"
EXPORT_DAILY_LIMIT = 30
"""HubSpot's Exports guide, "Limits": 30 exports in a rolling 24-hour window."""
EXPORT_WINDOW_SECONDS = 24 * 60 * 60
EXPORT_PARTITION_ROWS = 1_000_000
"""Changelog "Large Export Partitioning and Association Limits for the CRM Export API":
an export of more rows is delivered as a ZIP of files of at most this many rows."""
ASSOCIATIONS_PER_ROW = 1_000
"""Same changelog: at most 1,000 associated records per association type per row, unless
`overrideAssociatedObjectsPerDefinitionPerRowLimit` is true."""
FILE_BASE = "/hubfs/exports"

EXPORT_TYPES = ("VIEW", "LIST")
FORMATS = ("CSV", "XLS", "XLSX")
VALUE_OPTIONS = ("NAMES", "VALUES")
LANGUAGES = frozenset(
    (
        *("AF_ZA", "AR_EG", "BG", "BN", "CA_ES", "CS", "DA_DK", "DE", "EL_GR", "EN", "EN_GB"),
        *("ES", "ES_MX", "ET_EE", "FI", "FR", "FR_CA", "HE_IL", "HI_IN", "HR", "HU", "ID"),
        *("IT", "JA", "KO_KR", "LT_LT", "MS", "NL", "NO", "PL", "PT_BR", "PT_PT", "RO", "RU"),
        *("SK_SK", "SL", "SV", "TH", "TL", "TR", "UK", "VI_VN", "ZH_CN", "ZH_HK", "ZH_TW"),
    )
)
"""`language` of PublicExportViewRequest / PublicExportListRequest."""
_FLAGS = (
    "includeLabeledAssociations",
    "includePrimaryDisplayPropertyForAssociatedObjects",
    "overrideAssociatedObjectsPerDefinitionPerRowLimit",
)

# The property HubSpot shows a record by, per standard object type.
PRIMARY_DISPLAY = {
    "companies": "name",
    "deals": "dealname",
    "tickets": "subject",
    "meetings": "hs_meeting_title",
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "tasks": "hs_task_subject",
    "notes": "hs_note_body",
}


@dataclass(frozen=True)
class ExportRequest:
    """A checked PublicExportViewRequest / PublicExportListRequest."""

    name: str
    export_type: str
    object_type: str  # the sandbox's own name (`companies`, `p12345678_subs`)
    requested_type: str  # as the request named it
    properties: list[str]
    associated: list[str]
    names: bool  # headers are internal names
    display: bool
    override_limit: bool
    list_id: str | None
    groups: list[list[Mapping[str, Any]]]  # OR of ANDs; empty: every record
    query: str


# ---------------------------------------------------------------- validation


def _field_error(field: str, message: str, value: Any = None) -> HubSpotError:
    """400 VALIDATION_ERROR naming `field` in the message, `context` and `errors[].in`."""
    shown = message if value is None else str(value)
    return _validation(
        message,
        context={field: [shown]},
        extra={"errors": [{"message": message, "in": field}]},
    )


def _string(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _field_error(field, f"Invalid input JSON: {field} is required and must be a string")
    return value


def _flag(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _field_error(field, f"Invalid input JSON: {field} must be true or false", value)
    return value


def _resolve(hs: HubSpotState, field: str, name: Any) -> str:
    resolved = hs.resolve_type(name) if isinstance(name, str) and name.strip() else None
    if resolved is None:
        raise _field_error(field, f"Unknown object type in {field}: {name}", name)
    return resolved


def _search_groups(hs: HubSpotState, body: Mapping[str, Any]) -> tuple[list[Any], str]:
    """`publicCrmSearchRequest` as filter groups (top-level `filters` AND each group)."""
    request = body.get("publicCrmSearchRequest")
    if request is None:
        return [], ""
    field = "publicCrmSearchRequest"
    if not isinstance(request, Mapping):
        raise _field_error(field, f"Invalid input JSON: {field} must be an object")
    filters = request.get("filters") or []
    groups = request.get("filterGroups") or []
    if not isinstance(filters, list) or not isinstance(groups, list):
        raise _field_error(field, f"Invalid input JSON: {field}.filters and filterGroups are lists")
    checked: list[list[Mapping[str, Any]]] = []
    for where, group in [
        *((f"{field}.filterGroups[{i}]", g) for i, g in enumerate(groups)),
        (f"{field}.filters", {"filters": filters}),
    ]:
        entries = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(entries, list) or not all(isinstance(f, Mapping) for f in entries):
            raise _field_error(where, f"Invalid input JSON: {where} needs a list of filters")
        for flt in entries:
            problem = search.filter_error(flt)
            if problem:
                raise _field_error(where, f"{where}: {problem}")
        checked.append(list(entries))
    too_much = search.limits_error([{"filters": g} for g in checked], request.get("query"))
    if too_much:
        raise _field_error(field, f"{field}: {too_much}")
    top = checked.pop()
    if not checked:  # no filterGroups: the top-level filters are the one group, if any
        checked = [[]] if top else []
    return [[*top, *g] for g in checked], str(request.get("query") or "").strip().lower()


def parse_request(hs: HubSpotState, body: Any) -> ExportRequest:
    """Check a start request as HubSpot does: 400 naming the field, 404 for a missing list."""
    if not isinstance(body, Mapping):
        raise _validation("Invalid input JSON: the export request must be a JSON object")
    export_type = body.get("exportType")
    if export_type not in EXPORT_TYPES:
        raise _field_error(
            "exportType", f"exportType must be one of VIEW, LIST (got {export_type})", export_type
        )
    fmt = body.get("format")
    if fmt not in FORMATS:
        raise _field_error("format", f"format must be one of CSV, XLS, XLSX (got {fmt})", fmt)
    if fmt != "CSV":
        raise _field_error(
            "format",
            f"format {fmt} is not supported: the sandbox writes CSV only; ask for format CSV",
            fmt,
        )
    name = _string(body, "exportName")
    requested_type = _string(body, "objectType")
    object_type = _resolve(hs, "objectType", requested_type)
    language = _string(body, "language")
    if language not in LANGUAGES:
        raise _field_error("language", f"Unknown language: {language}", language)
    raw_props = body.get("objectProperties")
    if (
        not isinstance(raw_props, list)
        or not raw_props
        or not all(isinstance(p, str) and p for p in raw_props)
    ):
        raise _field_error(
            "objectProperties",
            "Invalid input JSON: objectProperties is required: a non-empty list of property names",
        )
    defined = hs.properties.get(object_type, {})
    unknown = [p for p in raw_props if p not in defined or defined[p].get("archived")]
    if unknown:
        raise _field_error(
            "objectProperties",
            f"objectProperties: {', '.join(unknown)} "
            f"{'is not a property' if len(unknown) == 1 else 'are not properties'} "
            f"of {requested_type}",
            ", ".join(unknown),
        )
    raw_assoc = body.get("associatedObjectType")
    if raw_assoc is None:
        raw_assoc = []
    elif isinstance(raw_assoc, str):  # older clients send one name
        raw_assoc = [raw_assoc]
    if not isinstance(raw_assoc, list):
        raise _field_error(
            "associatedObjectType", "associatedObjectType must be a list of object types"
        )
    associated = list(dict.fromkeys(_resolve(hs, "associatedObjectType", a) for a in raw_assoc))
    options = body.get("exportInternalValuesOptions") or []
    if not isinstance(options, list) or any(o not in VALUE_OPTIONS for o in options):
        raise _field_error(
            "exportInternalValuesOptions",
            "exportInternalValuesOptions may hold NAMES and VALUES only",
            options,
        )
    flags = {f: _flag(body, f) for f in _FLAGS}
    list_id: str | None = None
    if export_type == "LIST":
        raw_list = body.get("listId")
        if raw_list in (None, ""):
            raise _field_error("listId", "Invalid input JSON: listId is required for a LIST export")
        list_id = str(raw_list)
        lst = _list_or_404(hs, list_id)
        if hs.resolve_type(lst.object_type_id) != object_type:
            raise _field_error(
                "listId",
                f"listId {list_id} is a list of {lst.object_type_id} records, "
                f"not of {requested_type}",
                list_id,
            )
        groups: list[list[Mapping[str, Any]]] = []
        query = ""
    else:
        groups, query = _search_groups(hs, body)
    return ExportRequest(
        name=name,
        export_type=str(export_type),
        object_type=object_type,
        requested_type=requested_type,
        properties=list(dict.fromkeys(raw_props)),
        associated=associated,
        names="NAMES" in options,
        display=flags["includePrimaryDisplayPropertyForAssociatedObjects"],
        override_limit=flags["overrideAssociatedObjectsPerDefinitionPerRowLimit"],
        list_id=list_id,
        groups=groups,
        query=query,
    )


# ---------------------------------------------------------------- the file


def _id_order(record_id: str) -> tuple[int, int, str]:
    """Ascending numeric ids; ids that are not numbers after them, as text."""
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


def _singular(hs: HubSpotState, object_type: str) -> str:
    if object_type in SINGULAR:
        return SINGULAR[object_type].title()
    schema = hs.schemas.get(object_type)
    if schema:
        return str((schema.get("labels") or {}).get("singular") or schema["name"].title())
    return object_type.title()


def _display_values(hs: HubSpotState, object_type: str) -> dict[str, str]:
    """Record id -> its primary display value (contacts: first and last name, else email)."""
    objects = hs.objects.get(object_type, {})
    if object_type == "contacts":
        out: dict[str, str] = {}
        for record_id, obj in objects.items():
            p = obj.properties
            full = f"{p.get('firstname') or ''} {p.get('lastname') or ''}".strip()
            out[record_id] = full or p.get("email") or ""
        return out
    schema = hs.schemas.get(object_type)
    prop = PRIMARY_DISPLAY.get(object_type) or (schema or {}).get("primaryDisplayProperty")
    if not prop:
        return {}
    return {record_id: obj.properties.get(prop) or "" for record_id, obj in objects.items()}


def _rows_of(hs: HubSpotState, request: ExportRequest) -> list[HsObject]:
    """The live records the export holds, in ascending id order."""
    records = hs.objects.get(request.object_type, {})
    if request.list_id is not None:
        members = hs.lists[request.list_id].members
        candidates: Iterable[HsObject | None] = (records.get(i) for i in members)
    else:
        candidates = records.values()
    live = [o for o in candidates if o is not None and not o.archived]
    if request.groups or request.query:
        live = [o for o in live if _matches(hs, request, o)]
    live.sort(key=lambda o: _id_order(o.id))
    return live


def _matches(hs: HubSpotState, request: ExportRequest, obj: HsObject) -> bool:
    """The CRM search's filter matcher (`hubspot_search.matches`), as search applies it."""
    defined = hs.properties.get(request.object_type, {})

    def lookup(name: str) -> str | list[str] | None:
        if name.startswith("associations."):
            to_type = hs.resolve_type(name.split(".", 1)[1])
            return hs.associated(request.object_type, obj.id, to_type) if to_type else []
        if name == "hs_object_id":
            return obj.id
        return obj.properties.get(name)

    if request.groups and not any(
        all(
            search.matches(f, lookup, defined.get(f["propertyName"], {}).get("type")) for f in group
        )
        for group in request.groups
    ):
        return False
    return not request.query or any(
        request.query in (v or "").lower() for v in obj.properties.values()
    )


def header_row(hs: HubSpotState, request: ExportRequest) -> list[str]:
    defined = hs.properties.get(request.object_type, {})
    header = ["Record ID"]
    for name in request.properties:
        if name != "hs_object_id":
            header.append(name if request.names else str(defined[name].get("label") or name))
    for to_type in request.associated:
        singular = _singular(hs, to_type)
        header.append(f"Associated {singular} IDs")
        if request.display:
            header.append(f"Associated {singular}")
    return header


def _row_writer(hs: HubSpotState, request: ExportRequest) -> Callable[[HsObject], list[str | None]]:
    """A function making one record's row, reading the state's tables directly."""
    props = [p for p in request.properties if p != "hs_object_id"]
    limit = None if request.override_limit else ASSOCIATIONS_PER_ROW
    plans: list[tuple[dict[str, list[str]], frozenset[str], dict[str, str] | None]] = []
    for to_type in request.associated:
        edges = hs.associations.get((request.object_type, to_type), {})
        archived = frozenset(i for i, o in hs.objects.get(to_type, {}).items() if o.archived)
        plans.append((edges, archived, _display_values(hs, to_type) if request.display else None))

    def row(obj: HsObject) -> list[str | None]:
        values = obj.properties
        out: list[str | None] = [obj.id, *(values.get(name) for name in props)]
        for edges, archived, display in plans:
            # `HubSpotState.associate` keeps each id once, in the v4 read's order.
            ids = edges.get(obj.id) or []
            if archived:
                ids = [i for i in ids if i not in archived]
            if limit is not None and len(ids) > limit:
                ids = ids[:limit]
            out.append(";".join(ids))
            if display is not None:
                out.append(";".join([display.get(i, "") for i in ids]))
        return out

    return row


def _safe_name(name: str) -> str:
    return "".join("_" if c in '/\\:*?"<>|' or ord(c) < 32 else c for c in name).strip() or "export"


def build_file(
    hs: HubSpotState, request: ExportRequest, partition_rows: int
) -> tuple[bytes, int, bool]:
    """(file bytes, data rows, zipped): the CSV, or a ZIP of CSVs past `partition_rows`."""
    records = _rows_of(hs, request)
    header = header_row(hs, request)
    row = _row_writer(hs, request)
    size = max(1, partition_rows)
    parts: list[bytes] = []
    for start in range(0, max(len(records), 1), size):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(row(obj) for obj in records[start : start + size])
        parts.append(buffer.getvalue().encode("utf-8"))
    if len(records) <= size:
        return parts[0], len(records), False
    out = io.BytesIO()
    base = _safe_name(request.name)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, part in enumerate(parts, start=1):
            archive.writestr(f"{base}-{n}.csv", part)
    return out.getvalue(), len(records), True


# ---------------------------------------------------------------- handlers


def _sandbox(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _spend_daily_slot(hs: HubSpotState, limit: int) -> None:
    """Count one export start in the rolling 24 hours, or refuse it with HubSpot's 429."""
    now = time.monotonic()
    starts = hs.export_starts
    while starts and now - starts[0] >= EXPORT_WINDOW_SECONDS:
        starts.popleft()
    if len(starts) >= limit:
        raise HubSpotError(
            429,
            f"You have reached the daily export limit: at most {limit} exports can be "
            "started in a rolling 24-hour window.",
            "RATE_LIMITS",
            context={"limit": [str(limit)]},
        )
    starts.append(now)


async def start_export(request: Request) -> Response:
    """`POST /crm/v3/exports/export/async`: start an export; 202 TaskLocator.

    Spec: `PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json`
    (PublicExportViewRequest | PublicExportListRequest -> 202 TaskLocator, scope
    `crm.export`). The rows are taken now: the file is built before the answer, on
    the event loop with no await in between, so later CRM writes never reach it (100,000
    companies with 2 million associations take about 2 s). Unknown keys are ignored; a
    bad field is a 400 naming it; a LIST export's missing list a 404; past
    `export_daily_limit` exports in 24 hours a 429 RATE_LIMITS (refused requests do not
    count).
    """
    sandbox = _sandbox(request)
    hs = sandbox.hubspot
    export = parse_request(hs, await _json(request))
    _spend_daily_slot(hs, sandbox.export_daily_limit)
    data, count, zipped = build_file(hs, export, sandbox.export_partition_rows)
    export_id = str(next(hs.next_export_id))
    seconds = max(0.0, float(sandbox.export_seconds))
    extension = "zip" if zipped else "csv"
    hs.exports[export_id] = HsExport(
        export_id=export_id,
        name=export.name,
        export_type=export.export_type,
        object_type=export.requested_type,
        object_properties=export.properties,
        record_count=count,
        requested_at=utc_now(),
        seconds=seconds,
        ready_at=time.monotonic() + seconds,
        data=data,
        file_name=f"{export_id}.{extension}",
        download_name=f"{_safe_name(export.name)}.{extension}",
        media_type="application/zip" if zipped else "text/csv; charset=utf-8",
    )
    status = f"{_base(request)}/crm/v3/exports/export/async/tasks/{export_id}/status"
    return JSONResponse({"id": export_id, "links": {"status": status}}, status_code=202)


def _export_or_404(hs: HubSpotState, raw: str, what: str) -> HsExport:
    if not raw.isdigit():
        raise _validation(f"Unable to parse {what}: {raw} is not an integer", context={what: [raw]})
    found = hs.exports.get(str(int(raw)))
    if found is None:
        raise _not_found(f"No export found for {what} {raw}")
    return found


def _ready(export: HsExport) -> bool:
    return time.monotonic() >= export.ready_at


def _completed_at(export: HsExport) -> datetime:
    return export.requested_at + timedelta(seconds=export.seconds)


async def export_status(request: Request) -> Response:
    """`GET /crm/v3/exports/export/async/tasks/{taskId}/status`: PROCESSING, then COMPLETE.

    Spec: `PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json`
    (ActionResponseWithSingleResultURI, 200; scope `crm.export`). COMPLETE carries
    `result`, the file's URL on the sandbox's base URL. `completedAt` is required by
    the spec (and by hubspot-api-client's model), so a PROCESSING answer gives the
    moment the export will be ready. An unknown task: 404.
    """
    hs = _sandbox(request).hubspot
    export = _export_or_404(hs, request.path_params["taskId"], "taskId")
    started = hubspot_iso(export.requested_at)
    body: dict[str, Any] = {
        "status": "COMPLETE" if _ready(export) else "PROCESSING",
        "requestedAt": started,
        "startedAt": started,
        "completedAt": hubspot_iso(_completed_at(export)),
        "numErrors": 0,
        "links": {},
    }
    if _ready(export):
        body["result"] = f"{_base(request)}{FILE_BASE}/{export.file_name}"
    return JSONResponse(body)


async def get_export(request: Request) -> Response:
    """`GET /crm/v3/exports/export/{exportId}`: PublicExportResponse; unknown: 404.

    Spec: `PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json` (scope
    `crm.export`). `exportState` is PROCESSING until the file is ready, then DONE.
    """
    hs = _sandbox(request).hubspot
    export = _export_or_404(hs, request.path_params["exportId"], "exportId")
    ready = _ready(export)
    created = hubspot_iso(export.requested_at)
    return JSONResponse(
        {
            "id": export.export_id,
            "exportName": export.name,
            "exportType": export.export_type,
            "objectType": export.object_type,
            "objectProperties": export.object_properties,
            "exportState": "DONE" if ready else "PROCESSING",
            "recordCount": export.record_count,
            "createdAt": created,
            "updatedAt": hubspot_iso(_completed_at(export)) if ready else created,
        }
    )


async def export_file(request: Request) -> Response:
    """`GET /hubfs/exports/{fileName}`: the file the COMPLETE status' `result` links to.

    Spec: `PublicApiSpecs/CRM/Exports/Rollouts/95922/v3/exports.json`
    (ActionResponseWithSingleResultURI.result: "The URL of the resulting file"). No
    credentials, like HubSpot's file links; readable as often as wanted. Before the
    export is COMPLETE, or for an unknown file: 404.
    """
    hs = _sandbox(request).hubspot
    name = request.path_params["fileName"]
    export = hs.exports.get(name.split(".", 1)[0])
    if export is None or export.file_name != name or not _ready(export):
        raise _not_found(f"No export file {name}")
    plain = export.download_name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    disposition = (
        f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(export.download_name)}"
    )
    return Response(
        export.data, media_type=export.media_type, headers={"Content-Disposition": disposition}
    )


def is_file_path(path: str) -> bool:
    """Whether `path` is an export file's URL (counted in stats, never rate limited)."""
    return path.startswith(FILE_BASE + "/")


def routes() -> list[BaseRoute]:
    base = "/crm/v3/exports/export"
    return [
        Route(base + "/async", start_export, methods=["POST"]),
        Route(base + "/async/tasks/{taskId}/status", export_status, methods=["GET"]),
        Route(base + "/{exportId}", get_export, methods=["GET"]),
        Route(FILE_BASE + "/{fileName}", export_file, methods=["GET"]),
    ]
