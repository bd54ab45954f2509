"""In-memory state of the three sandboxes, seeded from a CRM snapshot.

All handlers run on the server's single event loop and never await in the
middle of a change, so the state needs no locks. `reset()` swaps the contents in
place so handlers that hold a reference to a `SandboxState` see the new seed.

The seed is a CRM snapshot (docs/snapshot.md) plus optional top-level keys that only
the sandboxes read; every one of them may be left out:

- `slack_users`, `slack_channels`, `jira_projects`: see `_seed_slack`/`_seed_jira`.
- A record's `associations` entries are ids as before (`{"companies": ["101"]}`)
  or, to give association labels, objects:
  `{"companies": [{"id": "101", "labels": ["Decision maker"]}, "102"]}`. Each
  label becomes a USER_DEFINED association type of that pair of object types
  (and of the reverse pair, with the same label), as `POST
  /crm/v4/associations/{from}/{to}/labels` would have made it.
- `schemas`: custom object types, in the shape of `POST /crm-object-schemas/v3/schemas`
  (ObjectSchemaEgg), e.g. `[{"name": "subscriptions", "labels": {"singular":
  "Subscription", "plural": "Subscriptions"}, "properties": [{"name": "plan",
  "type": "string"}], "associatedObjects": ["COMPANY"], "objectTypeId": "2-1234567"}]`.
  `objectTypeId` is optional (handed out from `2-1234567` on); the fully
  qualified name is `p{PORTAL_ID}_{name}`. Records of a custom type sit at the
  top level under its `name`, fully qualified name, `p_{name}` or object type id,
  like any other object type.
- `lists`: lists v3 with their members, e.g. `[{"name": "At risk",
  "objectTypeId": "0-2", "members": ["101", "102"]}]`; `listId` (default: handed
  out in order) and `processingType` (default `MANUAL`) are optional.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from healthscore.core.crm import OBJECT_TYPE_IDS, CrmSnapshot, SnapshotError

from .timefmt import hubspot_iso, parse_moment, utc_now

SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
    "tasks": "task",
    "notes": "note",
    "meetings": "meeting",
    "calls": "call",
    "emails": "email",
}
PLURAL = {v: k for k, v in SINGULAR.items()}
TYPE_BY_ID = {v: k for k, v in OBJECT_TYPE_IDS.items()}

# The portal the sandbox plays; custom objects' fully qualified names carry it.
PORTAL_ID = 12345678
FIRST_CUSTOM_TYPE_ID = 1234567
# USER_DEFINED association type ids start above every HUBSPOT_DEFINED one we know.
FIRST_LABEL_TYPE_ID = 1001

# Properties every object has; HubSpot returns them whatever was asked for.
BASE_PROPERTIES = ("createdate", "hs_lastmodifieddate", "hs_object_id")

# What HubSpot returns when a read names no properties at all.
DEFAULT_RETURNED: dict[str, tuple[str, ...]] = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "tickets": (
        "content",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
        "subject",
    ),
}

# HubSpot-defined properties per object type (name -> type), beyond BASE_PROPERTIES.
_COMMON_DEFINED = {"hubspot_owner_id": "enumeration", "hs_createdate": "datetime"}
_ENGAGEMENT = {"hs_timestamp": "datetime", "hs_body_preview": "string"}
HUBSPOT_DEFINED: dict[str, dict[str, str]] = {
    "companies": {
        "name": "string",
        "domain": "string",
        "industry": "enumeration",
        "numberofemployees": "number",
        "annualrevenue": "number",
        "lifecyclestage": "enumeration",
        "city": "string",
        "country": "string",
        "description": "string",
        "notes_last_contacted": "datetime",
        "notes_last_updated": "datetime",
        "num_associated_contacts": "number",
        "num_associated_deals": "number",
        "hs_num_open_deals": "number",
    },
    "contacts": {
        "email": "string",
        "firstname": "string",
        "lastname": "string",
        "phone": "string",
        "jobtitle": "string",
        "lifecyclestage": "enumeration",
        "lastmodifieddate": "datetime",
        "hs_email_last_open_date": "datetime",
        "notes_last_contacted": "datetime",
    },
    "deals": {
        "dealname": "string",
        "amount": "number",
        "dealstage": "enumeration",
        "pipeline": "enumeration",
        "closedate": "datetime",
        "hs_is_closed_won": "bool",
        "hs_is_closed": "bool",
        "dealtype": "enumeration",
    },
    "tickets": {
        "subject": "string",
        "content": "string",
        "hs_pipeline": "enumeration",
        "hs_pipeline_stage": "enumeration",
        "hs_ticket_priority": "enumeration",
        "hs_ticket_category": "enumeration",
        "closed_date": "datetime",
        "time_to_close": "number",
    },
    "tasks": {
        **_ENGAGEMENT,
        "hs_task_subject": "string",
        "hs_task_body": "string",
        "hs_task_status": "enumeration",
        "hs_task_priority": "enumeration",
        "hs_task_type": "enumeration",
    },
    "notes": {**_ENGAGEMENT, "hs_note_body": "string"},
    "meetings": {
        **_ENGAGEMENT,
        "hs_meeting_title": "string",
        "hs_meeting_body": "string",
        "hs_meeting_outcome": "enumeration",
        "hs_meeting_start_time": "datetime",
        "hs_meeting_end_time": "datetime",
    },
    "calls": {
        **_ENGAGEMENT,
        "hs_call_title": "string",
        "hs_call_body": "string",
        "hs_call_direction": "enumeration",
        "hs_call_disposition": "enumeration",
        "hs_call_duration": "number",
        "hs_call_status": "enumeration",
    },
    "emails": {
        **_ENGAGEMENT,
        "hs_email_subject": "string",
        "hs_email_text": "string",
        "hs_email_direction": "enumeration",
        "hs_email_status": "enumeration",
    },
}

# What a property in a schema egg may set beyond name and type.
PROPERTY_FIELDS = (
    "label",
    "fieldType",
    "description",
    "groupName",
    "options",
    "displayOrder",
    "hasUniqueValue",
    "hidden",
    "formField",
)

_FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "datetime": "date",
    "date": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}

# HubSpot-defined association type ids (v4), by (from type, to type).
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
    ("calls", "companies"): 182,
    ("companies", "calls"): 181,
    ("emails", "companies"): 186,
    ("companies", "emails"): 185,
    ("meetings", "companies"): 188,
    ("companies", "meetings"): 187,
    ("notes", "companies"): 190,
    ("companies", "notes"): 189,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("deals", "tickets"): 27,
    ("tickets", "deals"): 28,
    ("calls", "contacts"): 194,
    ("contacts", "calls"): 193,
    ("emails", "contacts"): 198,
    ("contacts", "emails"): 197,
    ("meetings", "contacts"): 200,
    ("contacts", "meetings"): 199,
    ("notes", "contacts"): 202,
    ("contacts", "notes"): 201,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("calls", "deals"): 206,
    ("deals", "calls"): 205,
    ("emails", "deals"): 210,
    ("deals", "emails"): 209,
    ("meetings", "deals"): 212,
    ("deals", "meetings"): 211,
    ("notes", "deals"): 214,
    ("deals", "notes"): 213,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
}


def association_type_id(from_type: str, to_type: str) -> int:
    """The HubSpot-defined type id; a stable made-up one for pairs HubSpot has no table for."""
    known = ASSOCIATION_TYPE_IDS.get((from_type, to_type))
    if known is not None:
        return known
    return 100_000 + sum(ord(c) for c in f"{from_type}>{to_type}")


def association_type_name(from_type: str, to_type: str) -> str:
    return f"{SINGULAR.get(from_type, from_type)}_to_{SINGULAR.get(to_type, to_type)}"


def property_definition(
    object_type: str, name: str, prop_type: str, *, hubspot_defined: bool, created: str
) -> dict[str, Any]:
    """A property definition in the shape of `GET /crm/v3/properties/{objectType}`."""
    group = f"{SINGULAR.get(object_type, object_type)}information"
    return {
        "name": name,
        "label": name.replace("_", " ").capitalize(),
        "type": prop_type,
        "fieldType": _FIELD_TYPES.get(prop_type, "text"),
        "description": "",
        "groupName": group,
        "options": [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": name in BASE_PROPERTIES,
        },
        "formField": not hubspot_defined,
        "createdAt": created,
        "updatedAt": created,
        "archived": False,
    }


def _infer_type(value: str | None) -> str:
    if value is None:
        return "string"
    if value in ("true", "false"):
        return "bool"
    try:
        float(value)
    except ValueError:
        pass
    else:
        return "number"
    if "-" in value and parse_moment(value) is not None:
        return "datetime"
    return "string"


def _common_type(kinds: set[str]) -> str:
    """The one property type that holds values of all `kinds` (`_infer_type`'s names)."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"number", "datetime"}:  # epoch milliseconds beside ISO dates
        return "datetime"
    return "string"


@dataclass
class HsObject:
    """One CRM record; `properties` hold strings or None, as HubSpot sends them."""

    id: str
    properties: dict[str, str | None]
    created_at: str
    updated_at: str
    archived: bool = False
    archived_at: str | None = None


@dataclass
class HsList:
    list_id: str
    name: str
    object_type_id: str
    processing_type: str
    created_at: str
    updated_at: str
    version: int = 1
    members: dict[str, str] = field(default_factory=dict)  # record id -> added at

    def to_json(self) -> dict[str, Any]:
        return {
            "listId": self.list_id,
            "listVersion": self.version,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "filtersUpdatedAt": self.created_at,
            "createdById": "1",
            "updatedById": "1",
            "size": len(self.members),
        }


@dataclass
class HsExport:
    """One CRM export (`POST /crm/v3/exports/export/async`), its file made when it started.

    `requested_at` is the wall-clock start (the status' `requestedAt`/`startedAt`),
    `ready_at` the `time.monotonic()` moment the export turns COMPLETE, `data` the
    file's bytes (a CSV, or a ZIP of CSVs), kept until the state is reset.
    """

    export_id: str
    name: str
    export_type: str
    object_type: str  # as the request named it
    object_properties: list[str]
    record_count: int
    requested_at: datetime
    seconds: float
    ready_at: float
    data: bytes
    file_name: str  # the last segment of the file's URL: `<id>.csv` or `<id>.zip`
    download_name: str  # Content-Disposition's filename
    media_type: str


@dataclass
class HubSpotState:
    objects: dict[str, dict[str, HsObject]] = field(default_factory=dict)
    # (from type, to type) -> from id -> ordered to ids; kept in both directions.
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, HsList] = field(default_factory=dict)
    # (object type, name) of definitions guessed from seeded values: not type-checked on writes.
    inferred: set[tuple[str, str]] = field(default_factory=set)
    next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    next_list_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # USER_DEFINED association labels: (from type, to type) -> type id -> label; each
    # type id has an inverse one for the reverse pair.
    label_defs: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)
    label_inverse: dict[int, int] = field(default_factory=dict)
    # (from type, from id, to type, to id) -> the USER_DEFINED type ids on that association.
    edge_labels: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    # Per type, merged-away record id -> the primary record it now lives on in.
    merged_into: dict[str, dict[str, str]] = field(default_factory=dict)
    # Custom object types by fully qualified name, and their other spellings -> that name.
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    type_aliases: dict[str, str] = field(default_factory=dict)
    next_label_type_id: itertools.count[int] = field(
        default_factory=lambda: itertools.count(FIRST_LABEL_TYPE_ID)
    )
    next_custom_type_id: itertools.count[int] = field(
        default_factory=lambda: itertools.count(FIRST_CUSTOM_TYPE_ID)
    )
    # CRM exports by id, and the `time.monotonic()` starts of the rolling 24-hour window.
    exports: dict[str, HsExport] = field(default_factory=dict)
    export_starts: deque[float] = field(default_factory=deque)
    next_export_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def resolve_type(self, name: str) -> str | None:
        """`companies`, `company`, `0-2` -> `companies`; None for a type nobody knows.

        A custom object type answers to its object type id (`2-1234567`), its fully
        qualified name (`p12345678_subscriptions`) and `p_subscriptions`, not to its
        bare name: HubSpot dropped that in June 2025 (developers.hubspot.com/changelog/
        breaking-change-removed-support-for-referencing-custom-object-types-by-base-name).
        """
        key = name.strip().lower()
        if key in self.type_aliases:
            return self.type_aliases[key]
        if key in TYPE_BY_ID:
            return TYPE_BY_ID[key]
        if key in PLURAL:
            key = PLURAL[key]
        if key in self.objects or key in OBJECT_TYPE_IDS:
            self.ensure_type(key)
            return key
        return None

    def ensure_type(self, object_type: str) -> None:
        if object_type in self.objects:
            return
        self.objects[object_type] = {}
        now = hubspot_iso(utc_now())
        defs: dict[str, dict[str, Any]] = {}
        for name in BASE_PROPERTIES:
            kind = "number" if name == "hs_object_id" else "datetime"
            defs[name] = property_definition(
                object_type, name, kind, hubspot_defined=True, created=now
            )
        for name, kind in {**_COMMON_DEFINED, **HUBSPOT_DEFINED.get(object_type, {})}.items():
            defs[name] = property_definition(
                object_type, name, kind, hubspot_defined=True, created=now
            )
        self.properties[object_type] = defs
        group = f"{SINGULAR.get(object_type, object_type)}information"
        self.groups[object_type] = {
            group: {
                "name": group,
                "label": f"{SINGULAR.get(object_type, object_type).capitalize()} information",
                "displayOrder": -1,
                "archived": False,
            }
        }

    def new_id(self) -> str:
        """Numeric ids above every seeded one, as HubSpot hands out."""
        return str(next(self.next_id))

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        for a_type, a_id, b_type, b_id in (
            (from_type, from_id, to_type, to_id),
            (to_type, to_id, from_type, from_id),
        ):
            ids = self.associations.setdefault((a_type, b_type), {}).setdefault(a_id, [])
            if b_id not in ids:
                ids.append(b_id)

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Associated ids; an archived record has none and is nobody's."""
        if self.is_archived(from_type, from_id):
            return []
        ids = self.associations.get((from_type, to_type), {}).get(from_id, [])
        return [i for i in ids if not self.is_archived(to_type, i)]

    def is_archived(self, object_type: str, object_id: str) -> bool:
        obj = self.objects.get(object_type, {}).get(object_id)
        return obj is not None and obj.archived

    def dissociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> bool:
        """Remove the association, labels included, both ways; False when there was none."""
        found = False
        for a_type, a_id, b_type, b_id in (
            (from_type, from_id, to_type, to_id),
            (to_type, to_id, from_type, from_id),
        ):
            ids = self.associations.get((a_type, b_type), {}).get(a_id, [])
            if b_id in ids:
                ids.remove(b_id)
                found = True
            self.edge_labels.pop((a_type, a_id, b_type, b_id), None)
        return found

    def label_id(self, from_type: str, to_type: str, label: str) -> int | None:
        defs = self.label_defs.get((from_type, to_type), {})
        return next((type_id for type_id, text in defs.items() if text == label), None)

    def define_label(
        self, from_type: str, to_type: str, label: str, inverse_label: str | None = None
    ) -> int:
        """The USER_DEFINED type id of `label`, made with its inverse on first use."""
        known = self.label_id(from_type, to_type, label)
        if known is not None:
            return known
        type_id, inverse = next(self.next_label_type_id), next(self.next_label_type_id)
        self.label_defs.setdefault((from_type, to_type), {})[type_id] = label
        self.label_defs.setdefault((to_type, from_type), {})[inverse] = inverse_label or label
        self.label_inverse[type_id] = inverse
        self.label_inverse[inverse] = type_id
        return type_id

    def labels_on(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[int]:
        return self.edge_labels.get((from_type, from_id, to_type, to_id), [])

    def add_label(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int
    ) -> None:
        """Associate (if not yet) and put a USER_DEFINED label on it, the inverse the other way."""
        self.associate(from_type, from_id, to_type, to_id)
        for key, label in (
            ((from_type, from_id, to_type, to_id), type_id),
            ((to_type, to_id, from_type, from_id), self.label_inverse[type_id]),
        ):
            labels = self.edge_labels.setdefault(key, [])
            if label not in labels:
                labels.append(label)

    def remove_label(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int
    ) -> None:
        for key, label in (
            ((from_type, from_id, to_type, to_id), type_id),
            ((to_type, to_id, from_type, from_id), self.label_inverse.get(type_id)),
        ):
            labels = self.edge_labels.get(key, [])
            if label in labels:
                labels.remove(label)

    def type_id(self, object_type: str) -> str:
        """`0-2` for companies, `2-…` for a custom object type; other names stay as they are."""
        if object_type in OBJECT_TYPE_IDS:
            return OBJECT_TYPE_IDS[object_type]
        schema = self.schemas.get(object_type)
        return str(schema["objectTypeId"]) if schema else object_type

    def canonical_id(self, object_type: str, object_id: str) -> str:
        """The id a record answers to: a merged-away id leads to the primary it went into."""
        return self.merged_into.get(object_type, {}).get(object_id, object_id)

    def archive(self, object_type: str, obj: HsObject) -> None:
        """Move a record to the recycling bin: `hs_lastmodifieddate` stays, lists drop it."""
        if obj.archived:
            return
        obj.archived = True
        obj.archived_at = hubspot_iso(utc_now())
        self.leave_lists(object_type, obj.id)

    def leave_lists(self, object_type: str, record_id: str) -> list[HsList]:
        """Take a record out of every list of its object type; the lists it left."""
        left = []
        now = hubspot_iso(utc_now())
        for lst in self.lists.values():
            if record_id in lst.members and self.resolve_type(lst.object_type_id) == object_type:
                del lst.members[record_id]
                lst.version += 1
                lst.updated_at = now
                left.append(lst)
        return left

    def merge(self, object_type: str, primary: HsObject, merged: HsObject) -> None:
        """Fold `merged` into `primary` as HubSpot's merge does.

        The merged record's associations (labels kept) and list memberships move to
        the primary, its id (and the ids merged into it before) join the primary's
        `hs_merged_object_ids` (a `;` list), and the id goes on answering reads with
        the primary. The primary is written, so its `hs_lastmodifieddate` moves; the
        merged record is gone, not archived.
        """
        for (a_type, b_type), by_id in list(self.associations.items()):
            if a_type != object_type:
                continue
            for to_id in list(by_id.get(merged.id, [])):
                labels = list(self.labels_on(a_type, merged.id, b_type, to_id))
                self.dissociate(a_type, merged.id, b_type, to_id)
                if (b_type, to_id) == (object_type, primary.id):
                    continue
                self.associate(a_type, primary.id, b_type, to_id)
                for label in labels:
                    self.add_label(a_type, primary.id, b_type, to_id, label)
        now = hubspot_iso(utc_now())
        for lst in self.leave_lists(object_type, merged.id):
            lst.members.setdefault(primary.id, now)
        ids = [
            *(primary.properties.get("hs_merged_object_ids") or "").split(";"),
            merged.id,
            *(merged.properties.get("hs_merged_object_ids") or "").split(";"),
        ]
        primary.properties["hs_merged_object_ids"] = ";".join(i for i in ids if i)
        self.properties[object_type].setdefault(
            "hs_merged_object_ids",
            property_definition(
                object_type,
                "hs_merged_object_ids",
                "enumeration",
                hubspot_defined=True,
                created=now,
            ),
        )
        del self.objects[object_type][merged.id]
        aliases = self.merged_into.setdefault(object_type, {})
        for old, new in aliases.items():
            if new == merged.id:
                aliases[old] = primary.id
        aliases[merged.id] = primary.id
        self.touch(object_type, primary)

    def add_schema(self, egg: Mapping[str, Any]) -> dict[str, Any]:
        """Define a custom object type from an ObjectSchemaEgg; returns its stored schema.

        The caller has checked the egg (name free, property names, associated types).
        Shape: ObjectSchema of HubSpot/HubSpot-public-api-spec-collection,
        PublicApiSpecs/CRM/Schemas/Rollouts/145900/v3/schemas.json.
        """
        name = str(egg["name"]).lower()
        given = str(egg.get("objectTypeId") or "")
        number = int(given.split("-", 1)[1]) if given else next(self.next_custom_type_id)
        fqn = f"p{PORTAL_ID}_{name}"
        now = hubspot_iso(utc_now())
        self.ensure_type(fqn)
        for prop in egg.get("properties") or []:
            definition = property_definition(
                fqn,
                str(prop["name"]),
                str(prop.get("type") or "string"),
                hubspot_defined=False,
                created=now,
            )
            definition.update({k: prop[k] for k in PROPERTY_FIELDS if k in prop})
            self.properties[fqn][str(prop["name"])] = definition
        object_type_id = f"2-{number}"
        associations = []
        for target in egg.get("associatedObjects") or []:
            to_type = self.resolve_type(str(target)) or str(target)
            associations.append(
                {
                    "id": str(association_type_id(fqn, to_type)),
                    "name": f"{name}_to_{SINGULAR.get(to_type, to_type)}",
                    "fromObjectTypeId": object_type_id,
                    "toObjectTypeId": self.type_id(to_type),
                    "createdAt": now,
                    "updatedAt": now,
                }
            )
        schema: dict[str, Any] = {
            "id": str(number),
            "objectTypeId": object_type_id,
            "fullyQualifiedName": fqn,
            "name": name,
            "labels": dict(egg.get("labels") or {}),
            "description": egg.get("description"),
            "primaryDisplayProperty": egg.get("primaryDisplayProperty"),
            "secondaryDisplayProperties": list(egg.get("secondaryDisplayProperties") or []),
            "searchableProperties": list(egg.get("searchableProperties") or []),
            "requiredProperties": list(egg.get("requiredProperties") or []),
            "associations": associations,
            "metaType": "PORTAL_SPECIFIC",
            "archived": False,
            "createdAt": now,
            "updatedAt": now,
        }
        self.schemas[fqn] = schema
        self.type_aliases[object_type_id] = fqn
        self.type_aliases[f"p_{name}"] = fqn
        return schema

    def schema_json(self, fqn: str) -> dict[str, Any]:
        """A stored schema with its properties as they are now (created later ones too)."""
        return {**self.schemas[fqn], "properties": list(self.properties[fqn].values())}

    def touch(self, object_type: str, obj: HsObject) -> None:
        """Stamp a write: HubSpot moves `hs_lastmodifieddate` (and contacts' twin) on every one."""
        now = hubspot_iso(utc_now())
        obj.updated_at = now
        obj.properties["hs_lastmodifieddate"] = now
        if object_type == "contacts":
            obj.properties["lastmodifieddate"] = now

    def create_object(
        self, object_type: str, properties: Mapping[str, str | None], object_id: str | None = None
    ) -> HsObject:
        now = hubspot_iso(utc_now())
        object_id = object_id or self.new_id()
        props: dict[str, str | None] = dict(properties)
        created = parse_moment(props.get("createdate"))
        created_at = hubspot_iso(created) if created else now
        props.setdefault("createdate", created_at)
        if props.get("createdate") is None:
            props["createdate"] = created_at
        modified = parse_moment(props.get("hs_lastmodifieddate"))
        updated_at = hubspot_iso(modified) if modified else now
        props["hs_lastmodifieddate"] = props.get("hs_lastmodifieddate") or updated_at
        if object_type == "contacts":
            props["lastmodifieddate"] = props.get("lastmodifieddate") or updated_at
        props["hs_object_id"] = object_id
        obj = HsObject(id=object_id, properties=props, created_at=created_at, updated_at=updated_at)
        self.objects[object_type][object_id] = obj
        return obj

    def define_implicit(
        self, object_type: str, records: Iterable[Mapping[str, str | None]]
    ) -> None:
        """Seeded property names count as defined, as if an admin had created them.

        The type fits every seeded value (`_common_type`): a date column whose values
        mix ISO dates and epoch milliseconds (both of which HubSpot accepts for a date
        property) is a datetime, not a number because its first value was digits.
        """
        defs = self.properties[object_type]
        seen: dict[str, set[str]] = {}
        for properties in records:
            for name, value in properties.items():
                if name not in defs and value is not None:
                    seen.setdefault(name, set()).add(_infer_type(value))
                elif name not in defs:
                    seen.setdefault(name, set())
        now = hubspot_iso(utc_now())
        for name, kinds in seen.items():
            defs[name] = property_definition(
                object_type, name, _common_type(kinds), hubspot_defined=False, created=now
            )
            self.inferred.add((object_type, name))


# The sandbox bot's Slack user id; it is a member of the channels the state says.
BOT_USER_ID = "U0HEALTHBOT"
# A burst of a few messages per channel, then `slack_channel_rate` a second, as Slack's
# "special" limit on chat.postMessage allows (https://api.slack.com/docs/rate-limits).
SLACK_CHANNEL_BURST = 3


def slack_tokens_of(
    tokens: Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]] | None:
    """The Slack part (`xox…` tokens) of a token -> scopes mapping shared with HubSpot.

    None when there is no mapping or it names no Slack token: Slack then accepts any
    non-empty token with every scope, as before scopes were modelled.
    """
    found = {t: tuple(s) for t, s in (tokens or {}).items() if t.startswith("xox")}
    return found or None


