"""Scoring semantics of PLAYBOOK_SPEC.md, pinned with numbers worked out by hand.

Every expected value below is computed in the comment next to it, not by the
engine: these are the numbers users compare with HubSpot's health score.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import parse_playbook
from healthscore.core.scoring import AccountScore, round2, score_snapshot

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> str:
    return (AS_OF - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def epoch_ms(days: float) -> str:
    return str(int((AS_OF - timedelta(days=days)).timestamp() * 1000))


def score_one(
    rules_yaml: str, props: dict[str, Any], **related: list[dict[str, Any]]
) -> AccountScore:
    """Score one company with one group holding `rules_yaml`."""
    playbook = parse_playbook(
        "name: T\ngroups:\n  - name: G\n    rules:\n"
        + textwrap.indent(textwrap.dedent(rules_yaml), "      ")
    )
    snapshot: dict[str, Any] = {"companies": [{"id": "1", "properties": props}]}
    for kind, records in related.items():
        snapshot[kind] = [
            {"id": f"{kind}{i}", "properties": r, "associations": {"companies": ["1"]}}
            for i, r in enumerate(records)
        ]
    (result,) = score_snapshot(playbook, CrmSnapshot.from_json(snapshot), AS_OF)
    return result


def points(rules_yaml: str, props: dict[str, Any] | None = None, **related: Any) -> float:
    return score_one(rules_yaml, props or {}, **related).score


def cond(op: str, value: Any = None, prop: str = "p") -> str:
    text = f"{{property: {prop}, op: {op}" + ("" if value is None else f", value: {value}") + "}"
    return f"- when: [{text}]\n  points: 10\n"


# ---------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", "customer", " Customer ", 10),  # case-insensitive, trimmed
        ("eq", "customer", "customers", 0),
        ("eq", 5, "5.0", 10),  # numbers compare as numbers
        ("eq", "true", "TRUE", 10),
        ("neq", "lead", "customer", 10),
        ("neq", "lead", "LEAD", 0),
        ("neq", "lead", None, 0),  # a missing property is unknown, not "not lead"
        ("neq", "lead", "", 0),  # an empty string is unknown too
        ("in", "[gold, Silver]", "SILVER", 10),
        ("in", "[gold, silver]", "bronze", 0),
        ("not_in", "[gold, silver]", "bronze", 10),
        ("not_in", "[gold, silver]", None, 0),
        ("gt", 10, "10", 0),
        ("gt", 10, "10.5", 10),
        ("gte", 10, "10", 10),
        ("lt", 10, "9.99", 10),
        ("lte", 10, "10", 10),
        ("lte", 10, "n/a", 0),  # does not parse: false, never a crash
        ("gte", 1000, "1,200", 0),  # HubSpot sends numbers without separators
        ("gte", 0, "1_000", 0),
        ("gte", 0, "nan", 0),
        ("between", "[10, 20]", "10", 10),  # inclusive
        ("between", "[10, 20]", "20", 10),
        ("between", "[10, 20]", "20.01", 0),
        ("known", None, "x", 10),
        ("known", None, "   ", 0),
        ("unknown", None, None, 10),
        ("unknown", None, "", 10),
        ("unknown", None, "0", 0),
        ("contains", "acme", "The ACME Corp", 10),
        ("contains", "acme", None, 0),
    ],
)
def test_condition_operators(op: str, value: Any, actual: Any, expected: float) -> None:
    props = {} if actual is None else {"p": actual}
    assert points(cond(op, value), props) == expected


@pytest.mark.parametrize(
    ("op", "days", "moment", "expected"),
    [
        ("within_last_days", 30, days_ago(30), 10),  # exactly 30 days old: inclusive
        ("within_last_days", 30, days_ago(30.001), 0),
        ("within_last_days", 30, days_ago(0), 10),
        ("within_last_days", 30, days_ago(-0.01), 0),  # future: never "in the last N days"
        ("within_last_days", 30, epoch_ms(3), 10),  # epoch milliseconds
        ("within_last_days", 30, "2026-10-20", 10),  # date only = midnight UTC
        ("within_last_days", 30, "not a date", 0),
        ("older_than_days", 30, days_ago(31), 10),
        ("older_than_days", 30, days_ago(29), 0),
        ("within_next_days", 120, days_ago(-120), 10),  # renewal exactly 120 days ahead
        ("within_next_days", 120, days_ago(-121), 0),
        ("within_next_days", 120, days_ago(1), 0),  # already past
    ],
)
def test_date_operators(op: str, days: int, moment: str, expected: float) -> None:
    assert points(cond(op, days), {"p": moment}) == expected


def test_property_rule_needs_every_condition_and_gives_points_once() -> None:
    rules = """\
    - when:
        - {property: plan, op: eq, value: gold}
        - {property: seats, op: gte, value: 10}
      points: -7
    """
    assert points(rules, {"plan": "gold", "seats": "12"}) == -7
    assert points(rules, {"plan": "gold", "seats": "9"}) == 0


# ---------------------------------------------------------------- value map and scale


def test_value_map_is_case_insensitive_and_unmatched_is_zero() -> None:
    rules = """\
    - property: csm_pulse
      points_each: {green: 10, Yellow: 4, red: -10}
    """
    assert points(rules, {"csm_pulse": "YELLOW"}) == 4
    assert points(rules, {"csm_pulse": " red "}) == -10
    assert points(rules, {"csm_pulse": "purple"}) == 0
    assert points(rules, {}) == 0


def test_scale_maps_linearly_and_clamps() -> None:
    rules = """\
    - property: usage
      scale: {from: [20, 80], to: [0, 30]}
    """
    assert points(rules, {"usage": "50"}) == 15  # (50-20)/(80-20) * 30 = 15
    assert points(rules, {"usage": "35"}) == 7.5  # 15/60 * 30
    assert points(rules, {"usage": "100"}) == 30  # clamped at the top
    assert points(rules, {"usage": "-5"}) == 0  # clamped at the bottom
    assert points(rules, {"usage": "lots"}) == 0  # non-numeric gives 0
    assert points(rules, {}) == 0


def test_scale_can_run_downhill() -> None:
    rules = """\
    - property: open_tickets
      scale: {from: [0, 10], to: [10, 0]}
    """
    assert points(rules, {"open_tickets": "3"}) == 7  # 10 + 3/10 * (0-10)
    assert points(rules, {"open_tickets": "40"}) == 0


# ---------------------------------------------------------------- event rules


def test_event_window_is_inclusive_and_future_never_counts() -> None:
    rules = """\
    - event: meetings
      within_days: 30
      points: 2
    """
    meetings = [
        {"hs_timestamp": days_ago(0)},  # at the as-of instant: counts
        {"hs_timestamp": days_ago(30)},  # exactly 30 days: counts
        {"hs_timestamp": days_ago(30.0001)},  # just outside
        {"hs_timestamp": days_ago(-1)},  # tomorrow: never
        {"createdate": days_ago(5)},  # no hs_timestamp: createdate
        {"hs_timestamp": "garbage", "createdate": epoch_ms(6)},  # unparseable: createdate
        {"hs_timestamp": "garbage"},  # no usable time: not placed in the window
    ]
    assert points(rules, meetings=meetings) == 8  # 4 occurrences x 2


def test_event_without_window_counts_all_past_and_where_filters() -> None:
    rules = """\
    - event: tickets
      where: [{property: hs_ticket_priority, op: in, value: [HIGH, URGENT]}]
      points: -3
    """
    tickets = [
        {"createdate": days_ago(400), "hs_ticket_priority": "high"},
        {"createdate": days_ago(2), "hs_ticket_priority": "URGENT"},
        {"createdate": days_ago(2), "hs_ticket_priority": "LOW"},
        {"createdate": days_ago(-3), "hs_ticket_priority": "HIGH"},  # future
    ]
    assert points(rules, tickets=tickets) == -6


def test_event_timestamp_property_overrides_hs_timestamp() -> None:
    rules = """\
    - event: deals
      timestamp_property: closedate
      within_days: 10
      points: 5
    """
    deals = [
        {"closedate": days_ago(3), "hs_timestamp": days_ago(100)},
        {"closedate": days_ago(30), "hs_timestamp": days_ago(1)},
        {"hs_timestamp": days_ago(1)},  # no closedate: no time
    ]
    assert points(rules, deals=deals) == 5


def test_decay_steps_by_whole_periods() -> None:
    rules = """\
    - event: calls
      points: 8
      decay: {percent: 50, every_days: 7}
    """
    calls = [
        {"hs_timestamp": days_ago(0)},  # floor(0/7)=0  -> 8
        {"hs_timestamp": days_ago(6.9)},  # floor(0.99)=0 -> 8
        {"hs_timestamp": days_ago(7)},  # floor(1)=1     -> 4
        {"hs_timestamp": days_ago(20)},  # floor(2.86)=2  -> 2
        {"hs_timestamp": days_ago(21)},  # floor(3)=3     -> 1
    ]
    assert points(rules, calls=calls) == 23  # 8+8+4+2+1


def test_limit_applies_after_decay() -> None:
    rules = """\
    - event: calls
      points: 5
      limit: 12
      decay: {percent: 50, every_days: 7}
    """
    four = [{"hs_timestamp": days_ago(d)} for d in (0, 1, 7, 14)]  # 5 + 5 + 2.5 + 1.25 = 13.75
    assert points(rules, calls=four) == 12
    three = [{"hs_timestamp": days_ago(d)} for d in (0, 7, 14)]  # 5 + 2.5 + 1.25 = 8.75 < 12
    assert points(rules, calls=three) == 8.75


def test_limit_caps_negative_totals_in_magnitude() -> None:
    rules = """\
    - event: tickets
      points: -4
      limit: 10
    """
    tickets = [{"createdate": days_ago(d)} for d in (1, 2, 3, 4)]  # -16 capped at -10
    assert points(rules, tickets=tickets) == -10


def test_frequency_picks_the_first_band_that_holds() -> None:
    rules = """\
    - event: meetings
      within_days: 90
      frequency:
        - {exactly: 0, points: -5}
        - {between: [1, 3], points: 5}
        - {at_least: 2, points: 10}
    """
    assert points(rules, meetings=[]) == -5
    two = [{"hs_timestamp": days_ago(d)} for d in (1, 2)]
    assert points(rules, meetings=two) == 5  # 2 is in [1, 3], the first band that holds
    four = [{"hs_timestamp": days_ago(d)} for d in (1, 2, 3, 4)]
    assert points(rules, meetings=four) == 10


def test_frequency_with_no_matching_band_gives_zero() -> None:
    rules = """\
    - event: meetings
      frequency:
        - {at_least: 5, points: 10}
    """
    assert points(rules, meetings=[{"hs_timestamp": days_ago(1)}]) == 0


# ---------------------------------------------------------------- associated records


NPS_CONTACTS = [
    {"nps_category": "promoter"},
    {"nps_category": "Detractor"},
    {"nps_category": "promoter"},
    {"nps_category": "passive"},  # not in points_each: does not match
    {},  # no value: does not match
]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("sum", 10),  # 10 - 10 + 10
        ("avg", 10 / 3),  # over the 3 that matched
        ("min", -10),
        ("max", 10),
    ],
)
def test_associated_value_map_aggregates(aggregate: str, expected: float) -> None:
    rules = f"""\
    - associated: contacts
      property: nps_category
      points_each: {{promoter: 10, detractor: -10}}
      aggregate: {aggregate}
    """
    assert points(rules, contacts=NPS_CONTACTS) == pytest.approx(expected, abs=1e-12)


def test_associated_conditions_and_no_match_gives_zero() -> None:
    rules = """\
    - associated: deals
      when:
        - {property: dealstage, op: eq, value: closedwon}
        - {property: amount, op: gte, value: 1000}
      points: 4
    """
    deals = [
        {"dealstage": "closedwon", "amount": "5000"},
        {"dealstage": "closedwon", "amount": "999"},
        {"dealstage": "CLOSEDWON", "amount": "1000"},
    ]
    assert points(rules, deals=deals) == 8
    assert points(rules, deals=[{"dealstage": "closedlost", "amount": "1"}]) == 0
    assert points(rules) == 0


# ---------------------------------------------------------------- groups, combine, status


def test_group_start_and_floor_the_start_from_ten_support_score() -> None:
    playbook = parse_playbook(
        """
