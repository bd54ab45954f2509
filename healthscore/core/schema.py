"""The playbook format as a JSON Schema: one definition, two uses.

`healthscore validate` validates against this schema with `jsonschema` (and
`healthscore.core.playbook.check`'s semantic checks on top) to point at the exact
line of a mistake, and `healthscore schema` publishes it so editors
(yaml-language-server) autocomplete playbooks. Every field has a description
because CS ops read them as tooltips.

The core knows no action kind. An action here is its envelope (`name`, `on`,
`where`, `do`); `playbook_schema(kinds)` adds each kind's fragment, the JSON
Schema of its own keys, which `healthscore.actions.kinds` declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthscore.core.conditions import OPERATORS
from healthscore.core.crm import CUSTOM_OBJECT_PATTERN

SCHEMA_URL = "https://healthscore.dev/schema/playbook.schema.json"

STATUS_COLORS = ["green", "yellow", "red", "orange", "blue", "gray"]
EVENT_TYPES_HINT = "meetings, calls, emails, notes, tasks, tickets, deals, or any associated object"
COMMON_ACTION_FIELDS = ("name", "on", "where", "do")
TEMPLATE_FORMAT = "healthscore-template"
"""The `format` of a string that is a Jinja template; checked when the playbook loads."""
TRIGGERS = {
    "status_changed_to": "fires when the status becomes this label (the first score included)",
    "status_changed_from": "fires when the status leaves this label",
    "score_dropped_by": "fires when the score fell by at least N points within `within_days`",
    "score_rose_by": "fires when the score rose by at least N points within `within_days`",
    "score_at_least": "level: holds while the score is at least N",
    "score_below": "level: holds while the score is below N",
    "status_is": "level: holds while the status is this label",
}

MAX_SEGMENTS = 5
"""HubSpot's health score applies to up to five segments."""

_number = {"type": "number"}
_text = {"type": "string"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


CONDITION = {
    **_obj(
        {
            "property": {"type": "string", "description": "CRM property name (internal name)."},
            "op": {
                "enum": list(OPERATORS),
                "description": "; ".join(f"{k}: {v}" for k, v in OPERATORS.items()),
            },
            "value": {
                "description": "Compared value: a list for in/not_in, [lo, hi] for between, "
                "a number of days for date operators, none for known/unknown."
            },
            "list": {
                "type": "string",
                "description": "A HubSpot list (its name, or its id when all digits): holds when "
                "the record is a member (HubSpot's list membership criteria).",
            },
            "member": {
                "type": "boolean",
                "description": "With `list`: false holds for records that are not members "
                "(default true).",
            },
        },
        description="A condition on one property ({property, op, value}) or a list membership "
        "({list, member}).",
    ),
    "if": {"required": ["list"]},
    "then": True,
    "else": {
        "properties": {
            "property": {"description": "the CRM property the condition reads"},
            "op": {"description": "the operator, e.g. eq, gte, in, known"},
        },
        "required": ["property", "op"],
    },
}
CONDITIONS = {"type": "array", "items": {"$ref": "#/$defs/condition"}}

DECAY = _obj(
    {
        "percent": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "description": "Percent lost per step.",
        },
        "every_days": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Length of a step in days.",
        },
    },
    ["percent", "every_days"],
    description="Older occurrences count less: P * (1 - percent/100) ** floor(age / every_days).",
)

BAND = _obj(
    {
        "exactly": {"type": "integer", "minimum": 0},
        "between": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 2,
            "maxItems": 2,
        },
        "at_least": {"type": "integer", "minimum": 0},
        "points": _number,
    },
    ["points"],
    description="A count band: exactly n, between [a, b] (inclusive) or at_least n.",
)