@dataclass
class SlackState:
    """Slack's users, channels (with members), DMs, messages and the per-token scopes.

    `tokens` maps token -> scopes (None: any token, every scope). `channel_rate` is
    chat.postMessage's messages per second per channel (None: no limit), spent from a
    bucket of `SLACK_CHANNEL_BURST`; `clock` is the time source so tests are exact.
    """

    users: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> channel
    members: dict[str, set[str]] = field(default_factory=dict)  # channel id -> user ids
    dms: dict[str, str] = field(default_factory=dict)  # user id -> D channel id
    messages: list[dict[str, Any]] = field(default_factory=list)
    last_ts: float = 0.0
    tokens: dict[str, tuple[str, ...]] | None = None
    channel_rate: float | None = None
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (level, at)

    def next_ts(self) -> str:
        """Slack message timestamps: unique, increasing, `seconds.micros`."""
        now = max(time.time(), self.last_ts + 0.000001)
        self.last_ts = now
        return f"{now:.6f}"

    def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        return next((u for u in self.users if u["id"] == user_id), None)

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        name = name.lstrip("#")
        return next((c for c in self.channels.values() if c["name"] == name), None)

    def add_channel(
        self,
        name: str,
        *,
        is_private: bool = False,
        bot_member: bool = False,
        is_archived: bool = False,
    ) -> dict[str, Any]:
        """A channel with every seeded user in it, and the bot only if `bot_member`."""
        channel_id = f"C{len(self.channels) + 1:08d}"
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name.lstrip("#"),
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_archived": is_archived,
            "is_general": name.lstrip("#") == "general",
            "created": int(time.time()),
        }
        self.members[channel_id] = {u["id"] for u in self.users}
        if bot_member:
            self.members[channel_id].add(BOT_USER_ID)
        return self.channels[channel_id]

    def bot_in(self, channel_id: str) -> bool:
        return BOT_USER_ID in self.members.get(channel_id, set())

    def take_send_slot(self, channel_id: str) -> float:
        """Spend one message of the channel's bucket: 0.0 if it may go, else seconds to wait."""
        if self.channel_rate is None:
            return 0.0
        now = self.clock()
        level, at = self.buckets.get(channel_id, (float(SLACK_CHANNEL_BURST), now))
        level = min(float(SLACK_CHANNEL_BURST), level + (now - at) * self.channel_rate)
        if level < 1.0:
            self.buckets[channel_id] = (level, now)
            return (1.0 - level) / self.channel_rate
        self.buckets[channel_id] = (level - 1.0, now)
        return 0.0

    def keep_settings(self, previous: SlackState) -> None:
        """Carry tokens, rate and clock over a `reset()`; the buckets start full again."""
        self.tokens = previous.tokens
        self.channel_rate = previous.channel_rate
        self.clock = previous.clock


