"""The playbook: load a YAML file, validate it with line-precise errors, build the model.

CS ops edit playbooks by hand, so validation reports every problem of a file at
once, each with file, line, field path (`groups[1].rules[0].op`) and a hint, the
way dbt reports a bad `schema.yml`. The structure is checked against the
published JSON Schema (`playbook_schema.py`); the rules the schema cannot say
(one rule kind per rule, `frequency` without `decay`, thresholds covering 0...)
are checked here.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from healthscore.core.conditions import (
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMERIC_OPERATORS,
    VALUELESS_OPERATORS,
)
from healthscore.core.derived import Expression, ExpressionError, parse_expression
from healthscore.core.schema import PLAYBOOK_SCHEMA, TRIGGERS
from healthscore.core.templates import TEMPLATE_VARIABLES, TemplateProblem, check_template
from healthscore.core.values import as_number, as_text
from healthscore.errors import UserError

Path_ = tuple[str | int, ...]
RuleKind = Literal["property", "value_map", "scale", "event", "associated"]

DEFAULT_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {"min": 80, "label": "Healthy", "color": "green"},
    {"min": 60, "label": "Neutral", "color": "yellow"},
    {"min": 0, "label": "At-risk", "color": "red"},
)
LEVEL_TRIGGERS = frozenset({"score_at_least", "score_below", "status_is"})
WINDOW_TRIGGERS = frozenset({"score_dropped_by", "score_rose_by"})
ACTION_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # do: (required fields, optional fields)
    "slack": ({"message"}, {"to", "fallback_channel"}),
    "jira": ({"project", "summary"}, {"issue_type", "description", "labels"}),
    "hubspot_list": ({"list"}, {"sync"}),
    "hubspot_task": ({"subject"}, {"description", "due_in_days", "priority"}),
}
TEMPLATE_FIELDS = ("message", "summary", "description", "subject")
COMMON_ACTION_FIELDS = {"name", "on", "where", "do"}


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class Condition:
    property: str
    op: str
    value: Any = None

    def as_tuple(self) -> tuple[str, str, Any]:
        return (self.property, self.op, self.value)

    def describe(self) -> str:
        if self.op in VALUELESS_OPERATORS:
            return f"{self.property} {self.op}"
        return f"{self.property} {self.op} {_show(self.value)}"


@dataclass(frozen=True)
class Decay:
    percent: float
    every_days: float


@dataclass(frozen=True)
class Band:
    points: float
    exactly: int | None = None
    between: tuple[int, int] | None = None
    at_least: int | None = None

    def holds(self, count: int) -> bool:
        if self.exactly is not None:
            return count == self.exactly
        if self.between is not None:
            return self.between[0] <= count <= self.between[1]
        return self.at_least is not None and count >= self.at_least

    def describe(self) -> str:
        if self.exactly is not None:
            return f"exactly {self.exactly}"
        if self.between is not None:
            return f"{self.between[0]}-{self.between[1]}"
        return f"at least {self.at_least}"


@dataclass(frozen=True)
class Rule:
    name: str
    kind: RuleKind
    points: float | None = None
    when: tuple[Condition, ...] = ()
    property: str | None = None
    points_each: Mapping[str, float] = field(default_factory=dict)
    scale_from: tuple[float, float] | None = None
    scale_to: tuple[float, float] | None = None
    event: str | None = None
    where: tuple[Condition, ...] = ()
    within_days: float | None = None
    timestamp_property: str | None = None
    limit: float | None = None
    decay: Decay | None = None
    frequency: tuple[Band, ...] = ()
    associated: str | None = None
    aggregate: str = "sum"
    description: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]
    weight: float = 1.0
    max_points: float | None = None
    min_points: float | None = None
    start: float = 0.0


@dataclass(frozen=True)
class Threshold:
    min: float
    label: str
    color: str


@dataclass(frozen=True)
class TrendSettings:
    compare_days: float = 30
    flat_band: float = 3


@dataclass(frozen=True)
class Trigger:
    kind: str
    value: Any
    within_days: float | None = None
    every_run: bool = False

    @property
    def is_level(self) -> bool:
        return self.kind in LEVEL_TRIGGERS


@dataclass(frozen=True)
class Action:
    name: str
    do: str
    trigger: Trigger
    where: tuple[Condition, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    name: str
    groups: tuple[Group, ...]
    object: str = "companies"
    description: str | None = None
    segment: tuple[Condition, ...] = ()
    derived: tuple[tuple[str, Expression], ...] = ()
    combine: str = "sum"
    thresholds: tuple[Threshold, ...] = ()  # highest `min` first
    trend: TrendSettings = TrendSettings()
    actions: tuple[Action, ...] = ()
    writeback: bool = True
    timezone: str = "UTC"  # IANA name; trigger windows count calendar days here
    path: str | None = None
    content_hash: str = ""

    def status_of(self, score: float) -> Threshold:
        """The highest threshold the unrounded score reaches; the lowest catches the rest."""
        for threshold in self.thresholds:
            if score >= threshold.min:
                return threshold
        return self.thresholds[-1]

    def required_properties(self) -> dict[str, set[str]]:
        """Properties each object type must carry for this playbook: what a source pulls."""
        needs: dict[str, set[str]] = {self.object: set()}
        account = needs[self.object]
        derived_names = {name for name, _ in self.derived}
        account.update(c.property for c in self.segment)
        for _, expression in self.derived:
            account.update(expression.names - derived_names)
        for action in self.actions:
            account.update(c.property for c in action.where)
        for group in self.groups:
            for rule in group.rules:
                if rule.kind in ("property", "value_map", "scale"):
                    account.update(c.property for c in rule.when)
                    if rule.property:
                        account.add(rule.property)
                    continue
                other = needs.setdefault(rule.event or rule.associated or "", set())
                other.update(c.property for c in (*rule.where, *rule.when))
                if rule.property:
                    other.add(rule.property)
                if rule.kind == "event":
                    other.update({rule.timestamp_property or "hs_timestamp", "createdate"})
        account -= derived_names
        return needs


# ---------------------------------------------------------------- errors


@dataclass(frozen=True)
class PlaybookIssue:
    file: str
    line: int
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: {self.path or '(top level)'}: {self.message}"
        return f"{where}\n    hint: {self.hint}" if self.hint else where


class PlaybookError(UserError):
    """A playbook with one or more problems; `issues` lists all of them."""

    def __init__(self, issues: Sequence[PlaybookIssue]) -> None:
        self.issues = list(issues)
        count = len(self.issues)
        header = f"{count} problem{'s' if count != 1 else ''} in the playbook"
        super().__init__(header + ":\n" + "\n".join(str(i) for i in self.issues))


# ---------------------------------------------------------------- loading


def load_playbook(path: str | Path) -> Playbook:
    """Read, validate and build a playbook; raises PlaybookError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlaybookError(
            [PlaybookIssue(str(path), 0, "", "no such file", "check the path")]
        ) from None
    except IsADirectoryError:
        raise PlaybookError(
            [PlaybookIssue(str(path), 0, "", "is a directory, not a playbook file")]
        ) from None
    return parse_playbook(raw.decode("utf-8", errors="replace"), str(path))


