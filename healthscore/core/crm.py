"""The CRM snapshot: owners and records of every object type, as HubSpot sends them.

Every source (a JSON file, a CSV table, the HubSpot API, the sandbox) produces a
`CrmSnapshot`; scoring only ever reads one. It is held as columns: one polars
table per object type plus association edge tables (`frame.CrmFrame`), built as
the records arrive (`frame.FrameBuilder`), so a run never holds a whole portal as
Python objects. Property values stay strings (or None), exactly as HubSpot
returns them, so the engine parses them the way the playbook spec says and never
trusts a source to have done it. A snapshot file is read record by record
(`load`), never whole.

Associations are listed on the non-account side (a meeting lists the companies
it belongs to); the engine joins the edge tables to the accounts, so scoring
stays linear in the number of records.

One rule for association pairs, in every source: a record->account pair is a
set member (`association_ids`). A CRM export lists a pair once per association
type (a ticket that is both "primary" and "unlabelled" on a company appears
twice); counting it twice would double the ticket and push a meeting into a
higher frequency band. HubSpot's v4 association read already returns one entry
per pair with a list of types, which is the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from healthscore.core.frame import CrmFrame, FrameBuilder, ObjectFrame
from healthscore.core.records import (
    ACCOUNT_OBJECTS,
    CUSTOM_OBJECT_PATTERN,
    NOT_OBJECT_TYPES,
    OBJECT_TYPE_IDS,
    CrmList,
    CrmRecord,
    Owner,
    SnapshotError,
    association_ids,
    is_custom_object,
    property_string,
    schema_names,
)

__all__ = [
    "ACCOUNT_OBJECTS",
    "CUSTOM_OBJECT_PATTERN",
    "NOT_OBJECT_TYPES",
    "OBJECT_TYPE_IDS",
    "CrmList",
    "CrmRecord",
    "CrmSnapshot",
    "Owner",
    "SnapshotError",
    "association_ids",
    "is_custom_object",
    "property_string",
]


class CrmSnapshot:
    """Owners and the records of every object type, held as columns (`frame`), with
    the snapshot's lists and custom object schemas (kept in the frame).

    Build one from records (`CrmSnapshot(owners, {type: [CrmRecord]}, lists=...,
    schemas=...)`, for tests and small sources), from columns (`frame=`), from the
    JSON of docs/snapshot.md (`from_json`) or from such a file (`load`). `records()`,
    `objects` and `related()` turn columns back into Python records: meant for a few
    records or small snapshots.
    """

    def __init__(
        self,
        owners: Iterable[Owner] = (),
        objects: Mapping[str, Iterable[CrmRecord]] | None = None,
        *,
        frame: CrmFrame | None = None,
        lists: Iterable[CrmList] | None = None,
        schemas: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        self.owners = list(owners)
        self.frame = frame if frame is not None else CrmFrame.from_records(objects or {})
        if lists is not None:
            self.frame.lists = list(lists)
        if schemas is not None:
            self.frame.schemas = [dict(s) for s in schemas]

    @property
    def lists(self) -> list[CrmList]:
        return self.frame.lists

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """Custom object types (`name`, `objectTypeId`, `fullyQualifiedName`, ...)."""
        return self.frame.schemas

    def __repr__(self) -> str:
        return f"CrmSnapshot({len(self.owners)} owners, {self.counts()})"

    def counts(self) -> dict[str, int]:
        """Records per object type."""
        return {kind: len(frame) for kind, frame in self.frame.objects.items()}

    @property
    def objects(self) -> dict[str, list[CrmRecord]]:
        """Every record as a Python object, per object type (small snapshots only)."""
        return {kind: self.records(kind) for kind in self.frame.objects}

    def records(self, object_type: str) -> list[CrmRecord]:
        """The records of one object type, with their associations, in snapshot order."""
        frame = self.frame.objects.get(object_type)
        return frame.records() if frame is not None else []

    def record(self, object_type: str, record_id: str) -> CrmRecord | None:
        """The first record of the type with that id (without associations), or None."""
        frame = self.frame.objects.get(object_type)
        if frame is None:
            return None
        rows = (frame.ids == record_id).arg_true()
        return frame.record(int(rows[0])) if len(rows) else None

    def type_id(self, object_type: str) -> str:
        """HubSpot's object type id (`0-2`, a custom `2-1234567`) of an object type name."""
        return self.frame.type_id(object_type)

    def _schema(self, name: str) -> Mapping[str, Any] | None:
        wanted = name.strip().casefold()
        for schema in self.schemas:
            if wanted in schema_names(schema):
                return schema
        return None

    def check_lists(self, wanted: Mapping[str, Iterable[str]]) -> None:
        """Raise `SnapshotError` naming each list of `{object type: {name or id}}` (what
        `Playbook.list_conditions` returns) that the snapshot does not hold."""
        missing = [
            f"{reference!r} ({kind}, object type {self.type_id(kind)})"
            for kind, references in sorted(wanted.items())
            for reference in sorted(references)
            if not any(lst.matches(reference, self.type_id(kind)) for lst in self.lists)
        ]
        if missing:
            raise SnapshotError(
                "the playbook reads lists the CRM snapshot does not hold: "
                + ", ".join(missing)
                + '; add them to the snapshot\'s "lists" with their members '
                "(docs/snapshot.md), or pull with --source hubspot, which reads them"
            )

    def named(self, names: Iterable[str]) -> CrmSnapshot:
        """This snapshot with each custom object type keyed by the name a playbook uses.

        A custom object answers to its object type id (`2-1234567`), fully qualified
        name (`p1234_subscriptions`), `p_subscriptions` and, in a snapshot, its bare
        name (the `schemas` entry says which are one type). Records held under another
        of these names are moved to the asked one, associations renamed with them.
        """
        held_types = self.frame.objects
        renames: dict[str, str] = {}
        for name in names:
            if name in held_types or (schema := self._schema(name)) is None:
                continue
            aliases = schema_names(schema)
            held = next((key for key in held_types if key.casefold() in aliases), None)
            if held is not None:
                renames[held] = name
        if not renames:
            return self

        def moved(frame: ObjectFrame) -> ObjectFrame:
            return ObjectFrame(
                frame.table,
                {renames.get(k, k): v for k, v in frame.links.items()},
                {renames.get(k, k): v for k, v in frame.labels.items()},
            )

        objects = {renames.get(kind, kind): moved(f) for kind, f in held_types.items()}
        return CrmSnapshot(self.owners, frame=CrmFrame(objects, self.lists, self.schemas))

    def owner_by_id(self) -> dict[str, Owner]:
        return {o.id: o for o in self.owners}

    def related(self, account_object: str) -> dict[str, dict[str, list[CrmRecord]]]:
        """Index `{object_type: {account_id: [records associated with it]}}`."""
        index: dict[str, dict[str, list[CrmRecord]]] = {}
        for object_type in self.frame.objects:
            if object_type == account_object:
                continue
            by_account: dict[str, list[CrmRecord]] = {}
            for record in self.records(object_type):
                for account_id in record.associations.get(account_object, ()):
                    by_account.setdefault(account_id, []).append(record)
            index[object_type] = by_account
        return index

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"owners": [o.to_json() for o in self.owners]}
        for object_type in self.frame.objects:
            out[object_type] = [r.to_json() for r in self.records(object_type)]
        if self.lists:
            out["lists"] = [lst.to_json() for lst in self.lists]
        if self.schemas:
            out["schemas"] = [dict(s) for s in self.schemas]
        return out

    @classmethod
    def from_json(cls, data: Any, origin: str = "snapshot") -> CrmSnapshot:
        """Build a snapshot from the JSON of docs/snapshot.md, with errors that name the place."""
        if not isinstance(data, Mapping):
            raise SnapshotError(f"{origin}: the top level must be an object of object types")
        reader = _Reader(origin)
        for key, value in data.items():
            if key == "owners":
                reader.owners(value if isinstance(value, list) else [value])
                continue
            if key in NOT_OBJECT_TYPES:
                if key in ("lists", "schemas") and not isinstance(value, list):
                    raise SnapshotError(f"{origin}: {key} must be a list")
                for entry in value if key in ("lists", "schemas") else ():
                    reader.add(str(key), entry)
                continue
            if not isinstance(value, list):
                raise SnapshotError(f"{origin}: {key} must be a list of records")
            reader.empty(str(key))
            for record in value:
                reader.add(str(key), record)
        return reader.snapshot()

    @classmethod
    def load(
        cls, path: str | Path, only: Mapping[str, Collection[str] | None] | None = None
    ) -> CrmSnapshot:
        """Read a snapshot file record by record (`_stream`): memory is the columns'.

        `only`: the object types to keep, each with the properties to keep (None: all),
        as a pull asks HubSpot for just what a playbook reads; None keeps everything.
        A type HubSpot does not define (not in `OBJECT_TYPE_IDS`) is kept whole even
        when not asked: it may be a custom object under another of its names (`named`).
        """
        path = Path(path)
        reader = _Reader(str(path), only)
        try:
            with path.open(encoding="utf-8") as handle:
                for key, value in _stream(handle, str(path)):
                    if value is _EMPTY:
                        if key not in NOT_OBJECT_TYPES:
                            reader.empty(key)
                    elif key == "owners":
                        reader.owners([value])
                    else:
                        reader.add(key, value)
        except FileNotFoundError:
            raise SnapshotError(f"{path}: no such file") from None
        except UnicodeDecodeError as exc:
            raise SnapshotError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        return reader.snapshot()


