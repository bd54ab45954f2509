"""The structure of a playbook, checked by `jsonschema` against the published schema.

`jsonschema` (Draft 2020-12) yields every error with the path of the offending
node (`error.absolute_path`); each becomes a (path, message, hint) in the words
of a playbook author, not of JSON Schema: "must be a number, not the text '10'"
with "write the number without quotes", "unknown field `treshold`" with "did you
mean `thresholds`?". The line comes later, from the path (`issues.position_of`).

Two readings differ from plain JSON Schema, on purpose: a number must be finite
(`.inf` or `.nan` would make every score inf or NaN) and an integer must be
written as one (`2.0` is not a count of meetings).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend

from healthscore.core.playbook.hints import (
    ENUM_HINTS,
    article,
    describe_type,
    did_you_mean,
    field_doc,
    is_number,
    template_hint,
    unquote_hint,
)
from healthscore.core.playbook.issues import Path_
from healthscore.core.playbook.model import show_value
from healthscore.core.schema import TEMPLATE_FORMAT
from healthscore.core.templates import TemplateProblem, check_template

Problem = tuple[Path_, str, str | None]
"""(field path, message, hint or None)."""


def _is_integer(_: Any, node: Any) -> bool:
    return isinstance(node, int) and not isinstance(node, bool)


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"number": lambda _, node: is_number(node), "integer": _is_integer}
)
_Validator = extend(Draft202012Validator, type_checker=_TYPES)
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks(TEMPLATE_FORMAT, raises=TemplateProblem)
def _template(value: object) -> bool:
    if isinstance(value, str):
        check_template(value)
    return True


def structure_problems(data: Any, schema: Mapping[str, Any]) -> list[Problem]:
    """Every way `data` breaks `schema`, in the schema's order; one problem per field."""
    validator = _Validator(schema, format_checker=_FORMATS)
    problems: list[Problem] = []
    extra_keys: set[Path_] = set()
    for error in validator.iter_errors(data):
        for path, message, hint in _explain(error):
            if error.validator == "additionalProperties":
                # a key no kind knows is reported once ("unknown field"), not again by
                # the `then` of the action's kind (the envelope comes first in the schema)
                if path in extra_keys:
                    continue
                extra_keys.add(path)
            problems.append((path, message, hint))
    return problems


def _explain(error: ValidationError) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    node, schema, keyword = error.instance, error.schema, error.validator
    if isinstance(schema, bool):  # `false` never happens in our schema
        yield path, error.message, None
        return
    in_kind = (
        list(error.absolute_schema_path)[-2:-1] == ["then"]
        and isinstance(node, Mapping)
        and "do" in node
    )
    if keyword == "enum":
        options = [str(o) for o in schema["enum"]]
        yield (
            path,
            f"{show_value(node)} is not one of: {', '.join(options)}",
            did_you_mean(str(node), options) or ENUM_HINTS.get(path),
        )
    elif keyword == "anyOf" and path == ("object",):  # the only anyOf of the schema
        yield (
            path,
            f"{show_value(node)} is not one of: companies, contacts, or a custom object "
            "(its object type id such as 2-1234567, or its fully qualified name such as "
            "p1234567_subscriptions)",
            ENUM_HINTS.get(path),
        )
    elif keyword == "type":
        expected = schema["type"]
        if isinstance(node, float) and not math.isfinite(node):
            yield path, f"must be a finite number, not {node}", None
        else:
            numeric = "number" in expected or "integer" in expected
            yield (
                path,
                f"must be {article(expected)}, not {describe_type(node)}",
                unquote_hint(node) if numeric else None,
            )
    elif keyword == "required":
        properties = schema.get("properties", {})
        for key in schema["required"]:
            if key not in node:
                if in_kind:
                    yield path, f"a {node['do']} action needs `{key}`", field_doc(properties, key)
                else:
                    yield path, f"missing required field `{key}`", field_doc(properties, key)
    elif keyword == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        for key in node:
            if key in schema.get("properties", {}):
                continue
            if in_kind:
                yield (*path, str(key)), f"`{key}` is not used by a {node['do']} action", None
            else:
                yield (
                    (*path, str(key)),
                    f"unknown field `{key}`",
                    did_you_mean(str(key), known) or "allowed here: " + ", ".join(known),
                )
    elif keyword in ("minItems", "maxItems"):
        low, high = schema.get("minItems"), schema.get("maxItems")
        if low is not None and low == high:
            yield path, f"must be a list of exactly {low} items, got {len(node)}", None
        elif keyword == "minItems":
            yield path, f"must have at least {low} item{'s' if low > 1 else ''}", None
        else:
            hint = "HubSpot scores at most five segments" if path == ("segments",) else None
            yield path, f"must have at most {high} items", hint
    elif keyword == "minimum":
        yield path, f"must be at least {schema['minimum']}, got {show_value(node)}", None
    elif keyword == "maximum":
        yield path, f"must be at most {schema['maximum']}, got {show_value(node)}", None
    elif keyword == "exclusiveMinimum":
        bound = schema["exclusiveMinimum"]
        yield path, f"must be greater than {bound}, got {show_value(node)}", None
    elif keyword == "format" and isinstance(error.cause, TemplateProblem):
        yield path, str(error.cause), template_hint(str(error.cause))
    else:  # a keyword the schema may gain later: jsonschema's own words
        yield path, error.message, None
