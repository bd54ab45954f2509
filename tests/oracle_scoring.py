"""The reference engine: the row-at-a-time scorer the product used before the
columnar one (healthscore/core/engine.py), kept as the oracle of
tests/test_engine_differential.py and benchmarks/bench_scoring.py.

The playbook is compiled once into closures (`RowScorer`), then every account costs
one pass over its own properties and associated records. It reads PLAYBOOK_SPEC.md
literally, one record and one `math.fsum` at a time, which is what makes it a good
oracle for the columnar engine's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from healthscore.core.conditions import Predicate, compile_all
from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.playbook import Condition, Group, Playbook, Rule
from healthscore.core.results import AccountScore, GroupScore, RuleScore, account_name
from healthscore.core.values import DAY_SECONDS, as_number, as_text, as_timestamp, is_missing

Related = Mapping[str, Sequence[CrmRecord]]


class Context:
    """The account being scored and the snapshot's lists (list-membership conditions)."""

    def __init__(self, snapshot: CrmSnapshot | None, account_object: str) -> None:
        self.snapshot = snapshot or CrmSnapshot()
        self.account_object = account_object
        self.account_id = ""

    def member(self, kind: str, reference: str, record_id: str) -> bool:
        type_id = self.snapshot.type_id(kind)
        for candidate in self.snapshot.lists:
            if candidate.matches(reference, type_id):
                return record_id in candidate.members
        raise LookupError(reference)


Holds = Callable[[Mapping[str, Any], str, Context, float], bool]
RuleFunction = Callable[[Mapping[str, Any], Related, float, bool, Context], "RuleScore"]

NO_RECORDS: tuple[CrmRecord, ...] = ()
NO_INPUTS: Mapping[str, Any] = MappingProxyType({})  # what a rule saw, kept only for `explain`


class RowScorer:
    """A playbook compiled into one closure per rule, applied account by account."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        options = [_predicate(option, playbook.object) for option in playbook.segment_options()]
        self._segment: Holds = lambda props, rid, ctx, t: (
            not options or any(o(props, rid, ctx, t) for o in options)
        )
        self._derived = playbook.derived
        # Event times parsed once per account and shared by every rule reading them.
        self._event_times: dict[str | None, dict[int, float | None]] = {}
        self._groups = [
            (
                group,
                [_compile_rule(r, self._event_times, playbook.object) for r in group.rules],
            )
            for group in playbook.groups
        ]

    def account_properties(self, record: CrmRecord) -> Mapping[str, Any]:
        """The record's properties plus the playbook's derived values, in definition order."""
        if not self._derived:
            return record.properties
        props: dict[str, Any] = dict(record.properties)
        for name, expression in self._derived:
            props[name] = expression.evaluate(props)
        return props

    def in_segment(self, props: Mapping[str, Any], as_of: float) -> bool:
        return self._segment(props, as_of)

    def score_snapshot(self, snapshot: CrmSnapshot, as_of: datetime) -> list[AccountScore]:
        """Score every in-segment account of the snapshot, in snapshot order."""
        related = snapshot.related(self.playbook.object)
        accounts = snapshot.records(self.playbook.object)
        return list(self.score_records(accounts, related, as_of, snapshot))

    def score_records(
        self,
        accounts: Iterable[CrmRecord],
        related: Mapping[str, Mapping[str, Sequence[CrmRecord]]],
        as_of: datetime,
        snapshot: CrmSnapshot | None = None,
    ) -> Iterable[AccountScore]:
        moment = as_of.timestamp()
        ctx = Context(snapshot, self.playbook.object)
        for record in accounts:
            props = self.account_properties(record)
            ctx.account_id = record.id
            if not self._segment(props, record.id, ctx, moment):
                continue
            mine = {kind: by_id.get(record.id, NO_RECORDS) for kind, by_id in related.items()}
            yield self._score(record, props, mine, moment, ctx, detail=False)

    def explain(
        self, record: CrmRecord, snapshot: CrmSnapshot, as_of: datetime
    ) -> tuple[bool, AccountScore]:
        """Score one account with every rule's inputs; also says if it is in the segment."""
        related = snapshot.related(self.playbook.object)
        mine = {kind: by_id.get(record.id, NO_RECORDS) for kind, by_id in related.items()}
        props = self.account_properties(record)
        moment = as_of.timestamp()
        ctx = Context(snapshot, self.playbook.object)
        ctx.account_id = record.id
        return (
            self._segment(props, record.id, ctx, moment),
            self._score(record, props, mine, moment, ctx, detail=True),
        )

    def _score(
        self,
        record: CrmRecord,
        props: Mapping[str, Any],
        related: Related,
        as_of: float,
        ctx: Context,
        detail: bool,
    ) -> AccountScore:
        for times in self._event_times.values():
            times.clear()
        groups: list[GroupScore] = []
        for group, rules in self._groups:
            results = [rule(props, related, as_of, detail, ctx) for rule in rules]
            raw = group.start + math.fsum(r.points for r in results)
            groups.append(GroupScore(group.name, _clamp_group(raw, group), raw, results))
        score = self._combine(groups)
        status = self.playbook.status_of(score)
        return AccountScore(
            id=record.id,
            name=account_name(record),
            owner_id=record.properties.get("hubspot_owner_id") or None,
            score=score,
            status=status.label,
            color=status.color,
            groups=groups,
            properties=props,
        )

    def _combine(self, groups: list[GroupScore]) -> float:
        if self.playbook.combine == "sum":
            return math.fsum(g.points for g in groups)
        definitions = self.playbook.groups
        total_weight = math.fsum(d.weight for d in definitions)
        weighted = math.fsum(
            d.weight * g.points / (d.max_points or 1.0)
            for d, g in zip(definitions, groups, strict=True)
        )
        return weighted / total_weight * 100