def parse_playbook(text: str, filename: str = "<playbook>") -> Playbook:
    data = _load_yaml(text, filename)
    if data is None:
        raise PlaybookError([PlaybookIssue(filename, 1, "", "the file is empty")])
    checker = _Checker(filename, data)
    checker.check(data, PLAYBOOK_SCHEMA, ())
    checker.check_semantics(data)
    if checker.issues:
        raise PlaybookError(sorted(checker.issues, key=lambda i: i.line))
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _build(data, filename, content_hash)


def _load_yaml(text: str, filename: str) -> Any:
    """The YAML tree with line numbers; any YAML problem becomes one PlaybookIssue."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        issue = _yaml_issue(exc, text)
    except ReaderError as exc:  # control characters: not marked, but positioned
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        issue = (
            line,
            f"not valid YAML: character #x{exc.character:04x} is not allowed",
            "delete the invisible control character (often pasted from another tool)",
        )
    except YAMLError as exc:
        issue = (1, f"not valid YAML: {exc}", None)
    except ValueError as exc:  # the constructor: a date that does not exist (2024-02-30)
        issue = _bad_date_issue(yaml, text, exc)
    line, message, hint = issue
    raise PlaybookError([PlaybookIssue(filename, line, "", message, hint)]) from None


def _yaml_issue(exc: MarkedYAMLError, text: str) -> tuple[int, str, str | None]:
    problem = exc.problem or "not valid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    opened = exc.context_mark
    unclosed = context.startswith(("while scanning a quoted", "while parsing a flow"))
    if opened is not None and unclosed:
        # An unclosed quote or bracket is reported where the file ends or where the next
        # line starts; the mistake is on the line that opened it.
        lines = text.splitlines()
        row = lines[opened.line] if opened.line < len(lines) else ""
        char = row[opened.column] if opened.column < len(row) else ""
        if context.startswith("while scanning a quoted"):
            return (
                opened.line + 1,
                f"not valid YAML: the quote {char} opened here is never closed",
                f"close the quote with a matching {char}",
            )
        closing = {"[": "]", "{": "}"}.get(char, "]")
        return (
            opened.line + 1,
            f"not valid YAML: the `{char}` opened here is not closed where expected "
            f"({problem} on line {line})",
            f"close it with `{closing}` and separate the items with commas",
        )
    if "'\\t'" in problem:
        return (
            line,
            "not valid YAML: a tab character; YAML indents with spaces only",
            "replace the tab with spaces",
        )
    if problem.startswith("found duplicate key"):
        return (
            line,
            f"not valid YAML: {problem.removeprefix('found ')}",
            "a key may appear only once in the same mapping: keep one of them",
        )
    return (
        line,
        f"not valid YAML: {problem}",
        "check indentation, colons and quotes on this line or the one before",
    )


def _bad_date_issue(yaml: YAML, text: str, exc: ValueError) -> tuple[int, str, str | None]:
    """Find the date-looking scalar the constructor choked on, for its line."""
    stack = [yaml.compose(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            if node.tag == "tag:yaml.org,2002:timestamp":
                try:
                    yaml.constructor.construct_yaml_timestamp(node)
                except ValueError as problem:
                    return (
                        node.start_mark.line + 1,
                        f"not valid YAML: {node.value} is not a valid date ({problem})",
                        "fix the date, or quote it to keep it as text",
                    )
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
    return (1, f"not valid YAML: {exc}", None)


# ---------------------------------------------------------------- checking


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Checker:
    def __init__(self, filename: str, root: Any) -> None:
        self.filename = filename
        self.root = root
        self.issues: list[PlaybookIssue] = []
        self.paths: list[Path_] = []  # of the issues, unformatted
        self.structural: list[Path_] = []  # paths of the schema's complaints

    def clean(self, path: Path_, *, except_in: tuple[str, ...] = ()) -> bool:
        """True when the schema found nothing wrong at or under `path` (ignoring the
        children named in `except_in`): only then may the semantic checks read it."""
        depth = len(path)
        return not any(
            bad[:depth] == path and not (len(bad) > depth and bad[depth] in except_in)
            for bad in self.structural
        )

    def error(self, path: Path_, message: str, hint: str | None = None) -> None:
        self.paths.append(path)
        self.issues.append(
            PlaybookIssue(
                self.filename, _line_of(self.root, path), format_path(path), message, hint
            )
        )

    # -- structure, from the JSON Schema

    def check(self, node: Any, schema: Mapping[str, Any], path: Path_) -> None:
        before = len(self.issues)
        self._check(node, schema, path)
        self.structural.extend(self.paths[before:])

    def _check(self, node: Any, schema: Mapping[str, Any], path: Path_) -> None:
        if "$ref" in schema:
            schema = PLAYBOOK_SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        if "enum" in schema:
            if not any(node == option and type(node) is type(option) for option in schema["enum"]):
                options = [str(o) for o in schema["enum"]]
                self.error(
                    path,
                    f"{_show(node)} is not one of: {', '.join(options)}",
                    _did_you_mean(str(node), options) or _ENUM_HINTS.get(path),
                )
            return
        expected = schema.get("type")
        if expected and not _is_type(node, expected):
            if isinstance(node, float) and not math.isfinite(node):
                self.error(path, f"must be a finite number, not {node}")
                return
            self.error(
                path,
                f"must be {_article(expected)}, not {_describe_type(node)}",
                _unquote_hint(node) if "number" in expected or "integer" in expected else None,
            )
            return
        if isinstance(node, Mapping) and expected == "object":
            self._check_object(node, schema, path)
        elif isinstance(node, list) and expected == "array":
            self._check_array(node, schema, path)
        elif expected in ("number", "integer"):
            self._check_number(node, schema, path)

    def _check_object(
        self, node: Mapping[str, Any], schema: Mapping[str, Any], path: Path_
    ) -> None:
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in node:
                self.error(path, f"missing required field `{key}`", _field_doc(properties, key))
        extra = schema.get("additionalProperties", True)
        for key, value in node.items():
            child = (*path, str(key))
            if key in properties:
                self.check(value, properties[key], child)
            elif extra is False:
                known = sorted(properties)
                self.error(
                    child,
                    f"unknown field `{key}`",
                    _did_you_mean(str(key), known) or "allowed here: " + ", ".join(known),
                )
            elif isinstance(extra, Mapping):
                self.check(value, extra, child)

    def _check_array(self, node: list[Any], schema: Mapping[str, Any], path: Path_) -> None:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if low is not None and high is not None and low == high and len(node) != low:
            self.error(path, f"must be a list of exactly {low} items, got {len(node)}")
        elif low is not None and len(node) < low:
            self.error(path, f"must have at least {low} item{'s' if low > 1 else ''}")
        elif high is not None and len(node) > high:
            self.error(path, f"must have at most {high} items")
        if "items" in schema:
            for index, item in enumerate(node):
                self.check(item, schema["items"], (*path, index))

    def _check_number(self, node: float, schema: Mapping[str, Any], path: Path_) -> None:
        if "minimum" in schema and node < schema["minimum"]:
            self.error(path, f"must be at least {schema['minimum']}, got {_show(node)}")
        if "maximum" in schema and node > schema["maximum"]:
            self.error(path, f"must be at most {schema['maximum']}, got {_show(node)}")
        if "exclusiveMinimum" in schema and node <= schema["exclusiveMinimum"]:
            self.error(
                path, f"must be greater than {schema['exclusiveMinimum']}, got {_show(node)}"
            )

    # -- meaning, which the schema cannot say

    def check_semantics(self, data: Any) -> None:
        """Checks the schema cannot express, on every part the schema found sound, so
        that a file's structural and semantic mistakes are all reported in one run."""
        if not isinstance(data, Mapping):
            return
        weighted = data.get("combine", "sum") == "weighted"
        self._conditions(data.get("segment"), ("segment",))
        derived = data.get("derived")
        if isinstance(derived, Mapping):
            for name, source in derived.items():
                if self.clean(("derived", str(name))):
                    self._derived(str(name), source)
        groups = data.get("groups")
        if isinstance(groups, list):
            group_names: dict[str, int] = {}
            for g_index, group in enumerate(groups):
                if isinstance(group, Mapping):
                    self._group(group, ("groups", g_index), weighted, group_names)
            weights = [g.get("weight", 1) for g in groups if isinstance(g, Mapping)]
            if weighted and all(map(_is_number, weights)) and sum(weights) <= 0:
                self.error(("groups",), "the weights of a weighted playbook add up to 0")
        if isinstance(data.get("timezone"), str):
            self._timezone(data["timezone"])
        labels = self._thresholds(data.get("thresholds"))
        actions = data.get("actions")
        if isinstance(actions, list):
            action_names: set[str] = set()
            for a_index, action in enumerate(actions):
                if self.clean(("actions", a_index)):
                    self._action(action, ("actions", a_index), labels, action_names)

    def _conditions(self, conditions: Any, path: Path_) -> None:
        if isinstance(conditions, list):
            for index, condition in enumerate(conditions):
                if self.clean((*path, index)):
                    self._condition(condition, (*path, index))

    def _condition(self, condition: Mapping[str, Any], path: Path_) -> None:
        op = condition["op"]
        has_value = "value" in condition
        value: Any = condition.get("value")
        where = (*path, "value")
        if op in VALUELESS_OPERATORS:
            if has_value:
                self.error(where, f"`{op}` takes no value", "remove the `value` line")
            return
        if not has_value:
            self.error(path, f"`{op}` needs a `value`", _value_hint(op))
        elif op in LIST_OPERATORS:
            if not isinstance(value, list) or not value:
                example = _show(value) if isinstance(value, str | int | float) else "a, b"
                self.error(where, f"`{op}` needs a non-empty list", f"write `value: [{example}]`")
            elif any(isinstance(v, Mapping | list) or v is None for v in value):
                self.error(where, "list items must be plain values")
        elif op == "between":
            if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
                self.error(
                    where, "`between` needs [lo, hi], two numbers", "write `value: [10, 50]`"
                )
            elif value[0] > value[1]:
                self.error(
                    where,
                    f"lo {_show(value[0])} is above hi {_show(value[1])}",
                    f"write `value: [{_show(value[1])}, {_show(value[0])}]`",
                )
        elif op in NUMERIC_OPERATORS:
            if not _is_number(value):
                self.error(
                    where,
                    f"`{op}` compares numbers; {_show(value)} is not one",
                    _unquote_hint(value),
                )
        elif op in DATE_OPERATORS:
            if not _is_number(value) or value < 0:
                self.error(where, f"`{op}` needs a number of days (0 or more)", "e.g. `value: 30`")
        elif isinstance(value, Mapping | list) or value is None:
            hint = "use `op: in` for a list of values" if isinstance(value, list) else None
            self.error(where, f"`{op}` needs a single value", hint)

    def _timezone(self, name: str) -> None:
        """An IANA name the tz database knows (`zoneinfo`, with the `tzdata` package)."""
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            close = _did_you_mean(name, sorted(available_timezones()))
            self.error(
                ("timezone",),
                f"unknown time zone {name!r}",
                close or "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`",
            )

    def _derived(self, name: str, source: Any) -> None:
        path: Path_ = ("derived", name)
        if not name.isidentifier():
            self.error(path, f"`{name}` is not a valid name", "use letters, digits and _")
        try:
            parse_expression(str(source))
        except ExpressionError as exc:
            self.error(
                path,
                f"{exc} (column {exc.column + 1} of {str(source)!r})",
                "only + - * / ( ), numbers and property names, "
                "e.g. `active_users / seats_purchased`",
            )

    def _group(
        self, group: Mapping[str, Any], path: Path_, weighted: bool, seen: dict[str, int]
    ) -> None:
        name = group.get("name")
        if isinstance(name, str):
            if name in seen:
                self.error(
                    (*path, "name"), f"group `{name}` is defined twice", "names must be unique"
                )
            seen[name] = 1
        high = group.get("max_points")
        if weighted:
            if "max_points" not in group:
                self.error(
                    path,
                    "a weighted playbook needs `max_points` on every group",
                    "the score is weight * points / max_points: add e.g. `max_points: 20`",
                )
            elif _is_number(high) and high <= 0:
                self.error((*path, "max_points"), "must be above 0 in a weighted playbook")
        low = group.get("min_points")
        if _is_number(low) and _is_number(high) and low > high:
            self.error((*path, "min_points"), f"min_points {_show(low)} is above max_points")
        rules = group.get("rules")
        if isinstance(rules, list):
            rule_names: set[str] = set()
            for index, rule in enumerate(rules):
                rule_path = (*path, "rules", index)
                if isinstance(rule, Mapping):
                    self._rule(rule, rule_path, rule_names)

    def _rule(self, rule: Mapping[str, Any], path: Path_, names: set[str]) -> None:
        name = rule.get("name")
        if isinstance(name, str):
            if name in names:
                self.error((*path, "name"), f"rule `{name}` appears twice in this group")
            names.add(name)
        for key in ("when", "where"):
            self._conditions(rule.get(key), (*path, key))
        if not self.clean(path, except_in=("when", "where", "name")):
            return  # a misspelt or mistyped field: its kind would be guessed wrong
        kind = _rule_kind(rule)
        if kind is None:
            self.error(
                path,
                "this rule has no kind",
                "a rule is one of: `when`+`points`, `property`+`points_each`, `property`+`scale`, "
                "`event` (+`points` or `frequency`), `associated`",
            )
            return
        allowed = _RULE_FIELDS[kind]
        for key in rule:
            if key not in allowed:
                self.error(
                    (*path, str(key)),
                    f"`{key}` does not belong in {_KIND_NAMES[kind]}",
                    _KIND_MIX_HINTS.get((kind, str(key)))
                    or ("split it into two rules" if key in _KIND_KEYS else None),
                )
        getattr(self, f"_rule_{kind}")(rule, path)

    def _rule_property(self, rule: Mapping[str, Any], path: Path_) -> None:
        if "points" not in rule:
            self.error(path, "a property rule needs `points`", "add e.g. `points: 10`")

    def _rule_value_map(self, rule: Mapping[str, Any], path: Path_) -> None:
        if not rule["points_each"]:
            self.error((*path, "points_each"), "needs at least one value: points")

    def _rule_scale(self, rule: Mapping[str, Any], path: Path_) -> None:
        low, high = rule["scale"]["from"]
        if low == high:
            self.error((*path, "scale", "from"), "`from` needs two different numbers")

    def _rule_event(self, rule: Mapping[str, Any], path: Path_) -> None:
        has_points, has_bands = "points" in rule, "frequency" in rule
        if has_points == has_bands:
            self.error(
                path,
                "an event rule needs exactly one of `points` (every time) or `frequency` (bands)",
                "`points: 2` scores each meeting; `frequency:` scores the count once",
            )
        if has_bands:
            for key in ("decay", "limit"):
                if key in rule:
                    self.error(
                        (*path, key),
                        f"a `frequency` rule cannot have `{key}`",
                        "bands score the count once; use `points` per occurrence to decay or cap",
                    )
            for index, band in enumerate(rule["frequency"]):
                kinds = [k for k in ("exactly", "between", "at_least") if k in band]
                where = (*path, "frequency", index)
                if len(kinds) != 1:
                    self.error(where, "a band needs exactly one of exactly, between, at_least")
                elif "between" in band and band["between"][0] > band["between"][1]:
                    low, high = band["between"]
                    self.error(
                        (*where, "between"),
                        "the first bound is above the second",
                        f"write `between: [{high}, {low}]`",
                    )

    def _rule_associated(self, rule: Mapping[str, Any], path: Path_) -> None:
        by_condition = "when" in rule or "points" in rule
        by_value = "property" in rule or "points_each" in rule
        if by_condition == by_value:
            self.error(
                path,
                "an associated rule needs `when`+`points` or `property`+`points_each`",
                "e.g. `when: [{property: nps_category, op: eq, value: promoter}]` and `points: 5`",
            )
        elif by_condition and not ("when" in rule and "points" in rule):
            self.error(path, "an associated rule with conditions needs both `when` and `points`")
        elif by_value and not ("property" in rule and "points_each" in rule):
            self.error(path, "an associated value map needs both `property` and `points_each`")

    def _thresholds(self, thresholds: Any) -> list[str] | None:
        """The status labels, or None when they cannot be known (a broken list)."""
        if thresholds is None:
            return [t["label"] for t in DEFAULT_THRESHOLDS]
        if not isinstance(thresholds, list):
            return None
        labels: list[str] = []
        mins: set[float] = set()
        complete = True
        for index, threshold in enumerate(thresholds):
            path: Path_ = ("thresholds", index)
            label = threshold.get("label") if isinstance(threshold, Mapping) else None
            start = threshold.get("min") if isinstance(threshold, Mapping) else None
            if isinstance(label, str):
                if label in labels:
                    self.error((*path, "label"), f"status `{label}` is defined twice")
                labels.append(label)
            else:
                complete = False
            if _is_number(start):
                if start in mins:
                    self.error((*path, "min"), f"two thresholds start at {_show(start)}")
                mins.add(start)
            else:
                complete = False
        if not complete:
            return None
        if mins and min(mins) > 0:
            self.error(
                ("thresholds",),
                "the thresholds do not cover 0",
                "add a lowest status with `min: 0`, e.g. `{min: 0, label: At-risk, color: red}`",
            )
        return labels

    def _action(
        self, action: Mapping[str, Any], path: Path_, labels: list[str] | None, names: set[str]
    ) -> None:
        name = action.get("name") or _default_action_name(action)
        if name in names:
            self.error((*path, "name"), f"action `{name}` appears twice", "give each a `name`")
        names.add(name)
        trigger = action["on"]
        kinds = [k for k in TRIGGERS if k in trigger]
        on_path = (*path, "on")
        if len(kinds) != 1:
            self.error(
                on_path,
                "needs exactly one trigger" + (f", found {', '.join(kinds)}" if kinds else ""),
                "one of: " + ", ".join(TRIGGERS),
            )
        else:
            self._trigger(trigger, kinds[0], on_path, labels)
        for index, condition in enumerate(action.get("where", [])):
            self._condition(condition, (*path, "where", index))
        required, optional = ACTION_FIELDS[action["do"]]
        for key in sorted(required - action.keys()):
            self.error(path, f"a {action['do']} action needs `{key}`")
        for key in action:
            if key not in required | optional | COMMON_ACTION_FIELDS:
                self.error((*path, str(key)), f"`{key}` is not used by a {action['do']} action")
        for key in TEMPLATE_FIELDS:
            if key in action:
                try:
                    check_template(action[key])
                except TemplateProblem as exc:
                    self.error((*path, key), str(exc), _template_hint(str(exc)))

    def _trigger(
        self, trigger: Mapping[str, Any], kind: str, path: Path_, labels: list[str] | None
    ) -> None:
        value = trigger[kind]
        if kind.startswith("status_"):
            if labels is not None and value not in labels:
                self.error(
                    (*path, kind),
                    f"{_show(value)} is not a status of this playbook",
                    _did_you_mean(str(value), labels) or "statuses: " + ", ".join(labels),
                )
        elif not _is_number(value):
            self.error((*path, kind), f"`{kind}` needs a number of points")
        elif kind in WINDOW_TRIGGERS and value <= 0:
            self.error((*path, kind), f"`{kind}` needs a positive number of points")
        if "within_days" in trigger and kind not in WINDOW_TRIGGERS:
            self.error((*path, "within_days"), f"`within_days` does not apply to `{kind}`")
        if "every_run" in trigger and kind not in LEVEL_TRIGGERS:
            self.error(
                (*path, "every_run"),
                f"`every_run` only applies to level triggers, not `{kind}`",
                "level triggers: " + ", ".join(sorted(LEVEL_TRIGGERS)),
            )


