"""Building the model from a validated YAML tree: defaults filled, names given.

Runs only on a tree `check.validate` found no problem in, so it indexes without
checking. Rules and actions without a `name` get one from their content
(`default_rule_name`), made unique within their group.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from healthscore.core.derived import parse_expression
from healthscore.core.playbook.check import default_action_name, rule_kind
from healthscore.core.playbook.issues import position_of
from healthscore.core.playbook.model import (
    DEFAULT_THRESHOLDS,
    WINDOW_TRIGGERS,
    Action,
    Band,
    Condition,
    Decay,
    Enrichment,
    Group,
    Playbook,
    Rule,
    Threshold,
    TrendSettings,
    Trigger,
    WritebackNames,
    plain,
    show_value,
)
from healthscore.core.schema import COMMON_ACTION_FIELDS, TRIGGERS, KindSchemas
from healthscore.core.values import as_text


def build(
    data: Mapping[str, Any], filename: str, content_hash: str, kinds: KindSchemas | None
) -> Playbook:
    """The model of a validated YAML tree; an action's options get its kind's `default`s."""
    thresholds: Sequence[Mapping[str, Any]] = data.get("thresholds") or DEFAULT_THRESHOLDS
    trend = data.get("trend") or {}
    return Playbook(
        name=data["name"],
        description=data.get("description"),
        object=data.get("object", "companies"),
        segment=_conditions(data.get("segment")),
        segments=tuple(_conditions(option) for option in data.get("segments") or []),
        derived=tuple(
            (str(name), parse_expression(str(src)))
            for name, src in (data.get("derived") or {}).items()
        ),
        enrich=tuple(
            _enrichment(e, position_of(data, ("enrich", i))[0])
            for i, e in enumerate(data.get("enrich") or [])
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
        actions=tuple(
            _action(a, trend, kinds, position_of(data, ("actions", i))[0])
            for i, a in enumerate(data.get("actions") or [])
        ),
        writeback=bool(data.get("writeback", True)),
        writeback_names=_writeback_names(data.get("writeback")),
        timezone=str(data.get("timezone", "UTC")),
        enroll_existing=bool(data.get("enroll_existing", False)),
        path=filename,
        content_hash=content_hash,
    )


def _writeback_names(data: Any) -> WritebackNames:
    """`writeback: {prefix, label, group}`; `true`/`false` name nothing."""
    if not isinstance(data, Mapping):
        return WritebackNames()
    return WritebackNames(
        **{key: str(data[key]) for key in ("prefix", "label", "group") if data.get(key)}
    )


def _enrichment(data: Mapping[str, Any], line: int) -> Enrichment:
    return Enrichment(
        name=str(data["name"]),
        key_account=str(data["key"]["account"]).strip(),
        key_column=str(data["key"]["column"]).strip(),
        query=data.get("query"),
        url_env=data.get("url_env"),
        url=data.get("url"),
        file=data.get("file"),
        writeback=tuple(str(c) for c in data.get("writeback") or ()),
        line=line,
    )


def _color(threshold: Mapping[str, Any]) -> str:
    return {"healthy": "green", "neutral": "yellow", "at-risk": "red"}.get(
        str(threshold["label"]).casefold(), "gray"
    )


def _conditions(items: list[Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    return tuple(_condition(c) for c in items or [])


def _condition(data: Mapping[str, Any]) -> Condition:
    if "list" in data:
        return Condition(
            "", "list", in_list=str(data["list"]).strip(), member=data.get("member", True)
        )
    return Condition(str(data["property"]), str(data["op"]), plain(data.get("value")))


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
    kind = rule_kind(data)
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
        labels=_labels(data.get("label")),
        description=data.get("description"),
    )
    return Rule(**{**rule.__dict__, "name": data.get("name") or default_rule_name(rule)})


def _labels(value: Any) -> tuple[str, ...]:
    """`label: X` or `label: [X, Y]` as a tuple of labels (any one of them counts)."""
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def default_rule_name(rule: Rule) -> str:
    """A readable name from the rule's content, for reports and the JSON output."""
    if rule.kind == "property":
        return " and ".join(c.describe() for c in rule.when)
    if rule.kind == "value_map":
        return f"{rule.property} value"
    if rule.kind == "scale":
        return f"{rule.property} scale"
    labelled = f" labelled {' or '.join(rule.labels)}" if rule.labels else ""
    if rule.kind == "event":
        text = f"{rule.event}{labelled}"
        if rule.points_each:
            text += f" by {rule.property}"
        if rule.where:
            text += " where " + " and ".join(c.describe() for c in rule.where)
        if rule.within_days is not None:
            text += f" in last {show_value(rule.within_days)} days"
        return ("count of " if rule.frequency else "") + text
    what = rule.property or " and ".join(c.describe() for c in rule.when)
    return f"{rule.associated}{labelled} {what} ({rule.aggregate})"


def _action(
    data: Mapping[str, Any], trend: Mapping[str, Any], kinds: KindSchemas | None, line: int
) -> Action:
    trigger = data["on"]
    kind = next(k for k in TRIGGERS if k in trigger)
    within = trigger.get("within_days")
    if within is None and kind in WINDOW_TRIGGERS:
        within = trend.get("compare_days", 30)
    options = {k: plain(v) for k, v in data.items() if k not in COMMON_ACTION_FIELDS}
    declared = (kinds or {}).get(data["do"], {}).get("properties", {})
    for key, definition in declared.items():
        if "default" in definition:
            options.setdefault(key, copy.deepcopy(definition["default"]))
    return Action(
        name=data.get("name") or default_action_name(data),
        kind=data["do"],
        trigger=Trigger(
            kind=kind,
            value=plain(trigger[kind]),
            within_days=_float_or_none(within),
            every_run=bool(trigger.get("every_run", False)),
        ),
        where=_conditions(data.get("where")),
        options=options,
        line=line,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
