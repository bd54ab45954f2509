"""Property-based tests: scoring and parsing never crash, whatever the CRM or the user sends.

HubSpot sends every property as a string, and CRMs are full of "n/a", "1,200",
empty strings, dates in three formats and epoch milliseconds from the year 50,000.
The spec says a value that does not parse makes a condition false, never a crash;
these tests throw that at a playbook that uses every rule kind and every operator.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from healthscore.core.conditions import OPERATORS
from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.derived import ExpressionError, parse_expression
from healthscore.core.playbook import Playbook, PlaybookError, parse_playbook
from healthscore.core.scoring import Scorer, score_snapshot

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every rule kind, every operator, both aggregates of associated rules, decay,
# limits, frequency bands, a reversed scale and derived values. `{combine}` and the
# weights make the same playbook a HubSpot sum or a weighted 0..100 score.
EVERY_RULE_KIND = """\
name: Every rule kind
object: companies
segment:
  - {{property: lifecyclestage, op: known}}
derived:
  usage_per_seat: active_users / seats_purchased
  headroom: (seats_purchased - active_users) * 2 / (seats_purchased + 1)
  usage_squared: usage_per_seat * usage_per_seat - 1
combine: {combine}
groups:
  - name: Properties
    weight: 3
    max_points: 30
    min_points: -10
    start: 5
    rules:
      - {{when: [{{property: lifecyclestage, op: eq, value: customer}}], points: 3}}
      - {{when: [{{property: lifecyclestage, op: neq, value: churned}}], points: 1}}
      - {{when: [{{property: plan, op: in, value: [pro, enterprise, 3]}}], points: 4}}
      - {{when: [{{property: plan, op: not_in, value: [free, trial]}}], points: 1}}
      - {{when: [{{property: active_users, op: gt, value: 10}}], points: 2}}
      - {{when: [{{property: active_users, op: gte, value: 0.5}}], points: 1}}
      - {{when: [{{property: nps, op: lt, value: 0}}], points: -5}}
      - {{when: [{{property: nps, op: lte, value: 6}}], points: -2}}
      - {{when: [{{property: nps, op: between, value: [7, 8]}}], points: 1}}
      - when:
          - {{property: champion, op: known}}
          - {{property: churn_reason, op: unknown}}
        points: 2
      - {{when: [{{property: notes, op: contains, value: renew}}], points: 1}}
      - {{when: [{{property: last_login_date, op: within_last_days, value: 14}}], points: 5}}
      - {{when: [{{property: last_login_date, op: older_than_days, value: 30}}], points: -10}}
      - {{when: [{{property: renewal_date, op: within_next_days, value: 90}}], points: -3}}
      - {{when: [{{property: usage_per_seat, op: gte, value: 0.8}}], points: 4}}
      - {{property: csm_pulse, points_each: {{green: 10, yellow: 5, red: -5, "3": 1}}}}
      - {{property: usage_per_seat, scale: {{from: [0.2, 0.9], to: [0, 10]}}}}
      - {{property: headroom, scale: {{from: [1, -1], to: [-5, 5]}}}}
      - {{property: usage_squared, scale: {{from: [-1, 0], to: [3, 3]}}}}
      - {{property: active_users, scale: {{from: [0, 100], to: [10, 0]}}}}
  - name: Events
    weight: 2
    max_points: 20
    min_points: 0
    rules:
      - event: meetings
        where: [{{property: hs_meeting_outcome, op: eq, value: COMPLETED}}]
        within_days: 90
        points: 5
        decay: {{percent: 50, every_days: 30}}
        limit: 12
      - event: calls
        within_days: 60
        frequency:
          - {{exactly: 0, points: -2}}
          - {{between: [1, 2], points: 3}}
          - {{at_least: 3, points: 5}}
      - event: tickets
        where: [{{property: hs_ticket_priority, op: in, value: [HIGH, URGENT]}}]
        points: -4
        limit: 8
      - event: notes
        timestamp_property: hs_lastmodifieddate
        within_days: 0
        points: 1
      - event: emails
        points: 0.5
        decay: {{percent: 100, every_days: 0.5}}
  - name: Associated
    weight: 1
    max_points: 15
    min_points: -15
    rules:
      - associated: contacts
        property: nps_category
        points_each: {{promoter: 15, passive: 8, detractor: -10}}
        aggregate: avg
      - associated: contacts
        when: [{{property: jobtitle, op: contains, value: chief}}]
        points: 2
        aggregate: max
      - associated: deals
        when: [{{property: amount, op: gt, value: 10000}}]
        points: 3
      - associated: deals
        property: dealstage
        points_each: {{closedwon: 5, closedlost: -5}}
        aggregate: min
