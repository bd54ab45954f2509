"""What a playbook means, checked where the JSON Schema cannot say it.

One rule kind per rule, `frequency` without `decay`, thresholds covering 0,
status labels a trigger names, `between` bounds in order, unique names: checked
on every part the schema found sound (`clean`), so that a file's structural and
semantic mistakes are all reported in one run. `validate` runs both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from healthscore.core.conditions import (
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMERIC_OPERATORS,
    VALUELESS_OPERATORS,
)
from healthscore.core.derived import ExpressionError, parse_expression
from healthscore.core.playbook.hints import did_you_mean, is_number, unquote_hint, value_hint
from healthscore.core.playbook.issues import Path_, PlaybookIssue, format_path, position_of
from healthscore.core.playbook.model import (
    DEFAULT_THRESHOLDS,
    LEVEL_TRIGGERS,
    WINDOW_TRIGGERS,
    RuleKind,
    show_value,
)
from healthscore.core.playbook.structure import structure_problems
from healthscore.core.schema import TRIGGERS


def validate(data: Any, schema: Mapping[str, Any], filename: str) -> list[PlaybookIssue]:
    """Every problem of the YAML tree `data`, in file order: structure, then meaning."""
    checker = _Checker(filename, data)
    for path, message, hint in structure_problems(data, schema):
        checker.structural.append(path)
        checker.error(path, message, hint)
    checker.check_semantics(data)
    checker.issues.sort(key=lambda issue: issue[0])
    return [issue for _, issue in checker.issues]


def rule_kind(rule: Mapping[str, Any]) -> RuleKind | None:
    """The kind a rule's keys say it is; None when it has none of the kind keys."""
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


def default_action_name(data: Mapping[str, Any]) -> str:
    """`slack on status_changed_to At-risk`: the name of an action without `name`."""
    trigger = data.get("on") or {}
    what = ", ".join(f"{k} {show_value(v)}" for k, v in trigger.items() if k in TRIGGERS)
    return f"{data.get('do')} on {what}"