@dataclass
class JiraState:
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> project
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> issue record
    next_issue_id: itertools.count[int] = field(default_factory=lambda: itertools.count(10001))
    next_comment_id: itertools.count[int] = field(default_factory=lambda: itertools.count(10001))
    project_counters: dict[str, int] = field(default_factory=dict)


DEFAULT_CHANNELS = ("cs-alerts", "cs-leadership", "general")


@dataclass
class SandboxState:
    """Everything the sandboxes remember; rebuilt from a seed by `reset()`."""

    hubspot: HubSpotState = field(default_factory=HubSpotState)
    slack: SlackState = field(default_factory=SlackState)
    jira: JiraState = field(default_factory=JiraState)
    jira_deployment_type: str = "Server"
    search_cap: int = 10_000
    """CRM search's result cap per query (HubSpot's is 10,000; smaller caps keep tests small)."""
    export_daily_limit: int = 30
    """CRM exports started per rolling 24 hours (HubSpot's Exports guide, "Limits": 30)."""
    export_seconds: float = 0.0
    """Seconds an export stays PROCESSING before it is COMPLETE (0: ready at once)."""
    export_partition_rows: int = 1_000_000
    """Rows past which an export's file is a ZIP of CSVs of at most this many rows each
    (HubSpot changelog "Large Export Partitioning and Association Limits", 2025-04-28).
    Like `search_cap`, these three are settings: `reset()` keeps them."""

    @classmethod
    def from_seed(
        cls,
        seed: Mapping[str, Any] | CrmSnapshot | None = None,
        *,
        jira_deployment_type: str = "Server",
        slack_tokens: Mapping[str, Sequence[str]] | None = None,
        slack_channel_rate: float | None = None,
    ) -> SandboxState:
        """`slack_tokens` may be the whole token -> scopes mapping; only `xox…` keys count."""
        state = cls(jira_deployment_type=jira_deployment_type)
        state.slack.tokens = slack_tokens_of(slack_tokens)
        state.slack.channel_rate = slack_channel_rate
        state.reset(seed)
        return state

    def reset(self, seed: Mapping[str, Any] | CrmSnapshot | None = None) -> None:
        data: dict[str, Any] = (
            dict(seed.to_json()) if isinstance(seed, CrmSnapshot) else dict(seed or {})
        )
        extras = {
            k: data.pop(k)
            for k in ("slack_users", "slack_channels", "jira_projects", "schemas", "lists")
            if k in data
        }
        labelled = _split_labels(data)
        snapshot = CrmSnapshot.from_json(data, origin="sandbox seed")
        self.hubspot = _seed_hubspot(snapshot, extras.get("schemas"))
        _seed_hubspot_extras(self.hubspot, extras.get("lists"), labelled)
        previous = self.slack
        self.slack = _seed_slack(snapshot, extras.get("slack_users"), extras.get("slack_channels"))
        self.slack.keep_settings(previous)
        self.jira = _seed_jira(extras.get("jira_projects"))