thresholds:
  - {{min: 40, label: Healthy, color: green}}
  - {{min: 10, label: Neutral, color: yellow}}
  - {{min: 0, label: At-risk, color: red}}
"""

SUM_PLAYBOOK = parse_playbook(EVERY_RULE_KIND.format(combine="sum"), "sum.yaml")
WEIGHTED_PLAYBOOK = parse_playbook(EVERY_RULE_KIND.format(combine="weighted"), "weighted.yaml")

ACCOUNT_PROPERTIES = [
    "name",
    "lifecyclestage",
    "plan",
    "active_users",
    "seats_purchased",
    "nps",
    "champion",
    "churn_reason",
    "notes",
    "last_login_date",
    "renewal_date",
    "csm_pulse",
    "hubspot_owner_id",
]
EVENT_PROPERTIES = [
    "hs_timestamp",
    "createdate",
    "hs_lastmodifieddate",
    "hs_meeting_outcome",
    "hs_ticket_priority",
]
RELATED_PROPERTIES = ["nps_category", "jobtitle", "amount", "dealstage", "createdate"]
EVENT_TYPES = ["meetings", "calls", "tickets", "notes", "emails"]
RELATED_TYPES = ["contacts", "deals"]

# ---------------------------------------------------------------- CRM values

AWKWARD = st.sampled_from(
    [
        "",
        " ",
        "n/a",
        "N/A",
        "-",
        "null",
        "None",
        "1,200",
        "1 200",
        "1_000",
        " 42 ",
        "+5",
        "-0",
        ".5",
        "5.",
        "0x10",
        "1e309",
        "-1e309",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "true",
        "FALSE",
        "customer",
        " Customer ",
        "CHURNED",
        "pro",
        "3",
        "3.0",
        "green",
        "COMPLETED",
        "HIGH",
        "promoter",
        "closedwon",
        "Chief Customer Officer",
        "Renewal pending",
        "²",
        "١٢٣",
        "１２３",
        "2024-02-30",
        "2024-13-01T00:00:00Z",
        "31/12/2024",
        "12/31/2024",
        "yesterday",
        "2024-01-01T25:00:00",
        "1712345678901.5",
        "<!channel>",
        "\x00",
        "\u202e",
    ]
)
NUMBERS_AS_TEXT = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
FIXED_ZONES = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
ANY_DATES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        datetime.isoformat
    ),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=FIXED_ZONES
    ).map(datetime.isoformat),
    st.dates().map(lambda d: d.isoformat()),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),  # epoch ms, any size
    st.just("9" * 400),
    st.just("-" + "9" * 400),
)


def near(as_of: datetime) -> st.SearchStrategy[str]:
    """Dates around the as-of time, past and future, in every format HubSpot uses."""
    moments = st.floats(min_value=-200, max_value=200, allow_nan=False).map(
        lambda days: as_of + timedelta(days=days)
    )
    return st.one_of(
        moments.map(lambda m: str(int(m.timestamp() * 1000))),  # epoch ms
        moments.map(lambda m: m.isoformat()),  # with zone
        moments.map(lambda m: m.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        moments.map(lambda m: m.replace(tzinfo=None).isoformat()),  # naive
        moments.map(lambda m: m.date().isoformat()),  # date only
        moments.map(lambda m: m.astimezone(timezone(timedelta(hours=-8))).isoformat()),
    )


def values(as_of: datetime) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        AWKWARD,
        st.text(max_size=30),
        NUMBERS_AS_TEXT,
        ANY_DATES,
        near(as_of),
    )


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[CrmSnapshot, datetime]:
    as_of = draw(
        st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        )
    )
    value = values(as_of)
    # Event times mostly around as-of (windows and decay matter) and the values the
    # playbook looks for, each two times in three; anything else the rest of the time.
    when = near(as_of)
    likely = {
        "hs_timestamp": when,
        "createdate": when,
        "hs_lastmodifieddate": when,
        "hs_meeting_outcome": st.sampled_from(["COMPLETED", " completed", "NO_SHOW"]),
        "hs_ticket_priority": st.sampled_from(["HIGH", "urgent", "LOW"]),
        "nps_category": st.sampled_from(["promoter", "Passive", "detractor"]),
        "dealstage": st.sampled_from(["closedwon", "closedlost"]),
        "jobtitle": st.sampled_from(["Chief of Staff", "CEO", "VP Customer Success"]),
        "amount": st.sampled_from(["25000", "9999.99", "1,000,000"]),
    }
    choose = st.sampled_from([True, True, False])
    company_ids = [str(i) for i in range(draw(st.integers(min_value=1, max_value=4)))]
    target_ids = st.lists(st.sampled_from([*company_ids, "404"]), max_size=3)

    def record(index: int, names: list[str], associated: bool) -> CrmRecord:
        props = {
            name: draw(likely[name] if name in likely and draw(choose) else value)
            for name in names
            if draw(choose)
        }
        links = {"companies": draw(target_ids)} if associated and draw(st.integers(0, 3)) else {}
        return CrmRecord(str(index), props, links)

    objects: dict[str, list[CrmRecord]] = {
        "companies": [
            CrmRecord(i, record(0, ACCOUNT_PROPERTIES, False).properties) for i in company_ids
        ]
    }
    for kind in EVENT_TYPES + RELATED_TYPES:
        names = EVENT_PROPERTIES if kind in EVENT_TYPES else RELATED_PROPERTIES
        count = draw(st.integers(min_value=0, max_value=6))
        objects[kind] = [record(i, names, True) for i in range(count)]
    return CrmSnapshot(owners=[], objects=objects), as_of


def _check_account_scores(playbook: Playbook, snapshot: CrmSnapshot, as_of: datetime) -> None:
    scorer = Scorer(playbook)
    labels = {t.label for t in playbook.thresholds}
    in_segment = 0
    for record in snapshot.records("companies"):
        member, result = scorer.explain(record, snapshot, as_of)
        in_segment += member
        assert math.isfinite(result.score), result
        assert result.status in labels
        assert result.status == playbook.status_of(result.score).label
        for definition, group in zip(playbook.groups, result.groups, strict=True):
            assert all(math.isfinite(rule.points) for rule in group.rules), group
            assert math.isfinite(group.raw)
            assert math.isfinite(group.points)
            if definition.max_points is not None:
                assert group.points <= definition.max_points
            if definition.min_points is not None:
                assert group.points >= definition.min_points
            above_floor = definition.min_points is None or group.raw >= definition.min_points
            below_cap = definition.max_points is None or group.raw <= definition.max_points
            if above_floor and below_cap:
                assert group.points == group.raw
        if playbook.combine == "sum":
            assert result.score == math.fsum(g.points for g in result.groups)
        else:
            total = sum(g.weight for g in playbook.groups)
            lowest = sum(
                g.weight * (g.min_points or 0) / (g.max_points or 1) for g in playbook.groups
            )
            assert lowest / total * 100 - 1e-9 <= result.score <= 100 + 1e-9
    scored = score_snapshot(playbook, snapshot, as_of)
    assert len(scored) == in_segment
    assert all(math.isfinite(s.score) for s in scored)
    json.dumps([s.to_json() for s in scored], allow_nan=False)


@SETTINGS
@given(snapshots())
def test_sum_scoring_never_raises_and_respects_clamps(case: tuple[CrmSnapshot, datetime]) -> None:
    _check_account_scores(SUM_PLAYBOOK, *case)


@SETTINGS
@given(snapshots())
def test_weighted_scoring_stays_within_its_bounds(case: tuple[CrmSnapshot, datetime]) -> None:
    _check_account_scores(WEIGHTED_PLAYBOOK, *case)


def test_playbook_under_test_uses_every_operator_and_rule_kind() -> None:
    ops: set[str] = set()
    kinds: set[str] = set()
    features: set[str] = set()
    for group in SUM_PLAYBOOK.groups:
        for rule in group.rules:
            kinds.add(rule.kind)
            ops.update(c.op for c in (*rule.when, *rule.where))
            features.update(
                name
                for name, present in [
                    ("decay", rule.decay is not None),
                    ("limit", rule.limit is not None),
                    ("frequency", bool(rule.frequency)),
                    ("timestamp_property", rule.timestamp_property is not None),
                ]
                if present
            )
    ops.update(c.op for c in SUM_PLAYBOOK.segment)
    assert ops == set(OPERATORS)
    assert kinds == {"property", "value_map", "scale", "event", "associated"}
    assert features == {"decay", "limit", "frequency", "timestamp_property"}
    assert {r.aggregate for g in SUM_PLAYBOOK.groups for r in g.rules} == {
        "sum",
        "avg",
        "min",
        "max",
    }


# ---------------------------------------------------------------- derived expressions

EXPRESSION_TOKENS = st.sampled_from(
    ["a", "b", "seats", "1", "0", "2.5", ".5", "1e5", "+", "-", "*", "/", "//", "(", ")", " "]
)
EXPRESSION_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(EXPRESSION_TOKENS, max_size=20).map("".join),
    st.lists(EXPRESSION_TOKENS, max_size=20).map(" ".join),
)


@SETTINGS
@given(
    EXPRESSION_TEXT,
    st.dictionaries(
        st.sampled_from(["a", "b", "seats"]), st.one_of(st.none(), AWKWARD, NUMBERS_AS_TEXT)
    ),
)
@example("a * a - a * a", {"a": "1e200"})  # inf - inf
@example("a / b", {"a": "1e300", "b": "1e-300"})  # overflow
def test_expressions_raise_only_expression_error(source: str, props: dict[str, Any]) -> None:
    try:
        expression = parse_expression(source)
    except ExpressionError as exc:
        assert 0 <= exc.column <= len(source)
        return
    result = expression.evaluate(props)
    assert result is None or math.isfinite(result)
    assert expression.names <= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))


# ---------------------------------------------------------------- parsing playbooks

YAML_TOKENS = st.sampled_from(
    [
        "name: x",
        "groups:",
        "  - name: g",
        "    rules:",
        "      - when: [{property: a, op: gt, value: 1}]",
        "        points: 5",
        "        points: ten",
        "        event: calls",
        "        frequency: [{at_least: 1, points: 1}]",
        "        decay: {percent: 50, every_days: 7}",
        "thresholds: [{min: 0, label: Low}]",
        "actions:",
        "  - {on: {status_is: Low}, do: slack, message: '{{ score }}'}",
        "combine: weighted",
        "derived: {x: a / (b}",
        "segment: [{property: a, op: in, value: b}]",
        "\t",
        "  ",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        "'",
        '"',
        "&a ",
        "*a",
        "<<: *a",
        "---",
        "...",
        "!!binary x",
        "!!python/object:os.system x",
        "? [a, b]",
        "2024-02-30",
        ".nan",
        "-.inf",
        "1e999",
        "~",
        "# comment",
        "%YAML 1.2",
        "\x07",
        "\ufeff",
    ]
)
YAMLISH = st.one_of(
    st.text(max_size=200),
    st.lists(YAML_TOKENS, max_size=30).map("\n".join),
    st.lists(st.one_of(YAML_TOKENS, st.text(max_size=5)), max_size=30).map("".join),
)
VALID_TEXT = EVERY_RULE_KIND.format(combine="weighted")


@st.composite
def mutated_playbooks(draw: st.DrawFn) -> str:
    """The valid test playbook with a few characters or lines cut, copied or replaced."""
    text = VALID_TEXT
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        start = draw(st.integers(min_value=0, max_value=len(text)))
        end = draw(st.integers(min_value=start, max_value=min(len(text), start + 40)))
        action = draw(st.sampled_from(["cut", "copy", "replace"]))
        if action == "cut":
            text = text[:start] + text[end:]
        elif action == "copy":
            text = text[:start] + text[start:end] * 2 + text[end:]
        else:
            text = text[:start] + draw(st.one_of(YAML_TOKENS, st.text(max_size=8))) + text[end:]
    return text


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(["eq", "between", "weighted", "slack", "At-risk", "meetings", "avg"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(["op", "value", "points", "name"])),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


VALID_TREE = _plain(YAML(typ="safe").load(VALID_TEXT))


@st.composite
def replaced_subtrees(draw: st.DrawFn) -> str:
    """The valid playbook as JSON (which is YAML) with one subtree replaced by anything."""
    tree = json.loads(json.dumps(VALID_TREE))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        node = tree
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            if isinstance(node, dict) and draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(JSON_VALUES)
            break
    return json.dumps(tree, indent=1)


def _parse_or_playbook_error(text: str) -> Playbook | None:
    try:
        return parse_playbook(text, "fuzz.yaml")
    except PlaybookError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "fuzz.yaml"
            assert issue.line >= 0
            assert issue.message
        return None


@SETTINGS
@given(YAMLISH)
def test_parse_playbook_on_yamlish_text_raises_only_playbook_error(text: str) -> None:
    _parse_or_playbook_error(text)


@SETTINGS
@given(mutated_playbooks())
def test_parse_playbook_on_a_damaged_playbook_raises_only_playbook_error(text: str) -> None:
    _parse_or_playbook_error(text)


@SETTINGS
@given(replaced_subtrees())
def test_a_playbook_that_validates_can_be_scored(text: str) -> None:
    playbook = _parse_or_playbook_error(text)
    if playbook is None:
        return
    record = CrmRecord("1", {"lifecyclestage": "customer", "active_users": "5"})
    snapshot = CrmSnapshot(objects={"companies": [record], "contacts": [], "meetings": []})
    scorer = Scorer(playbook)
    _, result = scorer.explain(record, snapshot, datetime(2026, 1, 1, tzinfo=UTC))
    assert result.status in {t.label for t in playbook.thresholds}


def test_the_valid_playbook_parses_as_json_too() -> None:
    playbook = parse_playbook(json.dumps(VALID_TREE), "as.json")
    assert [g.name for g in playbook.groups] == ["Properties", "Events", "Associated"]
    assert playbook.combine == "weighted"
