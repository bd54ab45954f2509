"""Property values checked against their definitions, and definitions checked as HubSpot does.

Value rules (HubSpot's "How should timestamps be formatted" FAQ, the changelog
"Enhanced Validations for Non-String Properties" and the validator codes its
API answers with): enumeration values must be option values (`;` separates
the values of a multi-select `checkbox`), numbers must parse (`INVALID_LONG`),
`bool` is `true`/`false`, a `date` is `YYYY-MM-DD` or epoch milliseconds at
midnight UTC (`INVALID_DATE`, "... is at 13:1:0.0 UTC, not midnight!"), a
`datetime` is ISO 8601 or epoch milliseconds; non-string values must not carry
leading or trailing whitespace. An empty value clears the property and is
always accepted. Definitions without options (the sandbox's built-in HubSpot
enumerations) and definitions guessed from seeded values are not type-checked.

Definition rules follow `PropertyCreate`/`PropertyUpdate` in the repository
HubSpot-public-api-spec-collection, file
`PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json` (the `type`
and `fieldType` enums, options required for enumerations) and the type/fieldType
table of HubSpot's properties guide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .timefmt import parse_moment

PROPERTY_TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
FIELD_TYPES = (
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
)
# The properties guide's "Property type and fieldType values" table.
FIELD_TYPES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "bool": ("booleancheckbox", "calculation_equation"),
    "enumeration": ("booleancheckbox", "checkbox", "radio", "select", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "string": ("text", "textarea", "file", "html", "phonenumber", "calculation_equation"),
    "number": ("number", "calculation_equation"),
    "phone_number": ("phonenumber",),
}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME = 100


@dataclass(frozen=True)
class Problem:
    """One refused value: HubSpot's validator code, its message, where it was found."""

    name: str
    code: str
    message: str
    context: dict[str, list[str]] = field(default_factory=dict)

    def legacy(self) -> dict[str, Any]:
        """The entry HubSpot serialises into "Property values were not valid: [...]"."""
        return {
            "isValid": False,
            "message": self.message,
            "error": self.code,
            "name": self.name,
            "localizedErrorMessage": self.message,
        }

    def detail(self) -> dict[str, Any]:
        """An `ErrorDetail` of the spec's `Error.errors`."""
        return {
            "message": self.message,
            "code": self.code,
            "in": self.name,
            "context": {"propertyName": [self.name], **self.context},
        }


def _not_midnight(text: str, moment: datetime) -> str:
    fraction = moment.microsecond / 1_000_000
    return (
        f"{text} is at {moment.hour}:{moment.minute}:{moment.second + fraction} UTC, not midnight!"
    )


def _date_problem(text: str) -> tuple[str, str] | None:
    moment = parse_moment(text)
    if moment is None:
        return "INVALID_DATE", f"{text} was not a valid date."
    moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        return "INVALID_DATE", _not_midnight(text, moment)
    return None


def _enum_problem(text: str, definition: Mapping[str, Any]) -> tuple[str, str] | None:
    allowed = [str(o.get("value")) for o in definition.get("options") or []]
    if not allowed:
        return None
    parts = text.split(";") if definition.get("fieldType") == "checkbox" else [text]
    for part in parts:
        if part not in allowed:
            return "INVALID_OPTION", (
                f"{part} was not one of the allowed options: [{', '.join(allowed)}]"
            )
    return None


def value_problem(definition: Mapping[str, Any], value: str) -> tuple[str, str] | None:
    """(code, message) when `value` does not fit `definition`; None when it does."""
    kind = definition.get("type")
    if value == "" or kind in ("string", "phone_number", None):
        return None
    if value != value.strip():
        return "LEADING_TRAILING_WHITESPACE", f'"{value}" includes leading or trailing whitespace.'
    if kind == "enumeration":
        return _enum_problem(value, definition)
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return "INVALID_LONG", f"{value} was not a valid long."
        return None
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            return "INVALID_BOOLEAN", f"{value} was not a valid boolean."
        return None
    if kind == "date":
        return _date_problem(value)
    if kind == "datetime" and parse_moment(value) is None:
        return "INVALID_DATE", f"{value} was not a valid datetime."
    return None


def check_values(
    defined: Mapping[str, Mapping[str, Any]],
    unchecked: set[str],
    props: Mapping[str, str | None],
    context: dict[str, list[str]],
) -> list[Problem]:
    """Every problem of one input; `unchecked` names definitions guessed from seeded data."""
    problems: list[Problem] = []
    for name, value in props.items():
        definition = defined.get(name)
        if definition is None:
            problems.append(
                Problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', context)
            )
            continue
        if value is None or name in unchecked:
            continue
        found = value_problem(definition, value)
        if found:
            problems.append(Problem(name, found[0], found[1], context))
    return problems


# ---------------------------------------------------------------- definitions


def _options_problem(options: Any) -> str | None:
    if not isinstance(options, list) or not options:
        return "Enumeration properties must have at least one option."
    values: list[str] = []
    for option in options:
        if not isinstance(option, Mapping) or not option.get("label") or "value" not in option:
            return "Every option needs a label and a value."
        values.append(str(option["value"]))
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        return f"Option values must be unique; repeated: {', '.join(duplicates)}"
    return None


def definition_problem(body: Mapping[str, Any], *, creating: bool) -> tuple[str, str] | None:
    """(field, message) for the first thing HubSpot would refuse in a definition."""
    if creating:
        name = str(body.get("name", ""))
        if len(name) > MAX_NAME:
            return "name", f"Property name {name} is longer than {MAX_NAME} characters."
        if not NAME_PATTERN.fullmatch(name):
            return "name", (
                f"Property name {name} is invalid: it must start with a lowercase letter and "
                "contain only lowercase letters, numbers and underscores."
            )
    kind = body.get("type")
    if kind not in PROPERTY_TYPES:
        return "type", f"Invalid type {kind}; expected one of [{', '.join(PROPERTY_TYPES)}]"
    field_type = body.get("fieldType")
    if field_type not in FIELD_TYPES:
        return "fieldType", (
            f"Invalid fieldType {field_type}; expected one of [{', '.join(FIELD_TYPES)}]"
        )
    if field_type not in FIELD_TYPES_BY_TYPE[str(kind)]:
        allowed = ", ".join(FIELD_TYPES_BY_TYPE[str(kind)])
        return "fieldType", (
            f"fieldType {field_type} is not valid for type {kind}; use one of [{allowed}]"
        )
    if kind == "enumeration":
        problem = _options_problem(body.get("options"))
        if problem:
            return "options", problem
    return None