# (from key, from id, to key, to id, labels) of a seed's labelled associations.
Labelled = list[tuple[str, str, str, str, list[str]]]


def _split_labels(data: dict[str, Any]) -> Labelled:
    """Rewrite labelled association entries of `data` to plain ids; return the labels.

    `CrmSnapshot` reads ids only, so `{"id": "101", "labels": [...]}` becomes "101"
    for it and the labels are applied once the records exist. Records are copied,
    never changed in place: the caller's seed stays as it was.
    """
    labelled: Labelled = []
    for key, records in data.items():
        if key == "owners" or not isinstance(records, list):
            continue
        data[key] = [_plain_record(key, r, labelled) for r in records]
    return labelled


def _plain_record(key: str, record: Any, labelled: Labelled) -> Any:
    assoc = record.get("associations") if isinstance(record, Mapping) else None
    if not isinstance(assoc, Mapping):
        return record
    plain: dict[str, Any] = {}
    for to_key, entries in assoc.items():
        if not isinstance(entries, list):
            plain[to_key] = entries
            continue
        plain[to_key] = []
        for entry in entries:
            if isinstance(entry, Mapping):
                to_id = str(entry.get("id", ""))
                labels = [str(label) for label in entry.get("labels") or []]
                labelled.append((key, str(record.get("id")), str(to_key), to_id, labels))
                entry = to_id
            plain[to_key].append(entry)
    return {**record, "associations": plain}