def _clamp_group(raw: float, group: Group) -> float:
    if group.max_points is not None and raw > group.max_points:
        return group.max_points
    if group.min_points is not None and raw < group.min_points:
        return group.min_points
    return raw


# ---------------------------------------------------------------- rule kinds


def _compile_rule(
    rule: Rule, event_times: dict[str | None, dict[int, float | None]], account_object: str
) -> RuleFunction:
    if rule.kind == "event":
        return _event_rule(rule, event_times.setdefault(rule.timestamp_property, {}))
    if rule.kind == "property":
        return _property_rule(rule, account_object)
    return {
        "value_map": _value_map_rule,
        "scale": _scale_rule,
        "associated": _associated_rule,
    }[rule.kind](rule)


def _predicate(conditions: tuple[Condition, ...], kind: str) -> Holds:
    """AND of conditions on a record of `kind`: properties, and list memberships by id."""
    on_props: Predicate = compile_all([c.as_tuple() for c in conditions if c.in_list is None])
    lists = [(c.in_list, c.member) for c in conditions if c.in_list is not None]

    def holds(props: Mapping[str, Any], record_id: str, ctx: Context, as_of: float) -> bool:
        if not on_props(props, as_of):
            return False
        return all(ctx.member(kind, name, record_id) == member for name, member in lists)

    return holds


def _seen(
    props: Mapping[str, Any],
    conditions: Iterable[Condition],
    kind: str,
    record_id: str,
    ctx: Context,
) -> dict[str, Any]:
    return {
        (f"list {c.in_list}" if c.in_list is not None else c.property): (
            ("member" if ctx.member(kind, c.in_list, record_id) else "not a member")
            if c.in_list is not None
            else props.get(c.property)
        )
        for c in conditions
    }


def _labelled(rule: Rule, records: Sequence[CrmRecord], ctx: Context) -> Sequence[CrmRecord]:
    """The records whose pair with the account carries one of the rule's labels."""
    if not rule.labels:
        return records
    return [
        r
        for r in records
        if set(r.labels_of(ctx.account_object, ctx.account_id)) & set(rule.labels)
    ]


def _property_rule(rule: Rule, account_object: str) -> RuleFunction:
    holds = _predicate(rule.when, account_object)
    points = rule.points or 0.0

    def evaluate(
        props: Mapping[str, Any], _r: Related, as_of: float, detail: bool, ctx: Context
    ) -> RuleScore:
        matched = holds(props, ctx.account_id, ctx, as_of)
        seen = _seen(props, rule.when, account_object, ctx.account_id, ctx) if detail else {}
        inputs = {**seen, "matched": matched} if detail else NO_INPUTS
        return RuleScore(rule.name, rule.kind, points if matched else 0.0, inputs)

    return evaluate


def _value_map_rule(rule: Rule) -> RuleFunction:
    prop = rule.property or ""
    table = rule.points_each

    def evaluate(
        props: Mapping[str, Any], _r: Related, _t: float, detail: bool, _c: Context
    ) -> RuleScore:
        value = props.get(prop)
        points = 0.0 if is_missing(value) else table.get(as_text(value), 0.0)
        return RuleScore(rule.name, rule.kind, points, {prop: value} if detail else NO_INPUTS)

    return evaluate


def _scale_rule(rule: Rule) -> RuleFunction:
    prop = rule.property or ""
    (a, b), (c, d) = rule.scale_from or (0.0, 1.0), rule.scale_to or (0.0, 1.0)
    low, high = min(c, d), max(c, d)

    def evaluate(
        props: Mapping[str, Any], _r: Related, _t: float, detail: bool, _c: Context
    ) -> RuleScore:
        value = props.get(prop)
        number = as_number(value)
        inputs = {prop: value} if detail else NO_INPUTS
        if number is None:
            return RuleScore(rule.name, rule.kind, 0.0, inputs)
        mapped = c + (number - a) * (d - c) / (b - a)
        return RuleScore(rule.name, rule.kind, min(max(mapped, low), high), inputs)

    return evaluate


