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
    id: str
    properties: dict[str, str | None]
    associations: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # CRM text is made safe where it enters (`healthscore.core.text`), whatever the source
        self.id = clean(self.id)
        self.properties = {k: clean_optional(v) for k, v in self.properties.items()}
        # a pair is a set member, however a record was built (`association_ids`)
        self.associations = {k: association_ids(v) for k, v in self.associations.items()}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "properties": dict(self.properties)}
        if self.associations:
            out["associations"] = {k: list(v) for k, v in self.associations.items()}
        return out


@dataclass
class CrmSnapshot:
    owners: list[Owner] = field(default_factory=list)
    objects: dict[str, list[CrmRecord]] = field(default_factory=dict)

    def records(self, object_type: str) -> list[CrmRecord]:
        return self.objects.get(object_type, [])

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
        return out

    @classmethod
    def from_json(cls, data: Any, origin: str = "snapshot") -> CrmSnapshot:
        """Build a snapshot from the JSON of docs/snapshot.md, with errors that name the place."""
        if not isinstance(data, Mapping):
            raise SnapshotError(f"{origin}: the top level must be an object of object types")
        owners = [_owner(o, f"{origin}: owners[{i}]") for i, o in enumerate(data.get("owners", []))]
        objects: dict[str, list[CrmRecord]] = {}
        for object_type, records in data.items():
            if object_type == "owners":
                continue
            if not isinstance(records, list):
                raise SnapshotError(f"{origin}: {object_type} must be a list of records")
            objects[object_type] = [
                _record(r, f"{origin}: {object_type}[{i}]") for i, r in enumerate(records)
            ]
        return cls(owners=owners, objects=objects)

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


def _record(data: Any, where: str) -> CrmRecord:
    if not isinstance(data, Mapping) or "id" not in data:
        raise SnapshotError(f"{where}: a record needs an id")
    properties = data.get("properties") or {}
    associations = data.get("associations") or {}
    if not isinstance(properties, Mapping):
        raise SnapshotError(f"{where}.properties: must be an object of property values")
    if not isinstance(associations, Mapping):
        raise SnapshotError(f"{where}.associations: must be an object of id lists")
    return CrmRecord(
        id=str(data["id"]),
        properties={str(k): property_string(v) for k, v in properties.items()},
        associations={str(k): association_ids(_ids(v, where)) for k, v in associations.items()},
    )


def _ids(value: Any, where: str) -> Iterable[Any]:
    if not isinstance(value, list):
        raise SnapshotError(f"{where}.associations: each association must be a list of ids")
    return value