class _Checker:
    def __init__(self, filename: str, root: Any) -> None:
        self.filename = filename
        self.root = root
        self.issues: list[tuple[tuple[int, int], PlaybookIssue]] = []
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
        position = position_of(self.root, path)
        issue = PlaybookIssue(self.filename, position[0], format_path(path), message, hint)
        self.issues.append((position, issue))

    # -- meaning, which the schema cannot say

    def check_semantics(self, data: Any) -> None:
        """Checks the schema cannot express, on every part the schema found sound, so
        that a file's structural and semantic mistakes are all reported in one run."""
        if not isinstance(data, Mapping):
            return
        weighted = data.get("combine", "sum") == "weighted"
        self._conditions(data.get("segment"), ("segment",))
        self._segments(data)
        derived = data.get("derived")
        if isinstance(derived, Mapping):
            for name, source in derived.items():
                if self.clean(("derived", str(name))):
                    self._derived(str(name), source)
        enrich = data.get("enrich")
        if isinstance(enrich, list):
            enrich_names: set[str] = set()
            for e_index, entry in enumerate(enrich):
                if isinstance(entry, Mapping) and self.clean(("enrich", e_index)):
                    self._enrich(entry, ("enrich", e_index), enrich_names)
        groups = data.get("groups")
        if isinstance(groups, list):
            group_names: dict[str, int] = {}
            for g_index, group in enumerate(groups):
                if isinstance(group, Mapping):
                    self._group(group, ("groups", g_index), weighted, group_names)
            weights = [g.get("weight", 1) for g in groups if isinstance(g, Mapping)]
            if weighted and all(map(is_number, weights)) and sum(weights) <= 0:
                self.error(("groups",), "the weights of a weighted playbook add up to 0")
        if isinstance(data.get("timezone"), str):
            self._timezone(data["timezone"])
        labels = self._thresholds(data.get("thresholds"))
        actions = data.get("actions")
        if isinstance(actions, list):
            action_names: set[str] = set()
            for a_index, action in enumerate(actions):
                if isinstance(action, Mapping):
                    self._action(action, ("actions", a_index), labels, action_names)

    def _conditions(self, conditions: Any, path: Path_) -> None:
        if isinstance(conditions, list):
            for index, condition in enumerate(conditions):
                if self.clean((*path, index)):
                    self._condition(condition, (*path, index))

    def _segments(self, data: Mapping[str, Any]) -> None:
        """`segments` (up to five alternatives, the schema counts them) or `segment`."""
        segments = data.get("segments")
        if "segment" in data and "segments" in data:
            self.error(
                ("segments",),
                "a playbook has `segment` or `segments`, not both",
                "move the `segment` conditions into one entry of `segments`",
            )
        if isinstance(segments, list):
            for index, conditions in enumerate(segments):
                self._conditions(conditions, ("segments", index))

    def _list_condition(self, condition: Mapping[str, Any], path: Path_) -> None:
        """`{list, member}`: nothing of a property condition beside it."""
        for key in ("property", "op", "value"):
            if key in condition:
                self.error(
                    (*path, key),
                    f"`{key}` does not belong in a list condition",
                    "a condition is either `{property, op, value}` or `{list: NAME}` "
                    "(with `member: false` for non-members); write two conditions",
                )
        if not str(condition["list"]).strip():
            self.error(
                (*path, "list"), "needs a list name or id", "e.g. `list: Strategic accounts`"
            )

    def _condition(self, condition: Mapping[str, Any], path: Path_) -> None:
        if "list" in condition:
            self._list_condition(condition, path)
            return
        if "member" in condition:
            self.error(
                (*path, "member"),
                "`member` only goes with `list`",
                "write `{list: Strategic accounts, member: false}`",
            )
        op = condition["op"]
        has_value = "value" in condition
        value: Any = condition.get("value")
        where = (*path, "value")
        if op in VALUELESS_OPERATORS:
            if has_value:
                self.error(where, f"`{op}` takes no value", "remove the `value` line")
            return
        if not has_value:
            self.error(path, f"`{op}` needs a `value`", value_hint(op))
        elif op in LIST_OPERATORS:
            if not isinstance(value, list) or not value:
                example = show_value(value) if isinstance(value, str | int | float) else "a, b"
                self.error(where, f"`{op}` needs a non-empty list", f"write `value: [{example}]`")
            elif any(isinstance(v, Mapping | list) or v is None for v in value):
                self.error(where, "list items must be plain values")
        elif op == "between":
            if not (isinstance(value, list) and len(value) == 2 and all(map(is_number, value))):
                self.error(
                    where, "`between` needs [lo, hi], two numbers", "write `value: [10, 50]`"
                )
            elif value[0] > value[1]:
                self.error(
                    where,
                    f"lo {show_value(value[0])} is above hi {show_value(value[1])}",
                    f"write `value: [{show_value(value[1])}, {show_value(value[0])}]`",
                )
        elif op in NUMERIC_OPERATORS:
            if not is_number(value):
                self.error(
                    where,
                    f"`{op}` compares numbers; {show_value(value)} is not one",
                    unquote_hint(value),
                )
        elif op in DATE_OPERATORS:
            if not is_number(value) or value < 0:
                self.error(where, f"`{op}` needs a number of days (0 or more)", "e.g. `value: 30`")
        elif isinstance(value, Mapping | list) or value is None:
            hint = "use `op: in` for a list of values" if isinstance(value, list) else None
            self.error(where, f"`{op}` needs a single value", hint)

    def _timezone(self, name: str) -> None:
        """An IANA name the tz database knows (`zoneinfo`, with the `tzdata` package)."""
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            close = did_you_mean(name, sorted(available_timezones()))
            self.error(
                ("timezone",),
                f"unknown time zone {name!r}",
                close or "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`",
            )

    def _enrich(self, entry: Mapping[str, Any], path: Path_, names: set[str]) -> None:
        """One `enrich:` entry: a query (with `url_env` or a password-free `url`) or a file."""
        name = entry["name"]
        if name in names:
            self.error((*path, "name"), f"enrich entry `{name}` appears twice", "rename one")
        names.add(name)
        if not name.strip():
            self.error((*path, "name"), "needs a name", "e.g. `name: usage`")
        has_query, has_file = "query" in entry, "file" in entry
        if has_query == has_file:
            self.error(
                path,
                "an enrich entry reads either a `query` (with `url_env`) or a `file`",
                "e.g. `url_env: WAREHOUSE_URL` and `query: select ...`, or `file: usage.csv`",
            )
        for key in ("url_env", "url"):
            if has_file and key in entry:
                self.error((*path, key), f"`{key}` belongs to a query, not to a `file` entry")
        if has_query and ("url_env" in entry) == ("url" in entry):
            self.error(
                path,
                "a query needs exactly one of `url_env` (an environment variable holding the "
                "database URL) or `url`",
                "e.g. `url_env: WAREHOUSE_URL`, then `export WAREHOUSE_URL=postgresql+psycopg://...`",
            )
        env = entry.get("url_env")
        if isinstance(env, str):
            if "://" in env:
                self.error(
                    (*path, "url_env"),
                    "`url_env` names an environment variable, not the URL itself",
                    "put the URL in an environment variable, e.g. `url_env: WAREHOUSE_URL`",
                )
            elif not _ENV_NAME.fullmatch(env):
                self.error(
                    (*path, "url_env"),
                    f"{env!r} is not an environment variable name",
                    "letters, digits and _, e.g. `WAREHOUSE_URL`",
                )
        url = entry.get("url")
        if isinstance(url, str) and _has_password(url):
            self.error(
                (*path, "url"),
                "a database password does not belong in the playbook",
                "move the URL to an environment variable and name it with `url_env`",
            )
        file = entry.get("file")
        if isinstance(file, str) and not file.lower().endswith((".csv", ".parquet")):
            self.error((*path, "file"), "reads .csv or .parquet files", "e.g. `file: usage.csv`")
        for part in ("account", "column"):
            if not str(entry["key"][part]).strip():
                self.error((*path, "key", part), "must not be empty")
        for index, column in enumerate(entry.get("writeback") or ()):
            if str(column).strip().casefold() == str(entry["key"]["column"]).strip().casefold():
                self.error(
                    (*path, "writeback", index),
                    f"`{column}` is the key column: the account has it already",
                    "list the columns the entry brings, e.g. `writeback: [active_users]`",
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
            elif is_number(high) and high <= 0:
                self.error((*path, "max_points"), "must be above 0 in a weighted playbook")
        low = group.get("min_points")
        if is_number(low) and is_number(high) and low > high:
            self.error((*path, "min_points"), f"min_points {show_value(low)} is above max_points")
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
        kind = rule_kind(rule)
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
        has_each = "points_each" in rule
        if has_points + has_bands + has_each != 1:
            self.error(
                path,
                "an event rule needs exactly one of `points` (every time), `points_each` "
                "(by a property's value) or `frequency` (bands)",
                "`points: 2` scores each meeting; `property` + `points_each` scores each by "
                "its value; `frequency:` scores the count once",
            )
        if has_each != ("property" in rule):
            self.error(
                path,
                "`points_each` on an event rule needs `property` (and `property` needs "
                "`points_each`)",
                "e.g. `property: hs_activity_type` and `points_each: {QBR: 4, Check-in: 1}`",
            )
        elif has_each and not rule["points_each"]:
            self.error((*path, "points_each"), "needs at least one value: points")
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
            if is_number(start):
                if start in mins:
                    self.error((*path, "min"), f"two thresholds start at {show_value(start)}")
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
        """The envelope's meaning; the kind's own keys are all in its schema fragment."""
        if self.clean((*path, "name")) and self.clean((*path, "do")):
            name = action.get("name") or default_action_name(action)
            if name in names:
                self.error((*path, "name"), f"action `{name}` appears twice", "give each a `name`")
            names.add(name)
        where = action.get("where")
        self._conditions(where, (*path, "where"))
        for index, condition in enumerate(where if isinstance(where, list) else []):
            if isinstance(condition, Mapping) and "list" in condition:
                self.error(
                    (*path, "where", index, "list"),
                    "an action's `where` reads the account's properties, not lists",
                    "put the list condition in `segment` or in a rule's `when`",
                )
        on_path = (*path, "on")
        trigger = action.get("on")
        if not isinstance(trigger, Mapping) or not self.clean(on_path):
            return
        kinds = [k for k in TRIGGERS if k in trigger]
        if len(kinds) != 1:
            self.error(
                on_path,
                "needs exactly one trigger" + (f", found {', '.join(kinds)}" if kinds else ""),
                "one of: " + ", ".join(TRIGGERS),
            )
        else:
            self._trigger(trigger, kinds[0], on_path, labels)

    def _trigger(
        self, trigger: Mapping[str, Any], kind: str, path: Path_, labels: list[str] | None
    ) -> None:
        value = trigger[kind]
        if kind.startswith("status_"):
            if labels is not None and value not in labels:
                self.error(
                    (*path, kind),
                    f"{show_value(value)} is not a status of this playbook",
                    did_you_mean(str(value), labels) or "statuses: " + ", ".join(labels),
                )
        elif not is_number(value):
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


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _has_password(url: str) -> bool:
    """A password in a URL: `user:secret@host`, or a `password=` query parameter."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return True
    except ValueError:  # an unparsable port: still look at the query
        parts = None
    query = parts.query if parts else url.partition("?")[2]
    return any(k.casefold() == "password" for k, _ in parse_qsl(query))


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
    | {"frequency", "property", "points_each", "label"},
    "associated": _COMMON_RULE_FIELDS
    | {"associated", "when", "points", "property", "points_each", "aggregate", "label"},
}
_KIND_NAMES = {
    "property": "a property rule (`when` + `points`)",
    "value_map": "a value map (`property` + `points_each`)",
    "scale": "a scale rule (`property` + `scale`)",
    "event": "an event rule",
    "associated": "an associated-record rule",
}
