"""The CRM cache: its key, and the columnar form a cached snapshot is stored in.

A cached snapshot only holds the properties its pull asked for, so the key
includes a hash of exactly that request: a playbook edit that needs a new
property, or another playbook on the same portal, gets a full pull instead of
silently missing values.

Stored form (`pack_snapshot`): a ZIP archive (entries stored, not deflated) of
one Parquet file (zstd-compressed columns) per object type, per association
edge table and per association label table, plus `meta.json` with the owners,
the snapshot's lists and custom object schemas, the date of the last full pull
and which file holds what. The snapshot's columns are written as they are held
(`frame.CrmFrame`), never as one JSON document of every record; at 50k companies
the JSON blob was 159 of the history database's 228 MB.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import polars as pl

from healthscore.core.crm import CrmList, CrmSnapshot, Owner
from healthscore.core.frame import CrmFrame, ObjectFrame

CACHE_FORMAT = 2
"""`meta.json`'s `format`: 2 is the columnar form (1 was the JSON blob)."""


def source_cache_key(source: str, location: str, needs: Mapping[str, Iterable[str]]) -> str:
    """`<source>:<sha256 of the address and the requested properties>`, short and stable."""
    request = {kind: sorted(set(props)) for kind, props in sorted(needs.items())}
    digest = hashlib.sha256(
        json.dumps([location, request], sort_keys=True).encode("utf-8")
    ).hexdigest()
    return f"{source}:{digest[:40]}"


def pack_snapshot(snapshot: CrmSnapshot, full_pulled_at: datetime) -> bytes:
    """The snapshot and the date of the last full pull, as the cache stores them."""
    buffer = io.BytesIO()
    objects: list[dict[str, Any]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, (kind, frame) in enumerate(snapshot.frame.objects.items()):
            entry: dict[str, Any] = {
                "type": kind,
                "table": f"{index}.parquet",
                "links": {},
                "labels": {},
            }
            _write(archive, entry["table"], frame.table)
            for part, tables in (("links", frame.links), ("labels", frame.labels)):
                for number, (linked, table) in enumerate(tables.items()):
                    name = f"{index}.{part}.{number}.parquet"
                    _write(archive, name, table)
                    entry[part][linked] = name
            objects.append(entry)
        meta = {
            "format": CACHE_FORMAT,
            "full_pulled_at": full_pulled_at.isoformat(),
            "owners": [o.to_json() for o in snapshot.owners],
            "lists": [lst.to_json() for lst in snapshot.lists],
            "schemas": snapshot.schemas,
            "objects": objects,
        }
        archive.writestr("meta.json", json.dumps(meta, separators=(",", ":")))
    return buffer.getvalue()


def unpack_snapshot(payload: bytes) -> tuple[CrmSnapshot, datetime] | None:
    """The cached snapshot and its last full pull; None for a payload of another format
    (an older release's JSON blob): the caller pulls fully then."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        return None
    with archive:
        meta = json.loads(archive.read("meta.json"))
        if meta.get("format") != CACHE_FORMAT:
            return None
        objects = {}
        for entry in meta["objects"]:
            links = {kind: _read(archive, name) for kind, name in entry["links"].items()}
            labels = {kind: _read(archive, name) for kind, name in entry.get("labels", {}).items()}
            objects[entry["type"]] = ObjectFrame(_read(archive, entry["table"]), links, labels)
    owners = [
        Owner(o["id"], o.get("email"), o.get("firstName"), o.get("lastName"))
        for o in meta["owners"]
    ]
    lists = [
        CrmList.from_json(e, f"cache: lists[{i}]") for i, e in enumerate(meta.get("lists", []))
    ]
    snapshot = CrmSnapshot(owners, frame=CrmFrame(objects, lists, meta.get("schemas", [])))
    return snapshot, datetime.fromisoformat(meta["full_pulled_at"])


def _write(archive: zipfile.ZipFile, name: str, table: pl.DataFrame) -> None:
    with archive.open(name, "w") as handle:
        table.write_parquet(handle, compression="zstd")


def _read(archive: zipfile.ZipFile, name: str) -> pl.DataFrame:
    return pl.read_parquet(archive.read(name))