def _seed_type(hs: HubSpotState, key: str) -> str:
    """A seed's object type key: a custom type's bare name too, unlike the API."""
    for fqn, schema in hs.schemas.items():
        if schema["name"] == key.lower():
            return fqn
    return hs.resolve_type(key) or key


def _seed_hubspot_extras(hs: HubSpotState, lists: Any, labelled: Labelled) -> None:
    """Association labels and lists, once `_seed_hubspot` has made the records."""
    for from_key, from_id, to_key, to_id, labels in labelled:
        from_type, to_type = _seed_type(hs, from_key), _seed_type(hs, to_key)
        for label in labels:
            type_id = hs.define_label(from_type, to_type, label)
            hs.add_label(from_type, from_id, to_type, to_id, type_id)
    entries = [dict(e) for e in lists or []]
    numeric = [int(e["listId"]) for e in entries if str(e.get("listId", "")).isdigit()]
    hs.next_list_id = itertools.count(max([*numeric, 0]) + 1)
    now = hubspot_iso(utc_now())
    for entry in entries:
        if not entry.get("name") or not entry.get("objectTypeId"):
            raise SnapshotError("sandbox seed: lists: each list needs a name and an objectTypeId")
        new = HsList(
            list_id=str(entry.get("listId") or next(hs.next_list_id)),
            name=str(entry["name"]),
            object_type_id=str(entry["objectTypeId"]),
            processing_type=str(entry.get("processingType") or "MANUAL"),
            created_at=now,
            updated_at=now,
            members={str(m): now for m in entry.get("members") or []},
        )
        hs.lists[new.list_id] = new