class _Reader:
    """Records of a snapshot's JSON, checked and appended to each type's columns."""

    def __init__(
        self, origin: str, only: Mapping[str, Collection[str] | None] | None = None
    ) -> None:
        self.origin = origin
        self.only = only
        self._owners: list[Owner] = []
        self._builders: dict[str, FrameBuilder] = {}
        self._last: FrameBuilder | None = None
        self._seen: dict[str, int] = {}  # index of the last record read, per type
        self._lists: list[CrmList] = []
        self._schemas: list[dict[str, Any]] = []

    def owners(self, owners: list[Any]) -> None:
        for owner in owners:
            self._owners.append(_owner(owner, f"{self.origin}: owners[{len(self._owners)}]"))

    def add(self, object_type: str, data: Any) -> None:
        index = self._seen[object_type] = self._seen.get(object_type, -1) + 1
        where = f"{self.origin}: {object_type}[{index}]"
        if object_type == "lists":
            self._lists.append(CrmList.from_json(data, where))
            return
        if object_type == "schemas":
            if not isinstance(data, Mapping) or not data.get("name"):
                raise SnapshotError(f"{where}: each custom object type needs a name")
            self._schemas.append(dict(data))
            return
        if object_type in NOT_OBJECT_TYPES:  # what only the sandbox reads
            return
        if not isinstance(data, Mapping) or "id" not in data:
            raise SnapshotError(f"{where}: a record needs an id")
        properties = data.get("properties") or {}
        associations = data.get("associations") or {}
        if not isinstance(properties, Mapping):
            raise SnapshotError(f"{where}.properties: must be an object of property values")
        if not isinstance(associations, Mapping):
            raise SnapshotError(f"{where}.associations: must be an object of id lists")
        for ids in associations.values():
            if not isinstance(ids, list):
                raise SnapshotError(f"{where}.associations: each association must be a list of ids")
            for entry in ids:  # an id, or `{"id", "labels"}` for a labelled pair
                if isinstance(entry, Mapping) and "id" not in entry:
                    raise SnapshotError(f"{where}.associations: a labelled entry needs an id")
        if self.only is not None:
            if object_type in self.only:
                wanted = self.only[object_type]
                if wanted is not None:
                    properties = {k: properties[k] for k in wanted if k in properties}
            elif object_type in OBJECT_TYPE_IDS:
                return
            # else kept whole: maybe a custom object under another of its names (`named`)
        builder = self._builders.setdefault(object_type, FrameBuilder())
        if builder is not self._last:
            if self._last is not None:
                self._last.compact()  # a file lists each type's records together
            self._last = builder
        builder.add(str(data["id"]), properties, associations)

    def empty(self, object_type: str) -> None:
        if object_type in NOT_OBJECT_TYPES:
            return
        if self.only is None or object_type in self.only or object_type not in OBJECT_TYPE_IDS:
            self._builders.setdefault(object_type, FrameBuilder())

    def snapshot(self) -> CrmSnapshot:
        frame = CrmFrame(
            {kind: b.frame() for kind, b in self._builders.items()}, self._lists, self._schemas
        )
        return CrmSnapshot(self._owners, frame=frame)