def _event_rule(rule: Rule, times: dict[int, float | None]) -> RuleFunction:
    kind = rule.event or ""
    where = _predicate(rule.where, kind)
    prop = rule.property or ""
    table = rule.points_each
    window = rule.within_days * DAY_SECONDS if rule.within_days is not None else math.inf
    time_of = _event_time(rule.timestamp_property)
    per_occurrence = rule.points or 0.0
    decay = rule.decay
    keep = 1.0 - decay.percent / 100.0 if decay else 1.0
    step = decay.every_days * DAY_SECONDS if decay else 1.0
    limit = abs(rule.limit) if rule.limit is not None else None

    def evaluate(
        _props: Mapping[str, Any], related: Related, as_of: float, detail: bool, ctx: Context
    ) -> RuleScore:
        count = 0
        each: list[float] = []
        occurrences: list[dict[str, Any]] = []
        for record in _labelled(rule, related.get(kind, NO_RECORDS), ctx):
            key = id(record)  # the record outlives the account's scoring, so its id is stable
            if key in times:
                moment = times[key]
            else:
                moment = times[key] = time_of(record.properties)
            if moment is None or moment > as_of or as_of - moment > window:
                continue
            if not where(record.properties, record.id, ctx, as_of):
                continue
            base = per_occurrence
            if table:  # score individually: the occurrence's value picks its points
                value = record.properties.get(prop)
                picked = None if is_missing(value) else table.get(as_text(value))
                if picked is None:
                    continue
                base = picked
            count += 1
            points = base * keep ** math.floor((as_of - moment) / step) if decay else base
            each.append(points)
            if detail:
                age = (as_of - moment) / DAY_SECONDS
                occurrence: dict[str, Any] = {"id": record.id, "age_days": round(age, 2)}
                if table:
                    occurrence[prop] = record.properties.get(prop)
                if not rule.frequency:
                    occurrence["points"] = points
                occurrences.append(occurrence)
        inputs: dict[str, Any] = {"events": count}
        if rule.frequency:
            band = next((b for b in rule.frequency if b.holds(count)), None)
            inputs["band"] = band.describe() if band else None
            total = band.points if band else 0.0
        else:
            total = math.fsum(each)
            if limit is not None and abs(total) > limit:
                inputs["capped_from"] = total
                total = math.copysign(limit, total)
        if not detail:
            return RuleScore(rule.name, rule.kind, total, NO_INPUTS)
        inputs["occurrences"] = occurrences
        return RuleScore(rule.name, rule.kind, total, inputs)

    return evaluate


def _event_time(prop: str | None) -> Callable[[Mapping[str, Any]], float | None]:
    if prop:
        return lambda props: as_timestamp(props.get(prop))

    def hubspot_time(props: Mapping[str, Any]) -> float | None:
        moment = as_timestamp(props.get("hs_timestamp"))
        return moment if moment is not None else as_timestamp(props.get("createdate"))

    return hubspot_time


_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum,
    "avg": lambda values: math.fsum(values) / len(values),
    "min": min,
    "max": max,
}


def _associated_rule(rule: Rule) -> RuleFunction:
    kind = rule.associated or ""
    holds = _predicate(rule.when, kind)
    prop = rule.property
    table = rule.points_each
    points_when = rule.points or 0.0
    aggregate = _AGGREGATES[rule.aggregate]

    def points_of(record: CrmRecord, as_of: float, ctx: Context) -> float | None:
        if prop is None:
            return points_when if holds(record.properties, record.id, ctx, as_of) else None
        value = record.properties.get(prop)
        return None if is_missing(value) else table.get(as_text(value))

    def evaluate(
        _props: Mapping[str, Any], related: Related, as_of: float, detail: bool, ctx: Context
    ) -> RuleScore:
        records = _labelled(rule, related.get(kind, NO_RECORDS), ctx)
        matched: list[float] = []
        for record in records:
            points = points_of(record, as_of, ctx)
            if points is not None:
                matched.append(points)
        total = aggregate(matched) if matched else 0.0
        if not detail:
            return RuleScore(rule.name, rule.kind, total, NO_INPUTS)
        values = [
            {
                "id": r.id,
                **(
                    {prop: r.properties.get(prop)}
                    if prop
                    else _seen(r.properties, rule.when, kind, r.id, ctx)
                ),
            }
            for r in records
        ]
        inputs = {"records": len(records), "matched": len(matched), "values": values}
        return RuleScore(rule.name, rule.kind, total, inputs)

    return evaluate
