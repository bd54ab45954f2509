"""CRM search semantics: filter groups, operators and sorts as HubSpot documents them.

Values are compared the way HubSpot compares them for the property at hand:
numbers as numbers, dates as instants (a filter may give epoch milliseconds or
ISO text, the stored value may be either), everything else as case-insensitive
text.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from .timefmt import epoch_ms, parse_moment

OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)

Comparable = tuple[int, Any]


def comparable(value: Any, kind: str | None = None) -> Comparable:
    """A sort/compare key: (0, number) for numbers and instants, (1, text) otherwise."""
    if isinstance(value, bool):
        return (1, "true" if value else "false")
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value).strip()
    if kind in ("datetime", "date") or (("-" in text or "T" in text) and len(text) >= 10):
        moment = parse_moment(text)
        if moment is not None:
            return (0, float(epoch_ms(moment)))
    try:
        return (0, float(text))
    except ValueError:
        return (1, text.lower())


def _pair(stored: Any, wanted: Any, kind: str | None) -> tuple[Comparable, Comparable]:
    left, right = comparable(stored, kind), comparable(wanted, kind)
    if left[0] != right[0]:  # one side did not parse as a number: compare as text
        return (1, str(stored).lower()), (1, str(wanted).lower())
    return left, right


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w@.]+", text.lower()) if t]


def _contains_token(stored: str, wanted: str) -> bool:
    wanted = wanted.lower()
    if "*" in wanted:
        return any(fnmatch.fnmatchcase(t, wanted) for t in _tokens(stored)) or fnmatch.fnmatchcase(
            stored.lower(), wanted
        )
    return wanted in _tokens(stored) or wanted == stored.lower()


# HubSpot changelog "Expanded Filtering Capabilities and Error Messaging in HubSpot's
# Search API" (August 2024): 5 filter groups, 10 filters per group, 25 in total;
# `query` up to 3000 characters (`PublicObjectSearchRequest.query` in
# HubSpot-public-api-spec-collection `PublicApiSpecs/CRM/Objects/Rollouts/424/v3/objects.json`).
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
MAX_QUERY_LENGTH = 3000


def limits_error(groups: list[Any], query: Any) -> str | None:
    """What exceeds the documented search limits, in words like HubSpot's, or None."""
    if len(groups) > MAX_FILTER_GROUPS:
        return (
            f"Too many filter groups: {len(groups)}. "
            f"The maximum number of filter groups is {MAX_FILTER_GROUPS}."
        )
    sizes = [len(g.get("filters") or []) if isinstance(g, Mapping) else 0 for g in groups]
    for index, size in enumerate(sizes):
        if size > MAX_FILTERS_PER_GROUP:
            return (
                f"Too many filters in filter group {index}: {size}. "
                f"The maximum number of filters per filter group is {MAX_FILTERS_PER_GROUP}."
            )
    if sum(sizes) > MAX_FILTERS:
        return (
            f"Too many filters: {sum(sizes)}. "
            f"The maximum number of filters across all filter groups is {MAX_FILTERS}."
        )
    if query is not None and len(str(query)) > MAX_QUERY_LENGTH:
        return (
            f"The query is {len(str(query))} characters long. "
            f"The maximum query length is {MAX_QUERY_LENGTH} characters."
        )
    return None


def filter_error(flt: Mapping[str, Any]) -> str | None:
    """What is wrong with a filter, in HubSpot's words, or None."""
    operator = flt.get("operator")
    if not flt.get("propertyName"):
        return "propertyName is required"
    if operator not in OPERATORS:
        return f"Invalid operator: {operator}"
    if operator == "BETWEEN" and ("value" not in flt or "highValue" not in flt):
        return "BETWEEN requires value and highValue"
    if operator in ("IN", "NOT_IN") and not isinstance(flt.get("values"), list):
        return f"{operator} requires values"
    if operator not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN") and "value" not in flt:
        return f"{operator} requires value"
    return None


def matches(
    flt: Mapping[str, Any], lookup: Callable[[str], str | list[str] | None], kind: str | None
) -> bool:
    """One filter against one record; `lookup` gives a property value or associated ids."""
    operator = flt["operator"]
    stored = lookup(flt["propertyName"])
    if operator == "HAS_PROPERTY":
        return stored not in (None, "", [])
    if operator == "NOT_HAS_PROPERTY":
        return stored in (None, "", [])
    if isinstance(stored, list):  # associations.<type>: a record matches through any id
        return any(_match_one(operator, flt, s, kind) for s in stored)
    if stored is None or stored == "":
        return operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
    return _match_one(operator, flt, stored, kind)


def _match_one(operator: str, flt: Mapping[str, Any], stored: str, kind: str | None) -> bool:
    if operator in ("IN", "NOT_IN"):
        found = any(_equal(stored, v, kind) for v in flt.get("values", []))
        return found if operator == "IN" else not found
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = _contains_token(stored, str(flt["value"]))
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator == "BETWEEN":
        low, value = _pair(stored, flt["value"], kind)
        high = _pair(stored, flt["highValue"], kind)[1]
        return low[0] == high[0] and value <= low <= high
    if operator == "EQ":
        return _equal(stored, flt["value"], kind)
    if operator == "NEQ":
        return not _equal(stored, flt["value"], kind)
    left, right = _pair(stored, flt["value"], kind)
    return {
        "LT": left < right,
        "LTE": left <= right,
        "GT": left > right,
        "GTE": left >= right,
    }[operator]


def _equal(stored: str, wanted: Any, kind: str | None) -> bool:
    left, right = _pair(stored, wanted, kind)
    return left == right


def sort_spec(sorts: Any) -> list[tuple[str, bool]]:
    """`[{"propertyName", "direction"}]` or `["name", "-createdate"]` -> [(name, descending)]."""
    out: list[tuple[str, bool]] = []
    for item in sorts or []:
        if isinstance(item, str):
            out.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, Mapping) and item.get("propertyName"):
            out.append((str(item["propertyName"]), item.get("direction") == "DESCENDING"))
    return out