name: T
groups:
  - name: Support
    start: 10
    min_points: 0
    max_points: 10
    rules:
      - event: tickets
        points: -3
"""
    )
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [{"id": "1", "properties": {}}, {"id": "2", "properties": {}}],
            "tickets": [
                {
                    "id": f"t{i}",
                    "properties": {"createdate": days_ago(1)},
                    "associations": {"companies": ["1"]},
                }
                for i in range(5)
            ]
            + [
                {
                    "id": "t9",
                    "properties": {"createdate": days_ago(1)},
                    "associations": {"companies": ["2"]},
                }
            ],
        }
    )
    first, second = score_snapshot(playbook, snapshot, AS_OF)
    assert first.groups[0].raw == -5  # 10 - 5*3
    assert first.groups[0].points == 0  # floored by min_points
    assert second.groups[0].points == 7  # 10 - 3


def test_no_lower_clamp_without_min_points_and_lowest_threshold_catches_negatives() -> None:
    result = score_one("- when: [{property: x, op: unknown}]\n  points: -12\n", {})
    assert result.score == -12
    assert result.status == "At-risk"
    assert result.color == "red"


def test_weighted_combine() -> None:
    playbook = parse_playbook(
        """
name: W
combine: weighted
groups:
  - name: A
    weight: 30
    max_points: 40
    rules: [{when: [{property: a, op: known}], points: 20}]
  - name: B
    weight: 70
    max_points: 10
    rules: [{when: [{property: b, op: known}], points: 15}]