def _owner(data: Any, where: str) -> Owner:
    if not isinstance(data, Mapping) or "id" not in data:
        raise SnapshotError(f"{where}: an owner needs an id")
    return Owner(
        id=str(data["id"]),
        email=data.get("email"),
        first_name=data.get("firstName"),
        last_name=data.get("lastName"),
    )


_DECODER = json.JSONDecoder()
_BLOCK = 1 << 20  # characters read at a time
_SPACE = " \t\n\r"


def _stream(handle: Any, origin: str) -> Iterator[tuple[str, Any]]:
    """`(top-level key, element)` for every element of every top-level list of the
    snapshot JSON in `handle`, one element decoded at a time, so memory holds one
    block of text and one record. Raises `SnapshotError` naming the line and column
    of invalid JSON, or the key whose value is not a list."""
    text = _Text(handle, origin)
    text.expect("{", "the top level must be an object of object types")
    if text.peek() == "}":
        return
    while True:
        key = text.value()
        if not isinstance(key, str):
            text.fail("Expecting property name enclosed in double quotes")
        text.expect(":", "Expecting ':' delimiter")
        if text.peek() != "[":
            if key == "owners":
                yield key, text.value()
            else:
                text.value()
                raise SnapshotError(f"{origin}: {key} must be a list of records")
        else:
            text.expect("[", "")
            if text.peek() == "]":
                text.expect("]", "")
                yield key, _EMPTY
            else:
                while True:
                    yield key, text.value()
                    if text.expect(",]", "Expecting ',' delimiter") == "]":
                        break
        if text.expect(",}", "Expecting ',' delimiter") == "}":
            break
    if text.peek() != "":
        text.fail("Extra data")


