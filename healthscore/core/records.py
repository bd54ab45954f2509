"""One CRM record or owner as Python values: what a rule, an action or a test reads.

The snapshot itself is held as columns (`healthscore.core.frame`, built by
`healthscore.core.crm`); a `CrmRecord` is one row of it, materialised on demand
(`CrmSnapshot.records`, `explain`, the sandbox seed). The value rules of a
snapshot (CRM text made safe, each record->account pair once) are applied where
the columns are built (`frame.FrameBuilder`), so every record read back out of a
snapshot already follows them.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    (`{object type: [ids]}`). A record read from a snapshot follows the snapshot's value
    rules; one built by hand is taken as given until a snapshot is built from it."""

    id: str
    properties: dict[str, str | None]
    associations: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "properties": dict(self.properties)}
        if self.associations:
            out["associations"] = {k: list(v) for k, v in self.associations.items()}
        return out


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
