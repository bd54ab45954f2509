"""The playbook model: what a validated playbook file becomes (frozen dataclasses).

Every field is already checked by `healthscore.core.playbook.check`; the scorer,
the trigger evaluation and the actions read these without re-checking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from healthscore.core.conditions import VALUELESS_OPERATORS
from healthscore.core.derived import Expression
from healthscore.core.templates import account_properties

RuleKind = Literal["property", "value_map", "scale", "event", "associated"]

DEFAULT_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {"min": 80, "label": "Healthy", "color": "green"},
    {"min": 60, "label": "Neutral", "color": "yellow"},
    {"min": 0, "label": "At-risk", "color": "red"},
)
LEVEL_TRIGGERS = frozenset({"score_at_least", "score_below", "status_is"})
WINDOW_TRIGGERS = frozenset({"score_dropped_by", "score_rose_by"})


@dataclass(frozen=True)
class Condition:
    """`{property, op, value}`, or a list-membership condition `{list, member}`:
    `in_list` names a HubSpot list (its name, or its id when all digits) and the
    condition holds when the record is (`member`, default) or is not a member."""

    property: str
    op: str
    value: Any = None
    in_list: str | None = None
    member: bool = True

    def as_tuple(self) -> tuple[str, str, Any]:
        return (self.property, self.op, self.value)

    def describe(self) -> str:
        if self.in_list is not None:
            return ("on" if self.member else "not on") + f" list {self.in_list}"
        if self.op in VALUELESS_OPERATORS:
            return f"{self.property} {self.op}"
        return f"{self.property} {self.op} {show_value(self.value)}"


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
    labels: tuple[str, ...] = ()  # association labels the records must carry (any of them)
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
class WritebackNames:
    """`writeback:` as a mapping: how the HubSpot score properties are named.

    `prefix`: the internal names' prefix (`<prefix>_score`, `_status`, `_trend`,
    `_group_<group>`); `label`: what their labels start with (`<label>: score`)
    and the property group's label; `group`: the property group's internal name.
    None: derived from the playbook's name (`integrations/hubspot/writeback.py`).
    """

    prefix: str | None = None
    label: str | None = None
    group: str | None = None


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
    """The envelope every action has; `options` holds its kind's own keys.

    The core knows no action kind: `kind` is the `do:` name, and its options
    (message, project, list...) are checked and defaulted by the kind's JSON
    Schema fragment (`healthscore.actions.kinds`), rendered and sent there too.
    `line` is the 1-based YAML line of the action, for errors found later.
    """

    name: str
    kind: str
    trigger: Trigger
    where: tuple[Condition, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Enrichment:
    """One `enrich:` entry: a warehouse query or a file, joined onto the accounts by a key.

    Exactly one of `query` (with `url_env` or `url`) and `file` is set. `key_account` is
    an account property, or `hs_object_id` for the record id; `key_column` the column of
    the query or file holding the same value. `file` is relative to the playbook's folder.
    The URL never holds a password (`check` refuses one): it comes from the environment
    variable `url_env` (or the Prefect Secret block of the same name, lower-case with
    dashes) at run time. `line`: the entry's 1-based YAML line, for errors found later.
    """

    name: str
    key_account: str
    key_column: str
    query: str | None = None
    url_env: str | None = None
    url: str | None = None
    file: str | None = None
    writeback: tuple[str, ...] = ()  # columns copied to HubSpot properties by the write-back
    line: int = 0

    @property
    def label(self) -> str:
        """How reports name it: `enrich:usage`."""
        return f"enrich:{self.name}"


RECORD_ID = "hs_object_id"
"""The key of an `enrich:` entry that names the record id rather than a property."""


@dataclass(frozen=True)
class Playbook:
    name: str
    groups: tuple[Group, ...]
    object: str = "companies"
    description: str | None = None
    segment: tuple[Condition, ...] = ()
    segments: tuple[tuple[Condition, ...], ...] = ()  # any one of them (HubSpot's 5 segments)
    derived: tuple[tuple[str, Expression], ...] = ()
    enrich: tuple[Enrichment, ...] = ()
    combine: str = "sum"
    thresholds: tuple[Threshold, ...] = ()  # highest `min` first
    trend: TrendSettings = TrendSettings()
    actions: tuple[Action, ...] = ()
    writeback: bool = True
    writeback_names: WritebackNames = WritebackNames()
    timezone: str = "UTC"  # IANA name; trigger windows count calendar days here
    enroll_existing: bool = False
    path: str | None = None
    content_hash: str = ""

    def status_of(self, score: float) -> Threshold:
        """The highest threshold the unrounded score reaches; the lowest catches the rest."""
        for threshold in self.thresholds:
            if score >= threshold.min:
                return threshold
        return self.thresholds[-1]

    def segment_options(self) -> tuple[tuple[Condition, ...], ...]:
        """The segment as alternatives: an account is scored when one of them holds
        (all of its conditions); `()` means every account is."""
        if self.segments:
            return self.segments
        return (self.segment,) if self.segment else ()

    def list_conditions(self) -> dict[str, set[str]]:
        """`{object type: {list name or id}}`: the lists whose members the playbook reads
        (conditions on the scored object, and `where`/`when` on events and records)."""
        out: dict[str, set[str]] = {}
        account = [c for option in self.segment_options() for c in option]
        for group in self.groups:
            for rule in group.rules:
                if rule.kind in ("property", "value_map", "scale"):
                    account.extend(rule.when)
                else:
                    kind = rule.event or rule.associated or ""
                    for c in (*rule.where, *rule.when):
                        if c.in_list is not None:
                            out.setdefault(kind, set()).add(c.in_list)
        for c in account:
            if c.in_list is not None:
                out.setdefault(self.object, set()).add(c.in_list)
        return out

    def labelled_types(self) -> set[str]:
        """Object types whose association labels to the scored object a rule reads."""
        return {
            rule.event or rule.associated or ""
            for group in self.groups
            for rule in group.rules
            if rule.labels
        }

    def required_properties(self) -> dict[str, set[str]]:
        """Properties each object type must carry for this playbook: what a source pulls."""
        needs: dict[str, set[str]] = {self.object: set()}
        account = needs[self.object]
        derived_names = {name for name, _ in self.derived}
        account.update(_properties(c for option in self.segment_options() for c in option))
        account.update(e.key_account for e in self.enrich if e.key_account != RECORD_ID)
        for _, expression in self.derived:
            account.update(expression.names - derived_names)
        for action in self.actions:
            account.update(_properties(action.where))
            for value in action.options.values():  # a property used only in a template
                if isinstance(value, str):  # non-template text names no `account.x`
                    account.update(account_properties(value))
        for group in self.groups:
            for rule in group.rules:
                if rule.kind in ("property", "value_map", "scale"):
                    account.update(_properties(rule.when))
                    if rule.property:
                        account.add(rule.property)
                    continue
                other = needs.setdefault(rule.event or rule.associated or "", set())
                other.update(_properties((*rule.where, *rule.when)))
                if rule.property:
                    other.add(rule.property)
                if rule.kind == "event":
                    other.update({rule.timestamp_property or "hs_timestamp", "createdate"})
        account -= derived_names
        return needs


def _properties(conditions: Iterable[Condition]) -> set[str]:
    """The properties conditions read (a list-membership condition reads none)."""
    return {c.property for c in conditions if c.in_list is None}


def show_value(value: Any) -> str:
    """A value as a playbook author wrote it: 10 not 10.0, text unquoted, lists plain."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    return str(plain(value))


def plain(value: Any) -> Any:
    """ruamel's commented containers to plain lists and dicts (keys as text)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
