"""The CRM snapshot: owners and records of every object type, as HubSpot sends them.

Every source (a JSON file, a CSV table, the HubSpot API, the sandbox) produces a
`CrmSnapshot`; scoring only ever reads one. Property values stay strings (or
None), exactly as HubSpot returns them, so the engine parses them the way the
playbook spec says and never trusts a source to have done it.

Associations are listed on the non-account side (a meeting lists the companies
it belongs to); `related()` turns them around once, into an index from account
id to its associated records, so scoring stays linear in the number of records.

One rule for association pairs, in every source: a record->account pair is a
set member (`association_ids`). A CRM export lists a pair once per association
type (a ticket that is both "primary" and "unlabelled" on a company appears
twice); counting it twice would double the ticket and push a meeting into a
higher frequency band. HubSpot's v4 association read already returns one entry
per pair with a list of types, which is the same rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthscore.core.text import clean, clean_optional
from healthscore.errors import UserError

ACCOUNT_OBJECTS = ("companies", "contacts")

# HubSpot's object type ids, used by the lists API and the sandbox.
OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}


CUSTOM_OBJECT_PATTERN = r"^(2-[0-9]+|p[0-9]+_[A-Za-z0-9_]+)$"
"""A custom object as a playbook names it: its object type id (`2-1234567`) or its fully
qualified name (`p1234_subscriptions`), as HubSpot's objects and schemas APIs take it."""


def is_custom_object(object_type: str) -> bool:
    return re.fullmatch(CUSTOM_OBJECT_PATTERN, object_type) is not None


# Top-level snapshot keys that are not object types: lists and custom object schemas
# (read here), and what only the sandbox reads (docs/snapshot.md).
NOT_OBJECT_TYPES = frozenset(
    {"owners", "lists", "schemas", "slack_users", "slack_channels", "jira_projects"}
)


class SnapshotError(UserError):
    """A CRM snapshot that does not follow the documented format."""


@dataclass(frozen=True)
class Owner:
    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def __post_init__(self) -> None:
        # CRM text is made safe where it enters (`healthscore.core.text`), whatever the source
        for name in ("email", "first_name", "last_name"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clean(value))

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
        }


@dataclass
class CrmRecord:
    """One record. `labels[type][id]` are the association labels of the pair (this
    record -> that record of `type`), as HubSpot's v4 association types carry them;
    an unlabelled pair has none."""

    id: str
    properties: dict[str, str | None]
    associations: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # CRM text is made safe where it enters (`healthscore.core.text`), whatever the source
        self.id = clean(self.id)
        self.properties = {k: clean_optional(v) for k, v in self.properties.items()}
        # a pair is a set member, however a record was built (`association_ids`)
        self.associations = {k: association_ids(v) for k, v in self.associations.items()}

    def labels_of(self, object_type: str, other_id: str) -> list[str]:
        """The association labels of this record's pair with `other_id` of `object_type`."""
        return self.labels.get(object_type, {}).get(other_id, [])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "properties": dict(self.properties)}
        if self.associations:
            out["associations"] = {
                kind: [
                    {"id": i, "labels": list(self.labels_of(kind, i))}
                    if self.labels_of(kind, i)
                    else i
                    for i in ids
                ]
                for kind, ids in self.associations.items()
            }
        return out


@dataclass(frozen=True)
class CrmList:
    """A HubSpot list and its members (record ids), as the lists v3 API reads them:
    `GET /crm/v3/lists/{listId}/memberships` (docs/snapshot.md, `lists`)."""

    name: str
    object_type_id: str
    members: frozenset[str]
    list_id: str | None = None

    def matches(self, reference: str, object_type_id: str) -> bool:
        """A playbook's `list:`: the list id, or its name (case-insensitive; names are
        unique in a portal) on the object type the condition reads."""
        if self.list_id is not None and reference == self.list_id:
            return True
        return (
            self.name.casefold() == reference.casefold() and self.object_type_id == object_type_id
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "objectTypeId": self.object_type_id}
        if self.list_id is not None:
            out["listId"] = self.list_id
        out["members"] = sorted(self.members, key=lambda i: (len(i), i))
        return out