_KIND_KEYS = {"when", "points_each", "scale", "event", "associated", "frequency"}
_KIND_MIX_HINTS = {
    ("event", "when"): "conditions on the event's own properties go in `where`; "
    "split it into two rules if `when` was meant for the account",
}
_COMMON_RULE_FIELDS = {"name", "description"}
_RULE_FIELDS: dict[str, set[str]] = {
    "property": _COMMON_RULE_FIELDS | {"when", "points"},
    "value_map": _COMMON_RULE_FIELDS | {"property", "points_each"},
    "scale": _COMMON_RULE_FIELDS | {"property", "scale"},
    "event": _COMMON_RULE_FIELDS
    | {"event", "where", "within_days", "timestamp_property", "points", "limit", "decay"}
    | {"frequency"},
    "associated": _COMMON_RULE_FIELDS
    | {"associated", "when", "points", "property", "points_each", "aggregate"},
}
_KIND_NAMES = {
    "property": "a property rule (`when` + `points`)",
    "value_map": "a value map (`property` + `points_each`)",
    "scale": "a scale rule (`property` + `scale`)",
    "event": "an event rule",
    "associated": "an associated-record rule",
}


def _rule_kind(rule: Mapping[str, Any]) -> RuleKind | None:
    if "event" in rule:
        return "event"
    if "associated" in rule:
        return "associated"
    if "scale" in rule:
        return "scale"
    if "points_each" in rule:
        return "value_map"
    if "when" in rule:
        return "property"
    return None