"""
    )
    snapshot = CrmSnapshot.from_json(
        {"companies": [{"id": "1", "properties": {"a": "1", "b": "1"}}]}
    )
    (result,) = score_snapshot(playbook, snapshot, AS_OF)
    # B is capped at 10: (30 * 20/40 + 70 * 10/10) / (30 + 70) * 100 = (15 + 70) = 85
    assert result.score == pytest.approx(85)
    assert result.status == "Healthy"


def test_status_uses_the_unrounded_score() -> None:
    playbook = parse_playbook(
        """
name: T
groups:
  - name: G
    rules:
      - {property: x, scale: {from: [0, 100], to: [0, 100]}}
"""
    )
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [
                {"id": "1", "properties": {"x": "79.996"}},
                {"id": "2", "properties": {"x": "80"}},
                {"id": "3", "properties": {"x": "59.999"}},
            ]
        }
    )
    one, two, three = score_snapshot(playbook, snapshot, AS_OF)
    assert one.to_json()["score"] == 80.0 and one.status == "Neutral"  # shows 80.00, is below 80
    assert two.status == "Healthy"
    assert three.status == "At-risk"


def test_custom_thresholds_highest_min_reached_wins() -> None:
    playbook = parse_playbook(
        """
name: T
groups:
  - name: G
    rules: [{property: x, scale: {from: [0, 10], to: [0, 10]}}]