@dataclass
class CrmSnapshot:
    owners: list[Owner] = field(default_factory=list)
    objects: dict[str, list[CrmRecord]] = field(default_factory=dict)
    lists: list[CrmList] = field(default_factory=list)
    schemas: list[dict[str, Any]] = field(default_factory=list)  # custom object types

    def records(self, object_type: str) -> list[CrmRecord]:
        return self.objects.get(object_type, [])

    def type_id(self, object_type: str) -> str:
        """HubSpot's object type id (`0-2`, a custom `2-1234567`) of an object type name."""
        if object_type in OBJECT_TYPE_IDS:
            return OBJECT_TYPE_IDS[object_type]
        schema = self._schema(object_type)
        return str(schema["objectTypeId"]) if schema and schema.get("objectTypeId") else object_type

    def _schema(self, name: str) -> Mapping[str, Any] | None:
        wanted = name.strip().casefold()
        for schema in self.schemas:
            if wanted in _schema_names(schema):
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
        renames: dict[str, str] = {}
        for name in names:
            if name in self.objects or (schema := self._schema(name)) is None:
                continue
            aliases = _schema_names(schema)
            held = next((key for key in self.objects if key.casefold() in aliases), None)
            if held is not None:
                renames[held] = name
        if not renames:
            return self

        def moved(record: CrmRecord) -> CrmRecord:
            return CrmRecord(
                record.id,
                record.properties,
                {renames.get(k, k): v for k, v in record.associations.items()},
                {renames.get(k, k): v for k, v in record.labels.items()},
            )

        return CrmSnapshot(
            owners=self.owners,
            objects={
                renames.get(kind, kind): [moved(r) for r in records]
                for kind, records in self.objects.items()
            },
            lists=self.lists,
            schemas=self.schemas,
        )

    def owner_by_id(self) -> dict[str, Owner]:
        return {o.id: o for o in self.owners}

    def related(self, account_object: str) -> dict[str, dict[str, list[CrmRecord]]]:
        """Index `{object_type: {account_id: [records associated with it]}}`."""
        index: dict[str, dict[str, list[CrmRecord]]] = {}
        for object_type, records in self.objects.items():
            if object_type == account_object:
                continue
            by_account: dict[str, list[CrmRecord]] = {}
            for record in records:
                for account_id in association_ids(record.associations.get(account_object, ())):
                    by_account.setdefault(account_id, []).append(record)
            index[object_type] = by_account
        return index

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"owners": [o.to_json() for o in self.owners]}
        for object_type, records in self.objects.items():
            out[object_type] = [r.to_json() for r in records]
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
        owners = [_owner(o, f"{origin}: owners[{i}]") for i, o in enumerate(data.get("owners", []))]
        objects: dict[str, list[CrmRecord]] = {}
        for object_type, records in data.items():
            if object_type in NOT_OBJECT_TYPES:
                continue
            if not isinstance(records, list):
                raise SnapshotError(f"{origin}: {object_type} must be a list of records")
            objects[object_type] = [
                _record(r, f"{origin}: {object_type}[{i}]") for i, r in enumerate(records)
            ]
        lists = [_list(e, f"{origin}: lists[{i}]") for i, e in enumerate(data.get("lists") or [])]
        schemas = data.get("schemas") or []
        if not isinstance(schemas, list) or not all(
            isinstance(s, Mapping) and s.get("name") for s in schemas
        ):
            raise SnapshotError(f"{origin}: schemas: each custom object type needs a name")
        return cls(owners=owners, objects=objects, lists=lists, schemas=[dict(s) for s in schemas])

    @classmethod
    def load(cls, path: str | Path) -> CrmSnapshot:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SnapshotError(f"{path}: no such file") from None
        except json.JSONDecodeError as exc:
            raise SnapshotError(
                f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        return cls.from_json(data, origin=str(path))


def association_ids(ids: Iterable[Any]) -> list[str]:
    """Ids as strings, each once, in first-seen order: a pair is a set member."""
    return list(dict.fromkeys(str(i) for i in ids))


def property_string(value: Any) -> str | None:
    """A property value as HubSpot would send it: a string, or None when unset."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _owner(data: Any, where: str) -> Owner:
    if not isinstance(data, Mapping) or "id" not in data:
        raise SnapshotError(f"{where}: an owner needs an id")
    return Owner(
        id=str(data["id"]),
        email=data.get("email"),
        first_name=data.get("firstName"),
        last_name=data.get("lastName"),
    )


def _schema_names(schema: Mapping[str, Any]) -> set[str]:
    name = str(schema.get("name", "")).casefold()
    names = {name, f"p_{name}"}
    for key in ("objectTypeId", "fullyQualifiedName"):
        if schema.get(key):
            names.add(str(schema[key]).casefold())
    return names


def _list(data: Any, where: str) -> CrmList:
    if not isinstance(data, Mapping) or not data.get("name") or not data.get("objectTypeId"):
        raise SnapshotError(f"{where}: a list needs a name and an objectTypeId")
    members = data.get("members") or []
    if not isinstance(members, list):
        raise SnapshotError(f"{where}.members: must be a list of record ids")
    list_id = data.get("listId")
    return CrmList(
        name=str(data["name"]),
        object_type_id=str(data["objectTypeId"]),
        members=frozenset(str(m) for m in members),
        list_id=None if list_id is None else str(list_id),
    )


def _record(data: Any, where: str) -> CrmRecord:
    if not isinstance(data, Mapping) or "id" not in data:
        raise SnapshotError(f"{where}: a record needs an id")
    properties = data.get("properties") or {}
    associations = data.get("associations") or {}
    if not isinstance(properties, Mapping):
        raise SnapshotError(f"{where}.properties: must be an object of property values")
    if not isinstance(associations, Mapping):
        raise SnapshotError(f"{where}.associations: must be an object of id lists")
    labels: dict[str, dict[str, list[str]]] = {}
    for kind, entries in associations.items():
        for entry in _ids(entries, where):
            if isinstance(entry, Mapping) and entry.get("labels"):
                mine = labels.setdefault(str(kind), {}).setdefault(str(entry["id"]), [])
                mine.extend(str(label) for label in entry["labels"] if str(label) not in mine)
    return CrmRecord(
        id=str(data["id"]),
        properties={str(k): property_string(v) for k, v in properties.items()},
        associations={
            str(k): association_ids(_id(e, where) for e in _ids(v, where))
            for k, v in associations.items()
        },
        labels=labels,
    )


def _ids(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SnapshotError(f"{where}.associations: each association must be a list of ids")
    return value


def _id(entry: Any, where: str) -> Any:
    """An association entry: an id, or `{"id", "labels"}` for a labelled pair."""
    if isinstance(entry, Mapping):
        if "id" not in entry:
            raise SnapshotError(f"{where}.associations: a labelled entry needs an id")
        return entry["id"]
    return entry
