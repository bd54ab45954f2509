"""One CRM record or owner as Python values: what a rule, an action or a test reads.

The snapshot itself is held as columns (`healthscore.core.frame`, built by
`healthscore.core.crm`); a `CrmRecord` is one row of it, materialised on demand
(`CrmSnapshot.records`, `explain`, the sandbox seed). The value rules of a
snapshot (CRM text made safe, each record->account pair once) are applied where
the columns are built (`frame.FrameBuilder`), so every record read back out of a
snapshot already follows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from healthscore.core.text import clean
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
    """A record: `properties` (string values, None = unset) and `associations`
    (`{object type: [ids]}`). `labels[type][id]` are the association labels of the pair
    (this record -> that record of `type`), as HubSpot's v4 association types carry
    them; an unlabelled pair has none. A record read from a snapshot follows the
    snapshot's value rules; one built by hand is taken as given until a snapshot is
    built from it."""

    id: str
    properties: dict[str, str | None]
    associations: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, dict[str, list[str]]] = field(default_factory=dict)

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

    @classmethod
    def from_json(cls, data: Any, where: str) -> CrmList:
        """A snapshot's `lists` entry; `SnapshotError` naming `where` when malformed."""
        if not isinstance(data, Mapping) or not data.get("name") or not data.get("objectTypeId"):
            raise SnapshotError(f"{where}: a list needs a name and an objectTypeId")
        members = data.get("members") or []
        if not isinstance(members, list):
            raise SnapshotError(f"{where}.members: must be a list of record ids")
        list_id = data.get("listId")
        return cls(
            name=str(data["name"]),
            object_type_id=str(data["objectTypeId"]),
            members=frozenset(str(m) for m in members),
            list_id=None if list_id is None else str(list_id),
        )


def schema_names(schema: Mapping[str, Any]) -> set[str]:
    """Every name a custom object type answers to (casefolded): its name, `p_<name>`,
    object type id and fully qualified name (a snapshot's `schemas` entry)."""
    name = str(schema.get("name", "")).casefold()
    names = {name, f"p_{name}"}
    for key in ("objectTypeId", "fullyQualifiedName"):
        if schema.get(key):
            names.add(str(schema[key]).casefold())
    return names


def type_id(object_type: str, schemas: Iterable[Mapping[str, Any]]) -> str:
    """HubSpot's object type id (`0-2`, a custom `2-1234567`) of an object type name."""
    if object_type in OBJECT_TYPE_IDS:
        return OBJECT_TYPE_IDS[object_type]
    wanted = object_type.strip().casefold()
    for schema in schemas:
        if wanted in schema_names(schema):
            return str(schema["objectTypeId"]) if schema.get("objectTypeId") else object_type
    return object_type


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