RULE = _obj(
    {
        "name": {"type": "string", "description": "Shown in reports; default from the rule."},
        "description": _text,
        "when": {**CONDITIONS, "description": "Conditions (AND) for a property rule."},
        "points": {"type": "number", "description": "Points given (may be negative)."},
        "property": {
            "type": "string",
            "description": "Property of a value map or scale; "
            "on an event rule, the event property `points_each` scores.",
        },
        "points_each": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "Points per value (case-insensitive); no match gives 0. On an "
            "event rule: points per matching occurrence by its `property` value.",
        },
        "scale": _obj(
            {
                "from": {"type": "array", "items": _number, "minItems": 2, "maxItems": 2},
                "to": {"type": "array", "items": _number, "minItems": 2, "maxItems": 2},
            },
            ["from", "to"],
            description="Map the value linearly from [a, b] to [c, d], clamped.",
        ),
        "event": {"type": "string", "description": f"Event object type: {EVENT_TYPES_HINT}."},
        "where": {**CONDITIONS, "description": "Conditions on the event's own properties."},
        "within_days": {
            "type": "number",
            "minimum": 0,
            "description": "Only events from as-of minus N days to as-of count (default: all).",
        },
        "timestamp_property": {
            "type": "string",
            "description": "Event time property (default hs_timestamp, else createdate).",
        },
        "limit": {"type": "number", "minimum": 0, "description": "Cap on |total| (after decay)."},
        "decay": {"$ref": "#/$defs/decay"},
        "frequency": {
            "type": "array",
            "items": {"$ref": "#/$defs/band"},
            "minItems": 1,
            "description": "Bands on the count of matching events; the first that holds wins.",
        },
        "associated": {
            "type": "string",
            "description": "Associated object type whose records are scored (contacts, deals...).",
        },
        "aggregate": {
            "enum": ["sum", "avg", "min", "max"],
            "description": "How matching associated records combine (default sum).",
        },
        "label": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "minItems": 1,
            "description": "Association label(s) (e.g. Decision maker): only records "
            "associated with one of these labels count.",
        },
    },
    description="One rule: property (when+points), value map (property+points_each), scale "
    "(property+scale), event (event+points or frequency), or associated records.",
)

ENRICH = _obj(
    {
        "name": {
            "type": "string",
            "description": "Names the entry in reports and `explain` (`enrich:<name>`).",
        },
        "url_env": {
            "type": "string",
            "description": "Environment variable holding the SQLAlchemy URL of the database "
            "(e.g. WAREHOUSE_URL); else the Prefect Secret block of the same name in lower "
            "case with dashes (warehouse-url). Keeps the password out of the playbook.",
        },
        "url": {
            "type": "string",
            "description": "A SQLAlchemy URL without password (e.g. sqlite:///usage.db); a URL "
            "with a password is refused: use `url_env`.",
        },
        "query": {
            "type": "string",
            "description": "SQL returning one row per account, with the key column.",
        },
        "file": {
            "type": "string",
            "description": "A .csv or .parquet file (relative to the playbook's folder), one row "
            "per account, with the key column.",
        },
        "writeback": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "description": "Columns the write-back copies to HubSpot properties of the scored "
            "object (`<playbook>_<column>`, text), so HubSpot views and workflows see them.",
        },
        "key": _obj(
            {
                "account": {
                    "type": "string",
                    "description": "Account property to match (case-insensitive, e.g. domain), "
                    "or hs_object_id for the record id.",
                },
                "column": {"type": "string", "description": "Column holding the same value."},
            },
            ["account", "column"],
            description="How rows are joined onto accounts.",
        ),
    },
    ["name", "key"],
    description="Columns from a database query or a file, joined onto the accounts before "
    "scoring: each becomes a property (text, as HubSpot's).",
)

GROUP = _obj(
    {
        "name": {"type": "string"},
        "description": _text,
        "weight": {"type": "number", "minimum": 0, "description": "Read when combine: weighted."},
        "max_points": {"type": "number", "description": "Group cap (required when weighted)."},
        "min_points": {"type": "number", "description": "Group floor (default: none)."},
        "start": {"type": "number", "description": "Points before any rule (default 0)."},
        "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "minItems": 1},
    },
    ["name", "rules"],
)

THRESHOLD = _obj(
    {
        "min": {"type": "number", "description": "Lowest score of this status."},
        "label": {"type": "string"},
        "color": {"enum": STATUS_COLORS},
    },
    ["min", "label"],
)

TRIGGER = _obj(
    {
        **{name: {"description": doc} for name, doc in TRIGGERS.items()},
        "within_days": {"type": "number", "exclusiveMinimum": 0},
        "every_run": {
            "type": "boolean",
            "description": "Level triggers fire every run, not once per entry into the state.",
        },
    },
    description="Exactly one trigger: " + ", ".join(TRIGGERS),
)

ACTION_ENVELOPE = {
    "name": {"type": "string", "description": "Shown in logs and the ledger; default from `do`."},
    "on": {"$ref": "#/$defs/trigger"},
    "where": {**CONDITIONS, "description": "Extra conditions on the account's properties."},
    "do": {"type": "string", "description": "The action kind."},
}

KindSchemas = Mapping[str, Mapping[str, Any]]
"""Action kind name (`do:`) -> JSON Schema of its own keys: `properties` and `required`."""


