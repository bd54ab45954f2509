"""The columnar scoring engine: a playbook over a `CrmFrame`, one column at a time.

Every rule of docs/playbook.md is evaluated for all accounts at once: conditions
become boolean arrays, event and associated-record rules become sums, counts,
minimums and maximums over the association edges, groups and the combined score
become array arithmetic. The numbers are exactly those of the row-at-a-time
reference engine (tests/oracle_scoring.py, checked by
tests/test_engine_differential.py), because:

- values are parsed by `values.py` (see `frame.Column`), and conditions other than
  the numeric and date comparisons run `conditions.compile_condition` itself, once
  per distinct value;
- IEEE arithmetic is the same in numpy as in Python (+ - * /, comparisons, floor),
  and `pow` for decay is Python's own, once per distinct decay step;
- the spec's sums are `math.fsum`, the correctly rounded exact sum, whatever the
  order. `_exact_sums` adds in any order only when every partial sum is provably
  exact (all values are multiples of one power of two and the largest possible
  total stays below 2**53 of them), and `_exact_row_sums` checks each addition with
  Knuth's TwoSum; any other account falls back to `math.fsum` itself.

A list-membership condition is the record ids' membership of the snapshot's list
(read once a run, `CrmFrame.members`); `segments` are an OR of ANDs; a rule's `label`
keeps the association edges whose pair carries one of its labels (`ObjectFrame.labels`)
before anything else; an event value map scores each occurrence by its value, then
decays and caps like `points`.

`explain` runs this same engine on a one-account frame and reads each rule's inputs
(what it saw, which records matched, each occurrence's age and points) off the
arrays that gave the points.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

import numpy as np
import polars as pl

from healthscore.core.conditions import DATE_OPERATORS, NUMERIC_OPERATORS, compile_condition
from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.derived import build_expression
from healthscore.core.frame import BoolArray, Column, CrmFrame, FloatArray, IntArray, ObjectFrame
from healthscore.core.playbook import Condition, Playbook, Rule
from healthscore.core.results import (
    NAME_PROPERTIES,
    AccountScore,
    GroupScore,
    PointTables,
    RuleScore,
    account_name,
    round2,
)
from healthscore.core.values import DAY_SECONDS, as_text, is_missing

Explainer = Callable[[int], dict[str, Any]]  # account row -> the rule's inputs
OWNER = "hubspot_owner_id"
_NONE: dict[str, Any] = {}  # no derived values (shared, never changed)
_EXACT = 2**53  # integers up to here are exact doubles


class Scorer:
    """A playbook's scoring; each call scores every account of a frame at once."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook

    def score_snapshot(self, snapshot: CrmSnapshot, as_of: datetime) -> list[AccountScore]:
        """Score every in-segment account of the snapshot, in snapshot order."""
        return self.score_frame(snapshot.frame, as_of)

    def score_records(
        self,
        accounts: Iterable[CrmRecord],
        related: Mapping[str, Mapping[str, Sequence[CrmRecord]]],
        as_of: datetime,
        snapshot: CrmSnapshot | None = None,
    ) -> list[AccountScore]:
        """Score `accounts` against an index `{type: {account id: [records]}}`; `snapshot`
        gives the lists a list-membership condition reads."""
        frame = CrmFrame.from_related(
            self.playbook.object, accounts, related, snapshot.frame if snapshot else None
        )
        return self.score_frame(frame, as_of)

    def score_frame(self, frame: CrmFrame, as_of: datetime) -> list[AccountScore]:
        run = _Run(self.playbook, frame, as_of.timestamp(), detail=False)
        return run.results(np.flatnonzero(run.segment))

    def explain(
        self, record: CrmRecord, snapshot: CrmSnapshot, as_of: datetime
    ) -> tuple[bool, AccountScore]:
        """Score one account with every rule's inputs; also says if it is in the segment."""
        frame = snapshot.frame.around(self.playbook.object, record)
        run = _Run(self.playbook, frame, as_of.timestamp(), detail=True)
        return bool(run.segment[0]), run.results(np.array([0]))[0]