# ---------------------------------------------------------------- building


def _build(data: Mapping[str, Any], filename: str, content_hash: str) -> Playbook:
    thresholds: Sequence[Mapping[str, Any]] = data.get("thresholds") or DEFAULT_THRESHOLDS
    trend = data.get("trend") or {}
    return Playbook(
        name=data["name"],
        description=data.get("description"),
        object=data.get("object", "companies"),
        segment=_conditions(data.get("segment")),
        derived=tuple(
            (str(name), parse_expression(str(src)))
            for name, src in (data.get("derived") or {}).items()
        ),
        combine=data.get("combine", "sum"),
        groups=tuple(_group(g) for g in data["groups"]),
        thresholds=tuple(
            sorted(
                (
                    Threshold(float(t["min"]), t["label"], t.get("color", _color(t)))
                    for t in thresholds
                ),
                key=lambda t: -t.min,
            )
        ),
        trend=TrendSettings(
            compare_days=float(trend.get("compare_days", 30)),
            flat_band=float(trend.get("flat_band", 3)),
        ),
        actions=tuple(_action(a, trend) for a in data.get("actions") or []),
        writeback=bool(data.get("writeback", True)),
        timezone=str(data.get("timezone", "UTC")),
        path=filename,
        content_hash=content_hash,
    )