def _seed_schemas(hs: HubSpotState, schemas: Any) -> None:
    for i, egg in enumerate(schemas or []):
        if not isinstance(egg, Mapping) or not egg.get("name"):
            raise SnapshotError(f"sandbox seed: schemas[{i}]: a custom object type needs a name")
        hs.add_schema(egg)


def _seed_hubspot(snapshot: CrmSnapshot, schemas: Any = None) -> HubSpotState:
    hs = HubSpotState()
    for object_type in OBJECT_TYPE_IDS:
        hs.ensure_type(object_type)
    _seed_schemas(hs, schemas)
    now = hubspot_iso(utc_now())
    for i, owner in enumerate(snapshot.owners):
        hs.owners.append(
            {
                **owner.to_json(),
                "userId": 9_000_000 + i,
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
                "teams": [],
                "type": "PERSON",
            }
        )
    numeric = [
        int(r.id) for records in snapshot.objects.values() for r in records if r.id.isdigit()
    ]
    hs.next_id = itertools.count(max([*numeric, 1000]) + 1)
    for key, records in snapshot.objects.items():
        object_type = _seed_type(hs, key)
        hs.ensure_type(object_type)
        hs.define_implicit(object_type, (record.properties for record in records))
        for record in records:
            hs.create_object(object_type, record.properties, object_id=record.id)
    for key, records in snapshot.objects.items():
        object_type = _seed_type(hs, key)
        for record in records:
            for to_type_name, ids in record.associations.items():
                to_type = _seed_type(hs, to_type_name)
                hs.ensure_type(to_type)
                for to_id in ids:
                    hs.associate(object_type, record.id, to_type, to_id)
    return hs