def action_schema(kinds: KindSchemas | None) -> dict[str, Any]:
    """An action: the envelope, and with `kinds` each kind's keys through `if do == kind`.

    Without kinds any `do` name passes and the other keys are not checked (the
    scoring-only reading of a playbook). With kinds, `do` must name one, every
    key must belong to some kind (else "unknown field"), and the `then` of the
    action's kind requires its keys and rejects the keys of other kinds.
    """
    if kinds is None:
        return {"type": "object", "properties": ACTION_ENVELOPE, "required": ["on", "do"]}
    documented: dict[str, list[str]] = {}
    for kind, fragment in kinds.items():
        for key, definition in fragment.get("properties", {}).items():
            documented.setdefault(key, []).append(f"{kind}: {definition.get('description', '')}")
    return _obj(
        {
            **ACTION_ENVELOPE,
            "do": {"enum": list(kinds), "description": "The action kind."},
            **{key: {"description": "; ".join(docs)} for key, docs in documented.items()},
        },
        ["on", "do"],
        allOf=[
            {
                "if": {"properties": {"do": {"const": kind}}, "required": ["do"]},
                "then": _obj(
                    {**dict.fromkeys(COMMON_ACTION_FIELDS, True), **fragment["properties"]},
                    list(fragment.get("required", [])),
                ),
            }
            for kind, fragment in kinds.items()
        ],
    )


def playbook_schema(kinds: KindSchemas | None = None) -> dict[str, Any]:
    """The whole playbook format; `kinds` as in `action_schema`."""
    return {
        **PLAYBOOK_SCHEMA,
        "$defs": {**PLAYBOOK_SCHEMA["$defs"], "action": action_schema(kinds)},
    }


PLAYBOOK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_URL,
    "title": "healthscore playbook",
    "description": "Which accounts are scored, how points are given, how the score maps to a "
    "status, and what happens when it changes.",
    **_obj(
        {
            "name": {"type": "string", "description": "Also the HubSpot property label prefix."},
            "description": _text,
            "object": {
                "anyOf": [
                    {"enum": ["companies", "contacts"]},
                    {"type": "string", "pattern": CUSTOM_OBJECT_PATTERN},
                ],
                "description": "Scored object type: companies, contacts, or a custom object "
                "(its object type id such as 2-1234567, or its fully qualified name).",
            },
            "segment": {**CONDITIONS, "description": "Only accounts matching all are scored."},
            "segments": {
                "type": "array",
                "items": {**CONDITIONS, "minItems": 1},
                "minItems": 1,
                "maxItems": MAX_SEGMENTS,
                "description": f"Up to {MAX_SEGMENTS} condition lists: an account is scored "
                "when it matches all conditions of any one (HubSpot's segments).",
            },
            "derived": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Named arithmetic on properties: + - * / ( ) and numbers.",
            },
            "enrich": {
                "type": "array",
                "items": {"$ref": "#/$defs/enrich"},
                "description": "Warehouse queries or files joined onto the accounts before "
                "scoring (product usage...); their columns become properties.",
            },
            "combine": {"enum": ["sum", "weighted"], "description": "sum (HubSpot) | weighted."},
            "groups": {"type": "array", "items": {"$ref": "#/$defs/group"}, "minItems": 1},
            "thresholds": {"type": "array", "items": {"$ref": "#/$defs/threshold"}, "minItems": 1},
            "trend": _obj(
                {
                    "compare_days": {"type": "number", "minimum": 0},
                    "flat_band": {"type": "number", "minimum": 0},
                }
            ),
            "actions": {"type": "array", "items": {"$ref": "#/$defs/action"}},
            "writeback": {
                "type": ["boolean", "object"],
                "properties": {
                    "prefix": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "maxLength": 50,
                        "description": "Internal names' prefix: <prefix>_score, _status, "
                        "_trend, _group_<group> (default: from the playbook name).",
                    },
                    "label": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 80,
                        "description": "Labels' start, `<label>: score`, and the property "
                        "group's label (default: the playbook name).",
                    },
                    "group": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "maxLength": 100,
                        "description": "Internal name of the property group (default: the "
                        "prefix); an existing group is used as it is.",
                    },
                },
                "additionalProperties": False,
                "description": "Write score, status, trend and groups to HubSpot (default "
                "true; false: off; a mapping names the properties: prefix, label, group).",
            },
            "timezone": {
                "type": "string",
                "description": "IANA time zone (e.g. Europe/Berlin) in which a trigger's "
                "`within_days` counts calendar days (default UTC).",
            },
            "enroll_existing": {
                "type": "boolean",
                "description": "Send actions on the playbook's first run too (default false: "
                "the first run is a baseline).",
            },
        },
        ["name", "groups"],
    ),
    "$defs": {
        "condition": CONDITION,
        "enrich": ENRICH,
        "decay": DECAY,
        "band": BAND,
        "rule": RULE,
        "group": GROUP,
        "threshold": THRESHOLD,
        "trigger": TRIGGER,
        "action": action_schema(None),
    },
}
