"""In-memory state of the three sandboxes, seeded from a CRM snapshot.

All handlers run on the server's single event loop and never await in the
middle of a change, so the state needs no locks. `reset()` swaps the contents in
place so handlers that hold a reference to a `SandboxState` see the new seed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.crm import OBJECT_TYPE_IDS, CrmSnapshot

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


@dataclass
class HsObject:
    """One CRM record; `properties` hold strings or None, as HubSpot sends them."""

    id: str
    properties: dict[str, str | None]
    created_at: str
    updated_at: str
    archived: bool = False


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
class HubSpotState:
    objects: dict[str, dict[str, HsObject]] = field(default_factory=dict)
    # (from type, to type) -> from id -> ordered to ids; kept in both directions.
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, HsList] = field(default_factory=dict)
    next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    next_list_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def resolve_type(self, name: str) -> str | None:
        """`companies`, `company`, `0-2` -> `companies`; None for a type nobody knows."""
        key = name.strip().lower()
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
        return self.associations.get((from_type, to_type), {}).get(from_id, [])

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

    def define_implicit(self, object_type: str, properties: Mapping[str, str | None]) -> None:
        """Seeded property names count as defined, as if an admin had created them."""
        defs = self.properties[object_type]
        now = hubspot_iso(utc_now())
        for name, value in properties.items():
            if name not in defs:
                defs[name] = property_definition(
                    object_type, name, _infer_type(value), hubspot_defined=False, created=now
                )


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
            k: data.pop(k) for k in ("slack_users", "slack_channels", "jira_projects") if k in data
        }
        snapshot = CrmSnapshot.from_json(data, origin="sandbox seed")
        self.hubspot = _seed_hubspot(snapshot)
        previous = self.slack
        self.slack = _seed_slack(snapshot, extras.get("slack_users"), extras.get("slack_channels"))
        self.slack.keep_settings(previous)
        self.jira = _seed_jira(extras.get("jira_projects"))


def _seed_hubspot(snapshot: CrmSnapshot) -> HubSpotState:
    hs = HubSpotState()
    for object_type in OBJECT_TYPE_IDS:
        hs.ensure_type(object_type)
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
    for object_type, records in snapshot.objects.items():
        hs.ensure_type(object_type)
        for record in records:
            hs.define_implicit(object_type, record.properties)
            hs.create_object(object_type, record.properties, object_id=record.id)
    for object_type, records in snapshot.objects.items():
        for record in records:
            for to_type_name, ids in record.associations.items():
                to_type = hs.resolve_type(to_type_name) or to_type_name
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