def _seed_slack(
    snapshot: CrmSnapshot, users: list[dict[str, Any]] | None, channels: list[Any] | None
) -> SlackState:
    slack = SlackState()
    if users is None:
        users = [
            {"email": o.email, "name": o.display_name, "id": f"U{o.id.upper():0>8}"}
            for o in snapshot.owners
            if o.email
        ]
    for i, user in enumerate(users):
        slack.users.append(
            {
                "id": str(user.get("id") or f"U{i + 1:08d}"),
                "email": user["email"],
                "name": user.get("name") or user["email"].split("@")[0],
            }
        )
    wanted: list[dict[str, Any]] = [{"name": n, "bot_member": True} for n in DEFAULT_CHANNELS]
    for channel in channels or []:
        entry = {"name": channel} if isinstance(channel, str) else dict(channel)
        entry["name"] = str(entry.get("name", "")).lstrip("#")
        if entry["name"] and entry["name"] not in {w["name"] for w in wanted}:
            wanted.append({"bot_member": True, **entry})
    for entry in wanted:
        slack.add_channel(
            entry["name"],
            is_private=bool(entry.get("is_private", False)),
            bot_member=bool(entry["bot_member"]),
            is_archived=bool(entry.get("is_archived", False)),
        )
    return slack


def _seed_jira(projects: list[Any] | None) -> JiraState:
    jira = JiraState()
    wanted: list[dict[str, Any]] = [{"key": "CS", "name": "Customer Success"}]
    for project in projects or []:
        entry = {"key": project} if isinstance(project, str) else dict(project)
        if entry["key"] not in {p["key"] for p in wanted}:
            wanted.append(entry)
    for i, project in enumerate(wanted):
        key = str(project["key"]).upper()
        jira.projects[key] = {
            "id": str(10000 + i),
            "key": key,
            "name": project.get("name") or key,
            # Issue type names the project offers; None: every type the sandbox knows.
            "issue_types": list(project["issue_types"]) if project.get("issue_types") else None,
            # False: the bot may browse but not create issues (403, and mypermissions says so).
            "can_create": bool(project.get("can_create", True)),
        }
        jira.project_counters[key] = 0
    return jira