_EMPTY: Any = object()  # an empty list: the type exists with no records


class _Text:
    """A JSON text read a block at a time; positions are counted for error messages."""

    def __init__(self, handle: Any, origin: str) -> None:
        self.handle = handle
        self.origin = origin
        self.buffer = ""
        self.at = 0
        self.line = 1  # line number of buffer[0]
        self.line_start = 0  # index in buffer where that line starts (may be negative)
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        block = self.handle.read(_BLOCK)
        if not block:
            self.eof = True
            return False
        rest = self.buffer[self.at :]
        consumed = self.buffer[: self.at]
        newlines = consumed.count("\n")
        if newlines:
            self.line += newlines
            self.line_start = consumed.rindex("\n") + 1 - self.at
        else:
            self.line_start -= self.at
        self.buffer = rest + block
        self.at = 0
        return True

    def peek(self) -> str:
        while True:
            while self.at < len(self.buffer) and self.buffer[self.at] in _SPACE:
                self.at += 1
            if self.at < len(self.buffer) or not self._more():
                return self.buffer[self.at : self.at + 1]

    def expect(self, allowed: str, message: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            if message.startswith("the top level"):
                raise SnapshotError(f"{self.origin}: {message}")
            self.fail(message)
        self.at += 1
        return char

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                self.fail(exc.msg, exc.pos)
            if end == len(self.buffer) and self._more():
                continue  # a number may go on in the next block
            self.at = end
            return value

    def fail(self, message: str, position: int | None = None) -> Any:
        position = self.at if position is None else position
        before = self.buffer[:position]
        line = self.line + before.count("\n")
        start = before.rindex("\n") + 1 if "\n" in before else self.line_start
        raise SnapshotError(
            f"{self.origin}:{line}: not valid JSON ({message}, column {position - start + 1})"
        )