class _Run:
    """One playbook over one frame at one as-of instant (epoch seconds)."""

    def __init__(self, playbook: Playbook, frame: CrmFrame, as_of: float, detail: bool) -> None:
        self.playbook = playbook
        self.frame = frame
        self.as_of = as_of
        self.detail = detail
        self.accounts = frame.of(playbook.object)
        self.size = len(self.accounts)
        # Accounts are keyed by id (a duplicated id shares its associated records).
        ids = self.accounts.ids
        distinct = ids.unique(maintain_order=True)
        self.keys = pl.DataFrame({"id": distinct, "key": np.arange(len(distinct))})
        self.key_count = len(distinct)
        self.key: IntArray = (
            pl.DataFrame({"id": ids})
            .join(self.keys, on="id", how="left", maintain_order="left")
            .get_column("key")
            .to_numpy()
        )
        self._links: dict[str, tuple[IntArray, IntArray]] = {}
        self.derived: dict[str, Column] = {}
        for name, expression in playbook.derived:
            with np.errstate(all="ignore"):
                values = build_expression(expression.source, _ArrayBuilder(self))
                values = np.where(np.isfinite(values), values, np.nan)
            self.derived[name] = Column(pl.Series(name, values, dtype=pl.Float64).fill_nan(None))
        self._members: dict[tuple[str, str], frozenset[str]] = {}
        options = playbook.segment_options()
        self.segment = np.ones(self.size, dtype=bool)
        if options:  # any one of the segments (HubSpot's up to five), each an AND
            self.segment = np.logical_or.reduce(
                [_all(self.size, [self.account_condition(c) for c in o]) for o in options]
            )
        self.rule_points: list[list[FloatArray]] = []
        self.explainers: list[list[Explainer | None]] = []
        for group in playbook.groups:
            evaluated = [self.rule(rule) for rule in group.rules]
            self.rule_points.append([points for points, _ in evaluated])
            self.explainers.append([explain for _, explain in evaluated])
        self.raw = [
            group.start + _exact_row_sums(points, self.size)
            for group, points in zip(playbook.groups, self.rule_points, strict=True)
        ]
        self.group_points = [
            _clamp(raw, group.max_points, group.min_points)
            for raw, group in zip(self.raw, playbook.groups, strict=True)
        ]
        self.score = self.combine()
        self.status = np.full(self.size, len(playbook.thresholds) - 1)
        for index in reversed(range(len(playbook.thresholds))):
            self.status[self.score >= playbook.thresholds[index].min] = index

    # -- inputs

    def prop(self, name: str) -> Column:
        """An account property as scoring sees it: derived values replace the CRM's."""
        return self.derived.get(name) or self.accounts.column(name)

    def links(self, kind: str, labels: Sequence[str] = ()) -> tuple[IntArray, IntArray]:
        """The association edges of `kind` to this frame's accounts: (record row, account
        key) per edge, in the order of `CrmSnapshot.related`'s lists. With `labels`,
        only the edges whose pair carries one of these association labels."""
        key = kind if not labels else f"{kind}\x00" + "\x00".join(labels)
        if key not in self._links:
            records = self.frame.of(kind)
            edges = records.links.get(self.playbook.object)
            if edges is not None and labels:
                labelled = records.labels.get(self.playbook.object)
                if labelled is None:
                    edges = edges.clear()
                else:
                    chosen = labelled.filter(pl.col("label").is_in(list(labels)))
                    edges = edges.join(chosen.select("row", "to"), on=["row", "to"], how="semi")
            if kind == self.playbook.object or edges is None:
                empty = np.zeros(0, dtype=np.int64)
                self._links[key] = (empty, empty)
            else:
                joined = edges.join(
                    self.keys, left_on="to", right_on="id", how="inner", maintain_order="left"
                )
                self._links[key] = (
                    joined.get_column("row").to_numpy(),
                    joined.get_column("key").to_numpy(),
                )
        return self._links[key]

    def members(self, kind: str, reference: str) -> frozenset[str]:
        """The members of a list a condition names, looked up once a run."""
        if (kind, reference) not in self._members:
            self._members[(kind, reference)] = self.frame.members(kind, reference)
        return self._members[(kind, reference)]

    def account_condition(self, condition: Condition) -> BoolArray:
        return self.condition(self.prop, condition, self.playbook.object, self.accounts)

    def condition(
        self,
        column_of: Callable[[str], Column],
        condition: Condition,
        kind: str,
        records: ObjectFrame,
    ) -> BoolArray:
        """One condition of conditions.py over a column, as a boolean per row; a list
        condition over the record ids of `records` (of object type `kind`)."""
        if condition.in_list is not None:
            members = self.members(kind, condition.in_list)
            held = records.ids.is_in(list(members)).to_numpy().astype(bool)
            return held if condition.member else ~held
        column = column_of(condition.property)
        op, value = condition.op, condition.value
        with np.errstate(invalid="ignore"):
            if op in NUMERIC_OPERATORS or op == "between":
                number = column.numbers()
                if op == "between":
                    return (float(value[0]) <= number) & (number <= float(value[1]))
                return _COMPARE[op](number, float(value))
            if op in DATE_OPERATORS:
                moment, span = column.times(), float(value) * DAY_SECONDS
                if op == "within_last_days":
                    return (self.as_of - span <= moment) & (moment <= self.as_of)
                if op == "within_next_days":
                    return (self.as_of <= moment) & (moment <= self.as_of + span)
                return moment < self.as_of - span
        predicate = compile_condition(condition.property, op, value)
        prop, as_of = condition.property, self.as_of
        return column.mask(lambda v: predicate({prop: v}, as_of))

    # -- rules: (points per account row, inputs of one row for `explain`)

    def rule(self, rule: Rule) -> tuple[FloatArray, Explainer | None]:
        if rule.kind == "event":
            return self.event_rule(rule)
        if rule.kind == "associated":
            return self.associated_rule(rule)
        if rule.kind == "property":
            matched = _all(self.size, [self.account_condition(c) for c in rule.when])
            points = np.where(matched, rule.points or 0.0, 0.0)

            def explain_property(row: int) -> dict[str, Any]:
                props = self.account_props(row)
                record_id = str(self.accounts.ids[row])
                seen = self.seen(props, rule.when, self.playbook.object, record_id)
                return {**seen, "matched": bool(matched[row])}

            return points, explain_property
        prop = rule.property or ""
        if rule.kind == "value_map":
            table = rule.points_each
            points = _floats(
                self.prop(prop).per_value(
                    lambda v: 0.0 if is_missing(v) else table.get(as_text(v), 0.0), pl.Float64
                )
            )
        else:
            (a, b), (c, d) = rule.scale_from or (0.0, 1.0), rule.scale_to or (0.0, 1.0)
            number = self.prop(prop).numbers()
            with np.errstate(all="ignore"):
                mapped = c + (number - a) * (d - c) / (b - a)
                clamped = np.minimum(np.maximum(mapped, min(c, d)), max(c, d))
            points = np.where(np.isnan(number), 0.0, clamped)
        return points, lambda row: {prop: self.account_props(row).get(prop)}

    def event_rule(self, rule: Rule) -> tuple[FloatArray, Explainer | None]:
        kind = rule.event or ""
        records = self.frame.of(kind)
        rows, keys = self.links(kind, rule.labels)
        moment = _event_times(records, rule.timestamp_property)[rows]
        where = _all(
            len(records), [self.condition(records.column, c, kind, records) for c in rule.where]
        )
        valued = np.zeros(0)
        if rule.points_each:  # score individually: an occurrence's points by its value
            valued = self.mapped(records, rule)
            where &= ~np.isnan(valued)
        window = rule.within_days * DAY_SECONDS if rule.within_days is not None else math.inf
        with np.errstate(invalid="ignore"):
            counted = (moment <= self.as_of) & (self.as_of - moment <= window) & where[rows]
        counted_keys, age = keys[counted], self.as_of - moment[counted]
        count = np.bincount(counted_keys, minlength=self.key_count)
        capped = np.zeros(self.key_count, dtype=bool)
        each = uncapped = np.zeros(0)
        band = np.full(self.key_count, -1)
        if rule.frequency:
            for index in reversed(range(len(rule.frequency))):
                band[_holds(rule.frequency[index], count)] = index
            bands = np.array([b.points for b in rule.frequency] + [0.0])
            total = bands[band]
        else:
            each = (
                valued[rows][counted] if rule.points_each else np.full(len(age), rule.points or 0.0)
            )
            if rule.decay:
                keep = 1.0 - rule.decay.percent / 100.0
                steps = np.floor(age / (rule.decay.every_days * DAY_SECONDS))
                factor = {k: keep ** int(k) for k in np.unique(steps).tolist()}
                each = each * np.array([factor[k] for k in steps.tolist()])
            total = _exact_sums(counted_keys, each, self.key_count)
            if rule.limit is not None:
                limit = abs(rule.limit)
                capped = np.abs(total) > limit
                uncapped = total
                total = np.where(capped, np.copysign(limit, total), total)
        if not self.detail:
            return total[self.key], None

        def explain_event(row: int) -> dict[str, Any]:
            key = self.key[row]
            mine = counted_keys == key
            inputs: dict[str, Any] = {"events": int(count[key])}
            if rule.frequency:
                index = band[key]
                inputs["band"] = rule.frequency[index].describe() if index >= 0 else None
            elif capped[key]:
                inputs["capped_from"] = float(uncapped[key])
            picked = rows[counted][mine]
            ids = records.ids.gather(picked).to_list()
            prop = rule.property or ""
            shown = records.column(prop).values.gather(picked).to_list() if rule.points_each else []
            occurrences: list[dict[str, Any]] = []
            for index, days in enumerate((age[mine] / DAY_SECONDS).tolist()):
                occurrence: dict[str, Any] = {"id": ids[index], "age_days": round(days, 2)}
                if rule.points_each:
                    occurrence[prop] = shown[index]
                if not rule.frequency:
                    occurrence["points"] = float(each[mine][index])
                occurrences.append(occurrence)
            inputs["occurrences"] = occurrences
            return inputs

        return total[self.key], explain_event

    @staticmethod
    def mapped(records: ObjectFrame, rule: Rule) -> FloatArray:
        """`points_each` of each record's `property` value; NaN where none matches."""
        table = rule.points_each
        return _floats(
            records.column(rule.property or "").per_value(
                lambda v: None if is_missing(v) else table.get(as_text(v)), pl.Float64
            )
        )

    def associated_rule(self, rule: Rule) -> tuple[FloatArray, Explainer | None]:
        kind = rule.associated or ""
        records = self.frame.of(kind)
        rows, keys = self.links(kind, rule.labels)
        if rule.property is None:
            holds = _all(
                len(records), [self.condition(records.column, c, kind, records) for c in rule.when]
            )
            per_record = np.where(holds, rule.points or 0.0, np.nan)
        else:
            per_record = self.mapped(records, rule)
        points = per_record[rows]
        matched = ~np.isnan(points)
        matched_keys, values = keys[matched], points[matched]
        count = np.bincount(matched_keys, minlength=self.key_count)
        if rule.aggregate in ("sum", "avg"):
            total = _exact_sums(matched_keys, values, self.key_count)
            if rule.aggregate == "avg":
                total = total / np.maximum(count, 1)
        else:
            extreme = np.full(self.key_count, np.inf if rule.aggregate == "min" else -np.inf)
            (np.minimum if rule.aggregate == "min" else np.maximum).at(
                extreme, matched_keys, values
            )
            total = np.where(count > 0, extreme, 0.0)
        if not self.detail:
            return total[self.key], None

        def explain_associated(row: int) -> dict[str, Any]:
            mine = rows[keys == self.key[row]]
            listed = [records.record(int(r)) for r in mine]
            prop = rule.property
            values = [
                {
                    "id": r.id,
                    **(
                        {prop: r.properties.get(prop)}
                        if prop
                        else self.seen(r.properties, rule.when, kind, r.id)
                    ),
                }
                for r in listed
            ]
            return {"records": len(listed), "matched": int(count[self.key[row]]), "values": values}

        return total[self.key], explain_associated

    # -- groups, score, results

    def combine(self) -> FloatArray:
        if self.playbook.combine == "sum":
            return _exact_row_sums(self.group_points, self.size)
        definitions = self.playbook.groups
        total_weight = math.fsum(d.weight for d in definitions)
        terms = [
            d.weight * points / (d.max_points or 1.0)
            for d, points in zip(definitions, self.group_points, strict=True)
        ]
        return _exact_row_sums(terms, self.size) / total_weight * 100

    def account_props(self, row: int) -> Mapping[str, Any]:
        """The account's properties plus the derived values, in definition order."""
        properties = self.accounts.properties(row)
        if not self.derived:
            return properties
        return {**properties, **{n: c.values[row] for n, c in self.derived.items()}}

    def seen(
        self, props: Mapping[str, Any], conditions: Iterable[Condition], kind: str, record_id: str
    ) -> dict[str, Any]:
        """What conditions saw: each property's value, and `list X: member` or `not a member`."""
        return {
            (f"list {c.in_list}" if c.in_list is not None else c.property): (
                _membership(record_id in self.members(kind, c.in_list))
                if c.in_list is not None
                else props.get(c.property)
            )
            for c in conditions
        }

    def results(self, rows: IntArray) -> list[AccountScore]:
        """`AccountScore`s of the given account rows, Python floats throughout. Without
        `detail`, each account's group and rule breakdown is built on first access."""
        table = _Table(self, rows)
        score = self.score[rows].tolist()
        status = self.status[rows].tolist()
        derived = {
            name: column.values.gather(rows).to_list() for name, column in self.derived.items()
        }
        shown = [n for n in (*NAME_PROPERTIES, OWNER) if n in self.accounts.table.columns]
        named = self.accounts.gather(rows).select(["id", *shown]).iter_rows()
        thresholds = self.playbook.thresholds
        out: list[AccountScore] = []
        collecting = gc.isenabled()
        gc.disable()  # a scoring pass allocates no cycles; the collector would only walk
        try:
            for at, (row, (account_id, *values)) in enumerate(
                zip(rows.tolist(), named, strict=True)
            ):
                seen = {n: v for n, v in zip(shown, values, strict=True) if v is not None}
                extra = {name: got[at] for name, got in derived.items()} if derived else _NONE
                threshold = thresholds[status[at]]
                out.append(
                    AccountScore(
                        id=account_id,
                        name=account_name(CrmRecord(account_id, seen)),
                        owner_id=seen.get(OWNER) or None,
                        score=score[at],
                        status=threshold.label,
                        color=threshold.color,
                        groups=table.groups(at, row) if self.detail else _Breakdown(table, at),
                        properties=_Properties(self.accounts, row, extra),
                    )
                )
        finally:
            if collecting:
                gc.enable()
        return out


