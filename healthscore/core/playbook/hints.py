"""Hints for playbook problems: what the author probably meant, in their words.

Operators people write from SQL, spreadsheets and HubSpot's filter labels
(`>=`, `equals`, `is_any_of`), close misspellings (difflib), numbers in quotes,
template variables: each problem gets the fix that most likely applies.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from healthscore.core.conditions import DATE_OPERATORS, LIST_OPERATORS
from healthscore.core.playbook.issues import Path_
from healthscore.core.playbook.model import show_value
from healthscore.core.templates import TEMPLATE_VARIABLES
from healthscore.core.values import as_number


def is_number(value: Any) -> TypeGuard[float]:
    """A YAML number a score can use: .inf and .nan would make every score NaN or inf."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def describe_type(node: Any) -> str:
    if node is None:
        return "empty"
    if isinstance(node, bool):
        return f"the boolean {str(node).lower()}"
    if isinstance(node, str):
        return f"the text {node!r}"
    if isinstance(node, int | float):
        return f"the number {show_value(node)}"
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    return type(node).__name__


def article(expected: str | list[str]) -> str:
    names = {
        "number": "a number",
        "integer": "a whole number",
        "string": "text",
        "boolean": "true or false",
        "object": "a mapping (key: value lines)",
        "array": "a list",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(e, e) for e in expected)
    return names.get(expected, expected)


# What people write for an operator, from SQL, spreadsheets and HubSpot's filter labels.
_SYNONYMS = {
    "=": "eq",
    "==": "eq",
    "equals": "eq",
    "equal": "eq",
    "is": "eq",
    "!=": "neq",
    "<>": "neq",
    "ne": "neq",
    "not_equals": "neq",
    "is_not": "neq",
    ">": "gt",
    ">=": "gte",
    "ge": "gte",
    "<": "lt",
    "<=": "lte",
    "le": "lte",
    "greater_than": "gt",
    "less_than": "lt",
    "is_known": "known",
    "has_value": "known",
    "is_unknown": "unknown",
    "is_empty": "unknown",
    "empty": "unknown",
    "one_of": "in",
    "is_any_of": "in",
    "none_of": "not_in",
    "is_none_of": "not_in",
    "includes": "contains",
    "range": "between",
}
ENUM_HINTS: dict[Path_, str] = {
    ("object",): "the scored records are companies, contacts or a custom object; score deals "
    "through their company with `event: deals` or `associated: deals`",
}


def did_you_mean(word: str, options: Sequence[str]) -> str | None:
    synonym = _SYNONYMS.get(word.strip().casefold())
    if synonym in options:
        return f"did you mean `{synonym}`?"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def unquote_hint(value: Any) -> str | None:
    """`points: "10"`: a number in quotes is text in YAML."""
    if isinstance(value, str) and is_number(as_number(value)):
        return f"write the number without quotes: `{value.strip()}`"
    return None


def template_hint(problem: str) -> str:
    unknown = re.search(r"unknown template variable '([^']*)'", problem)
    if unknown:
        close = did_you_mean(unknown.group(1), list(TEMPLATE_VARIABLES))
        if close:
            return close
        return "variables: " + ", ".join(TEMPLATE_VARIABLES)
    return "close every `{{` with `}}` and every `{% if %}` with `{% endif %}`"


def field_doc(properties: Mapping[str, Any], key: str) -> str | None:
    doc = properties.get(key, {}).get("description")
    return f"`{key}`: {doc}" if doc else None


def value_hint(op: str) -> str:
    if op in LIST_OPERATORS:
        return "write `value: [a, b]`"
    if op == "between":
        return "write `value: [lo, hi]`"
    if op in DATE_OPERATORS:
        return "write a number of days, e.g. `value: 30`"
    return "add `value: ...`"
