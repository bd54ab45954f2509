"""Conditions (`when`, `where`, `segment`) compiled once into predicates.

A predicate takes a record's properties and the as-of instant (epoch seconds)
and answers True or False, never raises. Semantics follow docs/playbook.md; where
the spec is silent we follow HubSpot's filters: a missing (or empty) property
satisfies only `unknown`, so `neq` and `not_in` are false on it, as HubSpot's
"is not equal to" leaves out records with no value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from healthscore.core.values import DAY_SECONDS, as_number, as_text, as_timestamp, is_missing

Properties = Mapping[str, Any]
Predicate = Callable[[Properties, float], bool]

OPERATORS: dict[str, str] = {
    "eq": "equals the value (case-insensitive, trimmed; numerically when both are numbers)",
    "neq": "is known and does not equal the value",
    "in": "equals one of a list of values",
    "not_in": "is known and equals none of a list of values",
    "gt": "is a number greater than the value",
    "gte": "is a number greater than or equal to the value",
    "lt": "is a number less than the value",
    "lte": "is a number less than or equal to the value",
    "between": "is a number in [lo, hi], both ends included",
    "known": "has a value",
    "unknown": "has no value (missing or empty)",
    "contains": "contains the text, case-insensitive",
    "within_last_days": "is a date no older than N days before the as-of time, not in the future",
    "older_than_days": "is a date more than N days before the as-of time",
    "within_next_days": "is a date from the as-of time up to N days ahead",
}

NUMERIC_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
DATE_OPERATORS = frozenset({"within_last_days", "older_than_days", "within_next_days"})
LIST_OPERATORS = frozenset({"in", "not_in"})
VALUELESS_OPERATORS = frozenset({"known", "unknown"})


def compile_condition(prop: str, op: str, value: Any) -> Predicate:
    """Compile one validated condition into a predicate."""
    if op == "known":
        return lambda props, _t: not is_missing(props.get(prop))
    if op == "unknown":
        return lambda props, _t: is_missing(props.get(prop))
    if op in ("eq", "neq", "in", "not_in"):
        matches = _matcher(value if op in LIST_OPERATORS else [value])
        negate = op in ("neq", "not_in")

        def equality(props: Properties, _t: float) -> bool:
            actual = props.get(prop)
            if is_missing(actual):
                return False
            return matches(actual) != negate

        return equality
    if op in NUMERIC_OPERATORS or op == "between":
        low, high = _bounds(op, value)

        def numeric(props: Properties, _t: float) -> bool:
            number = as_number(props.get(prop))
            return number is not None and _within(number, low, high, op)

        return numeric
    if op == "contains":
        needle = as_text(value)
        return lambda props, _t: (
            not is_missing(actual := props.get(prop)) and needle in as_text(actual)
        )
    if op in DATE_OPERATORS:
        span = float(value) * DAY_SECONDS

        def dated(props: Properties, as_of: float) -> bool:
            moment = as_timestamp(props.get(prop))
            if moment is None:
                return False
            if op == "within_last_days":
                return as_of - span <= moment <= as_of
            if op == "within_next_days":
                return as_of <= moment <= as_of + span
            return moment < as_of - span

        return dated
    raise ValueError(f"unknown operator {op!r}")  # validation rejects these first


def compile_all(conditions: Sequence[tuple[str, str, Any]]) -> Predicate:
    """AND of conditions; an empty list always holds."""
    predicates = [compile_condition(p, o, v) for p, o, v in conditions]
    if not predicates:
        return lambda _props, _t: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda props, as_of: all(p(props, as_of) for p in predicates)


def _matcher(values: Sequence[Any]) -> Callable[[Any], bool]:
    """Equality against a set of values: numerically when both sides are numbers
    (HubSpot compares number properties as numbers: "5" equals 5.0), else as text."""
    texts = {as_text(v) for v in values}
    numbers = {n for v in values if (n := as_number(v)) is not None}

    def matches(actual: Any) -> bool:
        if numbers and (number := as_number(actual)) is not None and number in numbers:
            return True
        return as_text(actual) in texts

    return matches


def _bounds(op: str, value: Any) -> tuple[float, float]:
    if op == "between":
        return float(value[0]), float(value[1])
    number = float(value)
    return number, number


def _within(number: float, low: float, high: float, op: str) -> bool:
    if op == "gt":
        return number > low
    if op == "gte":
        return number >= low
    if op == "lt":
        return number < low
    if op == "lte":
        return number <= low
    return low <= number <= high