class _Properties(Mapping[str, Any]):
    """An account's properties (set ones, column order) then its derived values, read
    from the frame when looked at and not kept: an action's `where` reads a property
    or two of every account, and a dict of all of them per account held through the
    run was about 2 KB an account (200 MB at 100k)."""

    __slots__ = ("_derived", "_frame", "_row")

    def __init__(self, frame: ObjectFrame, row: int, derived: dict[str, Any]) -> None:
        self._frame = frame
        self._row = row
        self._derived = derived

    def _values(self) -> dict[str, Any]:
        return {**self._frame.properties(self._row), **self._derived}

    def __getitem__(self, key: str) -> Any:
        if key in self._derived:
            return self._derived[key]
        if key == "id" or key not in self._frame.table.columns:
            raise KeyError(key)
        value = self._frame.column(key).values[self._row]
        if value is None:
            raise KeyError(key)  # unset: `properties` leaves it out
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __repr__(self) -> str:
        return repr(self._values())


class _Table:
    """Rule, raw and group points of the scored rows, for the breakdowns (read as Python
    floats when a breakdown is built)."""

    def __init__(self, run: _Run, rows: IntArray) -> None:
        # not the run itself: it holds the whole frame (every related record), which
        # the caller can let go once scored; the explainers reach it only with `detail`
        self.playbook = run.playbook
        self.explainers = run.explainers if run.detail else None
        self.rules = [[points[rows] for points in group] for group in run.rule_points]
        self.raw = [values[rows] for values in run.raw]
        self.points = [values[rows] for values in run.group_points]

    def group_points(self, at: int) -> dict[str, float]:
        """The `at`-th scored row's group points, rounded (`round2`, memoized): what the
        store reads of every account, without a `GroupScore` or `RuleScore` built."""
        groups = self.playbook.groups
        return {group.name: round2(float(self.points[g][at])) for g, group in enumerate(groups)}

    def rule_points(self, at: int) -> dict[str, dict[str, float]]:
        """The `at`-th scored row's rule points by group, rounded (`round2`)."""
        return {
            group.name: {
                rule.name: round2(float(self.rules[g][r][at])) for r, rule in enumerate(group.rules)
            }
            for g, group in enumerate(self.playbook.groups)
        }

    def groups(self, at: int, row: int | None = None) -> list[GroupScore]:
        """The breakdown of the `at`-th scored row (with inputs when `row` is given)."""
        return [self.group(g, at, row) for g in range(len(self.points))]

    def group(self, g: int, at: int, row: int | None = None) -> GroupScore:
        group = self.playbook.groups[g]
        rules = []
        for r, rule in enumerate(group.rules):
            explain = self.explainers[g][r] if self.explainers is not None else None
            inputs = explain(row) if row is not None and explain else {}
            rules.append(RuleScore(rule.name, rule.kind, float(self.rules[g][r][at]), inputs))
        return GroupScore(group.name, float(self.points[g][at]), float(self.raw[g][at]), rules)