def _color(threshold: Mapping[str, Any]) -> str:
    return {"healthy": "green", "neutral": "yellow", "at-risk": "red"}.get(
        str(threshold["label"]).casefold(), "gray"
    )


def _conditions(items: list[Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    return tuple(
        Condition(str(c["property"]), str(c["op"]), _plain(c.get("value"))) for c in items or []
    )


def _group(data: Mapping[str, Any]) -> Group:
    rules: list[Rule] = []
    taken = {r["name"] for r in data["rules"] if "name" in r}
    for raw in data["rules"]:
        rule = _rule(raw)
        if "name" not in raw:
            rule = _rename_unique(rule, taken)
        taken.add(rule.name)
        rules.append(rule)
    return Group(
        name=data["name"],
        rules=tuple(rules),
        weight=float(data.get("weight", 1)),
        max_points=_float_or_none(data.get("max_points")),
        min_points=_float_or_none(data.get("min_points")),
        start=float(data.get("start", 0)),
    )


def _rename_unique(rule: Rule, taken: set[str]) -> Rule:
    name, n = rule.name, 2
    while name in taken:
        name = f"{rule.name} ({n})"
        n += 1
    return Rule(**{**rule.__dict__, "name": name})


def _rule(data: Mapping[str, Any]) -> Rule:
    kind = _rule_kind(data)
    assert kind is not None  # validated
    decay = data.get("decay")
    scale = data.get("scale")
    rule = Rule(
        name="",
        kind=kind,
        points=_float_or_none(data.get("points")),
        when=_conditions(data.get("when")),
        property=data.get("property"),
        points_each={as_text(k): float(v) for k, v in (data.get("points_each") or {}).items()},
        scale_from=(float(scale["from"][0]), float(scale["from"][1])) if scale else None,
        scale_to=(float(scale["to"][0]), float(scale["to"][1])) if scale else None,
        event=data.get("event"),
        where=_conditions(data.get("where")),
        within_days=_float_or_none(data.get("within_days")),
        timestamp_property=data.get("timestamp_property"),
        limit=_float_or_none(data.get("limit")),
        decay=Decay(float(decay["percent"]), float(decay["every_days"])) if decay else None,
        frequency=tuple(
            Band(
                points=float(b["points"]),
                exactly=b.get("exactly"),
                between=(b["between"][0], b["between"][1]) if "between" in b else None,
                at_least=b.get("at_least"),
            )
            for b in data.get("frequency") or []
        ),
        associated=data.get("associated"),
        aggregate=data.get("aggregate", "sum"),
        description=data.get("description"),
    )
    return Rule(**{**rule.__dict__, "name": data.get("name") or default_rule_name(rule)})


def default_rule_name(rule: Rule) -> str:
    """A readable name from the rule's content, for reports and the JSON output."""
    if rule.kind == "property":
        return " and ".join(c.describe() for c in rule.when)
    if rule.kind == "value_map":
        return f"{rule.property} value"
    if rule.kind == "scale":
        return f"{rule.property} scale"
    if rule.kind == "event":
        text = f"{rule.event}"
        if rule.where:
            text += " where " + " and ".join(c.describe() for c in rule.where)
        if rule.within_days is not None:
            text += f" in last {_show(rule.within_days)} days"
        return ("count of " if rule.frequency else "") + text
    what = rule.property or " and ".join(c.describe() for c in rule.when)
    return f"{rule.associated} {what} ({rule.aggregate})"


def _action(data: Mapping[str, Any], trend: Mapping[str, Any]) -> Action:
    trigger = data["on"]
    kind = next(k for k in TRIGGERS if k in trigger)
    within = trigger.get("within_days")
    if within is None and kind in WINDOW_TRIGGERS:
        within = trend.get("compare_days", 30)
    options = {k: _plain(v) for k, v in data.items() if k not in COMMON_ACTION_FIELDS}
    if data["do"] == "slack":
        options.setdefault("to", "owner")
    if data["do"] == "jira":
        options.setdefault("issue_type", "Task")
        options.setdefault("labels", [])
    if data["do"] == "hubspot_list":
        options.setdefault("sync", False)
    return Action(
        name=data.get("name") or _default_action_name(data),
        do=data["do"],
        trigger=Trigger(
            kind=kind,
            value=_plain(trigger[kind]),
            within_days=_float_or_none(within),
            every_run=bool(trigger.get("every_run", False)),
        ),
        where=_conditions(data.get("where")),
        options=options,
    )


def _default_action_name(data: Mapping[str, Any]) -> str:
    trigger = data.get("on") or {}
    what = ", ".join(f"{k} {_show(v)}" for k, v in trigger.items() if k in TRIGGERS)
    return f"{data.get('do')} on {what}"


# ---------------------------------------------------------------- helpers


def _line_of(root: Any, path: Path_) -> int:
    """1-based line of the deepest node of `path` that exists in the YAML tree."""
    node, line = root, 1
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        line = node.lc.line + 1
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _plain(value: Any) -> Any:
    """ruamel's commented containers to plain lists and dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _is_number(value: Any) -> TypeGuard[float]:
    """A YAML number a score can use: .inf and .nan would make every score NaN or inf."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _is_type(node: Any, expected: str | list[str]) -> bool:
    if isinstance(expected, list):
        return any(_is_type(node, e) for e in expected)
    if expected == "number":
        return _is_number(node)
    if expected == "integer":
        return isinstance(node, int) and not isinstance(node, bool)
    if expected == "string":
        return isinstance(node, str)
    if expected == "boolean":
        return isinstance(node, bool)
    if expected == "object":
        return isinstance(node, Mapping)
    if expected == "array":
        return isinstance(node, list)
    return True


def _describe_type(node: Any) -> str:
    if node is None:
        return "empty"
    if isinstance(node, bool):
        return f"the boolean {str(node).lower()}"
    if isinstance(node, str):
        return f"the text {node!r}"
    if isinstance(node, int | float):
        return f"the number {_show(node)}"
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    return type(node).__name__


def _article(expected: str | list[str]) -> str:
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
_ENUM_HINTS: dict[Path_, str] = {
    ("object",): "the scored records are companies or contacts; score deals through "
    "their company with `event: deals` or `associated: deals`",
}


def _did_you_mean(word: str, options: Sequence[str]) -> str | None:
    synonym = _SYNONYMS.get(word.strip().casefold())
    if synonym in options:
        return f"did you mean `{synonym}`?"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _unquote_hint(value: Any) -> str | None:
    """`points: "10"`: a number in quotes is text in YAML."""
    if isinstance(value, str) and _is_number(as_number(value)):
        return f"write the number without quotes: `{value.strip()}`"
    return None


def _template_hint(problem: str) -> str:
    unknown = re.search(r"unknown template variable '([^']*)'", problem)
    if unknown:
        close = _did_you_mean(unknown.group(1), list(TEMPLATE_VARIABLES))
        if close:
            return close
        return "variables: " + ", ".join(TEMPLATE_VARIABLES)
    return "close every `{{` with `}}` and every `{% if %}` with `{% endif %}`"


def _field_doc(properties: Mapping[str, Any], key: str) -> str | None:
    doc = properties.get(key, {}).get("description")
    return f"`{key}`: {doc}" if doc else None


def _value_hint(op: str) -> str:
    if op in LIST_OPERATORS:
        return "write `value: [a, b]`"
    if op == "between":
        return "write `value: [lo, hi]`"
    if op in DATE_OPERATORS:
        return "write a number of days, e.g. `value: 30`"
    return "add `value: ...`"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    return str(_plain(value))