thresholds:
  - {min: 0, label: Low}
  - {min: 7, label: High, color: green}
  - {min: 4, label: Mid, color: yellow}
"""
    )
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [
                {"id": str(i), "properties": {"x": str(v)}}
                for i, v in enumerate([0, 4, 6.99, 7, 10])
            ]
        }
    )
    assert [s.status for s in score_snapshot(playbook, snapshot, AS_OF)] == [
        "Low",
        "Mid",
        "Mid",
        "High",
        "High",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2.675, 2.68), (2.665, 2.67), (-2.675, -2.68), (1 / 3, 0.33), (-0.001, 0.0), (79.996, 80.0)],
)
def test_rounding_is_half_away_from_zero_on_two_decimals(value: float, expected: float) -> None:
    assert round2(value) == expected


# ---------------------------------------------------------------- segment and derived


def test_segment_leaves_accounts_unscored() -> None:
    playbook = parse_playbook(
        """
name: T
segment: [{property: lifecyclestage, op: eq, value: customer}]
groups: [{name: G, rules: [{when: [{property: x, op: unknown}], points: 1}]}]
"""
    )
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [
                {"id": "1", "properties": {"lifecyclestage": "CUSTOMER"}},
                {"id": "2", "properties": {"lifecyclestage": "lead"}},
                {"id": "3", "properties": {}},
            ]
        }
    )
    assert [s.id for s in score_snapshot(playbook, snapshot, AS_OF)] == ["1"]


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"active": "30", "seats": "50"}, 10),  # (30 + 10) / 50 * 2 = 1.6 >= 1.5
        ({"active": "20", "seats": "50"}, 0),  # (20 + 10) / 50 * 2 = 1.2
        ({"active": "30", "seats": "0"}, 0),  # division by zero: unknown, condition false
        ({"active": "30"}, 0),  # missing input: unknown
        ({"active": "lots", "seats": "50"}, 0),  # non-numeric input: unknown
    ],
)
def test_derived_arithmetic(props: dict[str, str], expected: float) -> None:
    playbook = parse_playbook(
        """