class _Breakdown(Sequence[GroupScore], PointTables):
    """An account's `groups`, built from the run's columns each time they are read and
    not kept: a run that stores every account's breakdown holds one at a time."""

    __slots__ = ("_at", "_table")

    def __init__(self, table: _Table, at: int) -> None:
        self._table = table
        self._at = at

    @overload
    def __getitem__(self, index: int) -> GroupScore: ...
    @overload
    def __getitem__(self, index: slice) -> list[GroupScore]: ...
    def __getitem__(self, index: int | slice) -> GroupScore | list[GroupScore]:
        if isinstance(index, slice):
            return self._table.groups(self._at)[index]
        size = len(self)
        if not -size <= index < size:
            raise IndexError(index)
        return self._table.group(index % size, self._at)

    def __iter__(self) -> Iterator[GroupScore]:
        return iter(self._table.groups(self._at))

    def __len__(self) -> int:
        return len(self._table.points)

    def group_points(self) -> dict[str, float]:
        """`AccountScore.group_points` from the run's rounded columns (no objects built)."""
        return self._table.group_points(self._at)

    def rule_points(self) -> dict[str, dict[str, float]]:
        """`AccountScore.rule_points` from the run's rounded columns (no objects built)."""
        return self._table.rule_points(self._at)

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, Sequence) else other)

    def __repr__(self) -> str:
        return repr(self._table.groups(self._at))


