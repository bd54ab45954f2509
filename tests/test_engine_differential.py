"""The columnar engine gives exactly the row engine's numbers: a differential test.

The product scores with the columnar engine (healthscore/core/engine.py); the
row-at-a-time engine it replaced lives on as the oracle (tests/oracle_scoring.py).
Hypothesis draws random valid playbooks over every rule kind, operator, aggregate,
decay, limit, frequency band, derived value, group clamp and both combines, and
random CRMs full of missing values, bad numbers, dates in every format (and
garbage), future events and duplicated associations, with list-membership conditions
(by list name and id, members and non-members), up to five segments, association
labels on event and associated rules and event value maps ("score individually");
every account's score, status, group points and rule points must be equal, bit for bit, and so must
`explain`'s inputs.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from oracle_scoring import RowScorer
from test_properties import near, values

from healthscore.core.conditions import OPERATORS
from healthscore.core.crm import OBJECT_TYPE_IDS, CrmList, CrmRecord, CrmSnapshot
from healthscore.core.frame import Column
from healthscore.core.playbook import Playbook, parse_playbook
from healthscore.core.results import AccountScore
from healthscore.core.scoring import Scorer
from healthscore.core.values import as_number, as_timestamp

ACCOUNT_PROPS = ["p0", "p1", "p2", "p3"]
DERIVED = {
    "d0": "p0 / p1",
    "d1": "(p0 - p1) * 2 / (p1 + 1)",
    "d2": "d0 * d0 - 1",
    "p3": "-p3 + 3.5",  # a derived value replacing a CRM property
}
EVENT_TYPES = ["meetings", "calls"]
EVENT_PROPS = ["hs_timestamp", "createdate", "t2", "kind", "x"]
RELATED_TYPES = ["contacts", "deals"]
RELATED_PROPS = ["kind", "x", "y"]
LIST_NAMES = ["L0", "L1"]  # one list of each name per object type, by name or list id
LABELS = ["Decision maker", "Billing", "Champion"]
VOCABULARY = ["a", "B", " b ", "3", "3.0", "5", "-2.5", "10", "0.1", "ä", "SS", "ß"]

POINTS = st.sampled_from([0, 1, -1, 3, -4, 0.5, 2.25, 0.1, 0.2, -0.3, 7.5, 1e-3, 1 / 3])
NUMBER = st.one_of(
    st.integers(-20, 20), st.sampled_from([0.1, 2.5, -0.3, 1e-9, 1e15, 3.0000000000000004])
)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def conditions(draw: st.DrawFn, props: list[str]) -> dict[str, Any]:
    if draw(st.integers(0, 5)) == 0:  # a list-membership condition
        reference = draw(st.sampled_from([*LIST_NAMES, "l0"]))
        membership: dict[str, Any] = {"list": reference}
        if draw(st.booleans()):
            membership["member"] = draw(st.booleans())
        return membership
    op = draw(st.sampled_from(sorted(OPERATORS)))
    condition: dict[str, Any] = {"property": draw(st.sampled_from(props)), "op": op}
    if op in ("eq", "neq", "contains"):
        condition["value"] = draw(st.one_of(st.sampled_from(VOCABULARY), NUMBER))
    elif op in ("in", "not_in"):
        items = st.one_of(st.sampled_from(VOCABULARY), NUMBER)
        condition["value"] = draw(st.lists(items, min_size=1, max_size=3))
    elif op in ("gt", "gte", "lt", "lte"):
        condition["value"] = draw(NUMBER)
    elif op == "between":
        condition["value"] = sorted(draw(st.lists(NUMBER, min_size=2, max_size=2)))
    elif op not in ("known", "unknown"):
        condition["value"] = draw(st.one_of(st.integers(0, 120), st.sampled_from([0.5, 30.25])))
    return condition


@st.composite
def rules(draw: st.DrawFn, account_props: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["property", "value_map", "scale", "event", "associated"]))
    table = st.dictionaries(st.sampled_from(VOCABULARY), POINTS, min_size=1, max_size=4)
    if kind == "property":
        when = draw(st.lists(conditions(account_props), min_size=1, max_size=2))
        return {"when": when, "points": draw(POINTS)}
    if kind == "value_map":
        return {"property": draw(st.sampled_from(account_props)), "points_each": draw(table)}
    if kind == "scale":
        low, high = draw(st.lists(NUMBER, min_size=2, max_size=2, unique=True))
        to = draw(st.lists(NUMBER, min_size=2, max_size=2))
        return {
            "property": draw(st.sampled_from(account_props)),
            "scale": {"from": [low, high], "to": to},
        }
    if kind == "associated":
        rule: dict[str, Any] = {"associated": draw(st.sampled_from([*RELATED_TYPES, "companies"]))}
        if draw(st.booleans()):
            rule["when"] = draw(st.lists(conditions(RELATED_PROPS), min_size=1, max_size=2))
            rule["points"] = draw(POINTS)
        else:
            rule["property"] = draw(st.sampled_from(RELATED_PROPS))
            rule["points_each"] = draw(table)
        rule["aggregate"] = draw(st.sampled_from(["sum", "avg", "min", "max"]))
        _maybe_labels(draw, rule)
        return rule
    rule = {"event": draw(st.sampled_from([*EVENT_TYPES, "contacts", "companies"]))}
    _maybe_labels(draw, rule)
    if draw(st.booleans()):
        rule["where"] = draw(st.lists(conditions(EVENT_PROPS), min_size=1, max_size=2))
    if draw(st.booleans()):
        rule["within_days"] = draw(st.sampled_from([0, 1, 30, 90, 0.5, 365]))
    if draw(st.integers(0, 3)) == 0:
        rule["timestamp_property"] = draw(st.sampled_from(["t2", "createdate"]))
    if draw(st.integers(0, 3)) == 0:
        bands = []
        for _ in range(draw(st.integers(1, 3))):
            shape = draw(st.sampled_from(["exactly", "between", "at_least"]))
            if shape == "between":
                bands.append(
                    {"between": sorted(draw(st.lists(st.integers(0, 4), min_size=2, max_size=2)))}
                )
            else:
                bands.append({shape: draw(st.integers(0, 4))})
            bands[-1]["points"] = draw(POINTS)
        rule["frequency"] = bands
        return rule
    if draw(st.integers(0, 2)) == 0:  # score individually on an event property
        rule["property"] = draw(st.sampled_from(["kind", "x"]))
        rule["points_each"] = draw(table)
    else:
        rule["points"] = draw(POINTS)
    if draw(st.booleans()):
        rule["limit"] = draw(st.sampled_from([0, 1, 2.5, 8, 0.3]))
    if draw(st.booleans()):
        rule["decay"] = {
            "percent": draw(st.sampled_from([0, 10, 50, 33.3, 100])),
            "every_days": draw(st.sampled_from([1, 7, 30, 0.5, 2.75])),
        }
    return rule


def _maybe_labels(draw: st.DrawFn, rule: dict[str, Any]) -> None:
    if draw(st.integers(0, 2)) == 0:
        labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=2, unique=True))
        rule["label"] = labels[0] if len(labels) == 1 and draw(st.booleans()) else labels


@st.composite
def playbooks(draw: st.DrawFn) -> Playbook:
    derived = {n: DERIVED[n] for n in draw(st.lists(st.sampled_from(list(DERIVED)), unique=True))}
    if "d2" in derived and "d0" not in derived:
        derived = {"d0": DERIVED["d0"], **derived}
    account_props = [*ACCOUNT_PROPS, *derived]
    combine = draw(st.sampled_from(["sum", "weighted"]))
    groups = []
    for index in range(draw(st.integers(1, 3))):
        group: dict[str, Any] = {
            "name": f"G{index}",
            "rules": draw(st.lists(rules(account_props), min_size=1, max_size=4)),
        }
        if combine == "weighted" or draw(st.booleans()):
            group["max_points"] = draw(st.sampled_from([1, 5, 10, 12.5, 40]))
        if draw(st.booleans()):
            floor = draw(st.sampled_from([0, -5, 2]))
            group["min_points"] = min(floor, group.get("max_points", floor))
        if draw(st.booleans()):
            group["start"] = draw(st.sampled_from([0, 10, -2.5, 0.1]))
        if combine == "weighted":
            group["weight"] = draw(st.sampled_from([1, 2, 0.5, 3]))
        groups.append(group)
    book: dict[str, Any] = {"name": "Differential", "combine": combine, "groups": groups}
    if derived:
        book["derived"] = derived
    if draw(st.booleans()):
        book["segment"] = draw(st.lists(conditions(account_props), min_size=1, max_size=2))
    elif draw(st.booleans()):  # HubSpot's segments: any one of up to five
        book["segments"] = draw(
            st.lists(
                st.lists(conditions(account_props), min_size=1, max_size=2), min_size=1, max_size=5
            )
        )
    if draw(st.booleans()):
        book["thresholds"] = [
            {"min": 5, "label": "Healthy"},
            {"min": 0.5, "label": "Neutral"},
            {"min": 0, "label": "At-risk"},
        ]
    return parse_playbook(json.dumps(book), "differential.json")


@st.composite
def crms(draw: st.DrawFn) -> tuple[CrmSnapshot, datetime]:
    as_of = draw(
        st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        )
    )
    anything = values(as_of)
    likely = st.one_of(st.sampled_from(VOCABULARY), near(as_of))
    value = st.one_of(likely, likely, anything)
    ids = [str(i) for i in range(draw(st.integers(1, 5)))]
    if draw(st.integers(0, 4)) == 0:
        ids.append(ids[0])  # a duplicated account id
    targets = st.lists(st.sampled_from([*ids, "404"]), max_size=3)  # repeats too

    label_sets = st.lists(st.sampled_from(LABELS), max_size=2, unique=True)

    def record(index: int, names: list[str], linked: bool) -> CrmRecord:
        props = {n: draw(value) for n in names if draw(st.integers(0, 3))}
        links = {"companies": draw(targets)} if linked else {}
        labels = {"companies": {i: draw(label_sets) for i in links.get("companies", [])}}
        return CrmRecord(str(index), props, links, labels if linked else {})

    objects = {"companies": [record(int(i), [*ACCOUNT_PROPS, "name"], False) for i in ids]}
    for kind in EVENT_TYPES + RELATED_TYPES:
        names = EVENT_PROPS if kind in EVENT_TYPES else RELATED_PROPS
        objects[kind] = [record(100 + i, names, True) for i in range(draw(st.integers(0, 8)))]
    lists = [  # "l0" names list L0 of the contacts by its id; ids of every type may be members
        CrmList(
            name=name,
            object_type_id=OBJECT_TYPE_IDS[kind],
            members=frozenset(draw(st.lists(st.sampled_from([*ids, *map(str, range(100, 108))])))),
            list_id="l0" if (name, kind) == ("L0", "contacts") else None,
        )
        for kind in ["companies", *EVENT_TYPES, *RELATED_TYPES]
        for name in LIST_NAMES
    ]
    return CrmSnapshot(objects=objects, lists=lists), as_of


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _assert_equal(new: AccountScore, old: AccountScore) -> None:
    assert (new.id, new.name, new.owner_id, new.status, new.color) == (
        old.id,
        old.name,
        old.owner_id,
        old.status,
        old.color,
    )
    assert _same(new.score, old.score), (new.score, old.score)
    assert dict(new.properties) == dict(old.properties)
    for group, reference in zip(new.groups, old.groups, strict=True):
        assert group.name == reference.name
        assert _same(group.points, reference.points) and _same(group.raw, reference.raw)
        for rule, expected in zip(group.rules, reference.rules, strict=True):
            assert (rule.name, rule.kind) == (expected.name, expected.kind)
            assert _same(rule.points, expected.points), (rule.name, rule.points, expected.points)
    assert json.dumps(new.to_json()) == json.dumps(old.to_json())


@SETTINGS
@given(playbooks(), crms())
def test_the_columnar_engine_gives_the_row_engines_numbers(
    playbook: Playbook, crm: tuple[CrmSnapshot, datetime]
) -> None:
    snapshot, as_of = crm
    new = Scorer(playbook).score_snapshot(snapshot, as_of)
    old = RowScorer(playbook).score_snapshot(snapshot, as_of)
    assert [s.id for s in new] == [s.id for s in old]
    for mine, reference in zip(new, old, strict=True):
        _assert_equal(mine, reference)
    for record in snapshot.records("companies"):
        member, explained = Scorer(playbook).explain(record, snapshot, as_of)
        expected_member, expected = RowScorer(playbook).explain(record, snapshot, as_of)
        assert member == expected_member
        _assert_equal(explained, expected)
        for group, reference in zip(explained.groups, expected.groups, strict=True):
            for rule, oracle in zip(group.rules, reference.rules, strict=True):
                assert repr(rule.inputs) == repr(oracle.inputs), rule.name


@SETTINGS
@given(st.lists(st.one_of(values(datetime(2026, 1, 1, tzinfo=UTC)), st.sampled_from(VOCABULARY))))
@example(["1000007", "2024-01-15T10:00:00.123Z", "2024-02-30", "0.1", "123456789012345.12345"])
def test_columns_parse_numbers_and_times_as_values_py(texts: list[str | None]) -> None:
    column = Column(pl.Series(texts, dtype=pl.String))
    numbers = [as_number(t) for t in texts]
    times = [as_timestamp(t) for t in texts]
    assert [None if math.isnan(n) else n for n in column.numbers().tolist()] == numbers
    assert [None if math.isnan(t) else t for t in column.times().tolist()] == times