name: T
derived:
  ratio: (active + 10) / seats * 2
groups: [{name: G, rules: [{when: [{property: ratio, op: gte, value: 1.5}], points: 10}]}]
"""
    )
    snapshot = CrmSnapshot.from_json({"companies": [{"id": "1", "properties": props}]})
    (result,) = score_snapshot(playbook, snapshot, AS_OF)
    assert result.score == expected


def test_derived_unknown_is_caught_by_the_unknown_operator() -> None:
    playbook = parse_playbook(
        """
name: T
derived: {ratio: a / b}
groups: [{name: G, rules: [{when: [{property: ratio, op: unknown}], points: 3}]}]
"""
    )
    snapshot = CrmSnapshot.from_json(
        {"companies": [{"id": "1", "properties": {"a": "1", "b": "0"}}]}
    )
    assert score_snapshot(playbook, snapshot, AS_OF)[0].score == 3


# ---------------------------------------------------------------- output shape


def test_json_output_has_the_fields_of_design_md() -> None:
    playbook = parse_playbook(
        """
name: T
groups:
  - name: Usage
    rules:
      - name: Logged in
        when: [{property: last_login, op: within_last_days, value: 7}]
        points: 10
      - {property: plan, points_each: {gold: 5}}
  - name: Support
    start: 10
    rules:
      - {event: tickets, points: -2.5}
"""
    )
    snapshot = CrmSnapshot.from_json(
        {
            "companies": [
                {
                    "id": "7",
                    "properties": {"name": "Acme", "last_login": days_ago(1), "plan": "Gold"},
                }
            ],
            "tickets": [
                {
                    "id": "t",
                    "properties": {"createdate": days_ago(1)},
                    "associations": {"companies": ["7"]},
                }
            ],
        }
    )
    (result,) = score_snapshot(playbook, snapshot, AS_OF)
    assert result.to_json() == {
        "id": "7",
        "name": "Acme",
        "score": 22.5,
        "status": "At-risk",
        "groups": {"Usage": 15.0, "Support": 7.5},
        "rules": {"Usage": {"Logged in": 10.0, "plan value": 5.0}, "Support": {"tickets": -2.5}},
    }