class _ArrayBuilder:
    """`derived:` arithmetic over whole columns; NaN stands for unknown, and NaN and
    infinities propagate through + - * / exactly as the row evaluator's None does."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    def number(self, value: float) -> FloatArray:
        return np.full(self.run.size, value)

    def name(self, name: str) -> FloatArray:
        return self.run.prop(name).numbers()

    def binary(self, op: str, left: FloatArray, right: FloatArray) -> FloatArray:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        return np.where(right == 0, np.nan, left / right)

    def negate(self, operand: FloatArray) -> FloatArray:
        return -operand


_COMPARE: dict[str, Callable[[FloatArray, float], BoolArray]] = {
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}


def _membership(member: bool) -> str:
    return "member" if member else "not a member"


def _all(size: int, masks: list[BoolArray]) -> BoolArray:
    out = np.ones(size, dtype=bool)
    for mask in masks:
        out &= mask
    return out


def _floats(series: pl.Series) -> FloatArray:
    return series.to_numpy().astype(np.float64)


def _holds(band: Any, count: IntArray) -> BoolArray:
    if band.exactly is not None:
        return count == band.exactly
    if band.between is not None:
        return (band.between[0] <= count) & (count <= band.between[1])
    if band.at_least is not None:
        return count >= band.at_least
    return np.zeros(len(count), dtype=bool)


def _event_times(records: ObjectFrame, prop: str | None) -> FloatArray:
    """An event's time: `timestamp_property`, else `hs_timestamp`, else `createdate`."""
    if prop:
        return records.column(prop).times()
    moment = records.column("hs_timestamp").times()
    return np.where(np.isnan(moment), records.column("createdate").times(), moment)


def _clamp(raw: FloatArray, high: float | None, low: float | None) -> FloatArray:
    out = raw
    if low is not None:
        out = np.where(raw < low, low, out)
    if high is not None:
        out = np.where(raw > high, high, out)  # the cap wins over the floor, as the spec's order
    return out


def _exact_sums(keys: IntArray, values: FloatArray, size: int) -> FloatArray:
    """`math.fsum` of `values` per key (0.0 for a key without values), shape (size,)."""
    if not len(values):
        return np.zeros(size)
    counts = np.bincount(keys, minlength=size)
    if _exact_in_any_order(np.unique(values).tolist(), int(counts.max())):
        return np.bincount(keys, weights=values, minlength=size).astype(np.float64)
    order = np.argsort(keys, kind="stable")
    ends = np.cumsum(counts)
    ordered = values[order].tolist()
    spans = zip(counts.tolist(), ends.tolist(), strict=True)
    return np.array([math.fsum(ordered[end - n : end]) for n, end in spans])


def _exact_in_any_order(distinct: list[float], most: int) -> bool:
    """True when any sum of at most `most` of these values is exact in floating point:
    all are integer multiples of 2**-e, and `most` of the largest stays below 2**53
    such units, so every partial sum is a representable double, no addition rounds,
    and the float sum is the exact sum, which is what `math.fsum` returns."""
    if not all(math.isfinite(v) for v in distinct):
        return False
    ratios = [v.as_integer_ratio() for v in distinct]  # denominators are powers of two
    shift = max(den.bit_length() - 1 for _, den in ratios)
    largest = max(abs(num) << (shift - den.bit_length() + 1) for num, den in ratios)
    return most * largest < _EXACT


def _exact_row_sums(columns: Sequence[FloatArray], size: int) -> FloatArray:
    """`math.fsum` across `columns`, row by row. Added left to right; Knuth's TwoSum
    gives each addition's rounding error exactly, and a row whose additions were all
    exact has the exact sum (= fsum's); the other rows are summed by `math.fsum`."""
    if not columns:
        return np.zeros(size)
    total = np.array(columns[0], dtype=np.float64)
    inexact = ~np.isfinite(total)
    with np.errstate(all="ignore"):
        for column in columns[1:]:
            added = total + column
            back = added - total
            error = (total - (added - back)) + (column - back)
            inexact |= (error != 0) | ~np.isfinite(added)
            total = added
    if inexact.any():
        rows = [column[inexact].tolist() for column in columns]
        total[inexact] = list(map(math.fsum, zip(*rows, strict=True)))
    return total
