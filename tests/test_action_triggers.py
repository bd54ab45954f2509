"""Trigger rules, escaping and planning, with exact cases (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from healthscore.actions import parse_playbook
from healthscore.actions.escape import html_text, jira_wiki, plain, slack_mrkdwn
from healthscore.actions.plan import plan_actions
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Trigger
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, compare
from healthscore.core.triggers import (
    Extreme,
    Firing,
    PriorRun,
    TriggerHistory,
    fire,
    holds_now,
)

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def status_of(score: float) -> str:
    return "Healthy" if score >= 80 else "Neutral" if score >= 60 else "At-risk"


def run_sequence(trigger: Trigger, scores: list[float], window: float = 30) -> list[Firing | None]:
    """Fire `trigger` over weekly runs, each seeing only the runs strictly before it."""
    out: list[Firing | None] = []
    for i, score in enumerate(scores):
        past = [(day(7 * j), s) for j, s in enumerate(scores[:i])]
        prior = {"a": PriorRun(past[-1][0], past[-1][1], status_of(past[-1][1]))} if past else {}
        inside = [(t, s) for t, s in past if t >= day(7 * i) - timedelta(days=window)]
        highs, lows = {}, {}
        if inside:
            high = max(inside, key=lambda p: (p[1], p[0]))
            low = min(inside, key=lambda p: (p[1], -p[0].timestamp()))
            highs = {window: {"a": Extreme(high[1], high[0])}}
            lows = {window: {"a": Extreme(low[1], low[0])}}
        history = TriggerHistory(prior=prior, highs=highs, lows=lows)
        out.append(
            fire(
                trigger,
                account_id="a",
                score=score,
                status=status_of(score),
                as_of=day(7 * i),
                history=history,
            )
        )
    return out


def fired_on(firings: list[Firing | None]) -> list[int]:
    return [i for i, f in enumerate(firings) if f is not None]


def test_status_changed_to_fires_on_the_transition_and_on_a_first_score() -> None:
    trigger = Trigger("status_changed_to", "At-risk")
    firings = run_sequence(trigger, [50, 55, 70, 40, 45])
    assert fired_on(firings) == [0, 3]
    assert firings[0] == Firing(
        "2026-03-01T09:00:00+00:00", "status changed from nothing (first score) to At-risk"
    )
    assert firings[3] == Firing(
        "2026-03-22T09:00:00+00:00", "status changed from Neutral to At-risk"
    )


def test_status_changed_from_needs_a_previous_run_in_the_state() -> None:
    trigger = Trigger("status_changed_from", "At-risk")
    assert fired_on(run_sequence(trigger, [70, 50, 50, 65, 90])) == [3]
    assert fired_on(run_sequence(trigger, [50])) == []  # a first score leaves nothing


def test_level_trigger_fires_once_per_entry_into_the_state() -> None:
    trigger = Trigger("score_at_least", 85)
    scores = [90, 92, 80, 88, 85, 84.99, 85]
    assert fired_on(run_sequence(trigger, scores)) == [0, 3, 6]


def test_every_run_fires_each_run_in_the_state_with_its_own_occurrence() -> None:
    trigger = Trigger("score_at_least", 85, every_run=True)
    firings = run_sequence(trigger, [90, 92, 80, 88])
    assert fired_on(firings) == [0, 1, 3]
    keys = [f.occurrence for f in firings if f]
    assert len(set(keys)) == 3 and all("(every run)" in f.reason for f in firings if f)


def test_score_below_and_status_is_are_levels_too() -> None:
    assert fired_on(run_sequence(Trigger("score_below", 60), [70, 59.99, 40, 60, 10])) == [1, 4]
    assert fired_on(run_sequence(Trigger("status_is", "Neutral"), [65, 70, 90, 61])) == [0, 3]


def test_drop_within_window_is_one_occurrence_per_high() -> None:
    trigger = Trigger("score_dropped_by", 15, within_days=30)
    firings = run_sequence(trigger, [90, 80, 75, 70, 95, 79, 80], window=30)
    # day 14: 90 -> 75 (15, inclusive); day 21: still from the same high: same key;
    # day 35: 95 -> 79 from a new high: a new occurrence; day 42: 95 -> 80, same high again
    assert fired_on(firings) == [2, 3, 5, 6]
    assert firings[2] and firings[3] and firings[2].occurrence == firings[3].occurrence
    assert firings[2].occurrence == "drop-from:2026-03-01T09:00:00+00:00"
    assert firings[5] and firings[5].occurrence == "drop-from:2026-03-29T09:00:00+00:00"
    assert "dropped 15 points (from 90 on 2026-03-01 to 75" in firings[2].reason


def test_drop_outside_the_window_does_not_count() -> None:
    trigger = Trigger("score_dropped_by", 15, within_days=10)
    # weekly runs, a 10-day window sees only the previous run: 90, 82, 74 never drops 15 at once
    assert fired_on(run_sequence(trigger, [90, 82, 74], window=10)) == []
    assert fired_on(run_sequence(trigger, [90, 74], window=10)) == [1]


def test_rise_mirrors_drop() -> None:
    trigger = Trigger("score_rose_by", 10, within_days=30)
    firings = run_sequence(trigger, [50, 55, 60, 62], window=30)
    assert fired_on(firings) == [2, 3]
    assert firings[2] and firings[2].occurrence == "rise-from:2026-03-01T09:00:00+00:00"


def test_same_history_same_as_of_same_key() -> None:
    trigger = Trigger("status_changed_to", "At-risk")
    history = TriggerHistory(prior={"a": PriorRun(day(0), 70, "Neutral")})
    first = fire(trigger, account_id="a", score=40, status="At-risk", as_of=day(7), history=history)
    again = fire(trigger, account_id="a", score=41, status="At-risk", as_of=day(7), history=history)
    assert first is not None and again is not None and first.occurrence == again.occurrence


def test_holds_now_is_what_a_synced_list_keeps() -> None:
    history = TriggerHistory(highs={30.0: {"a": Extreme(90, day(0))}})
    assert holds_now(Trigger("score_at_least", 85), "a", 85, "Healthy", history)
    assert not holds_now(Trigger("score_at_least", 85), "a", 84.99, "Healthy", history)
    assert holds_now(Trigger("status_changed_to", "At-risk"), "a", 10, "At-risk", history)
    assert holds_now(Trigger("status_changed_from", "At-risk"), "a", 70, "Neutral", history)
    assert holds_now(Trigger("score_dropped_by", 15, within_days=30), "a", 75, "Neutral", history)
    assert not holds_now(
        Trigger("score_dropped_by", 15, within_days=30), "b", 0, "At-risk", history
    )


@pytest.mark.parametrize(
    ("text", "slack", "jira", "html"),
    [
        ("<!channel> & <@U123>", "&lt;!channel&gt; &amp; &lt;@U123&gt;",
         "<\\!channel> & <@U123>", "&lt;!channel&gt; &amp; &lt;@U123&gt;"),
        ("*bold* _it_ {color:red}x{color} [link|http://x]", "*bold* _it_ {color:red}x{color} [link|http://x]",
         "\\*bold\\* \\_it\\_ \\{color:red\\}x\\{color\\} \\[link\\|http://x\\]",
         "*bold* _it_ {color:red}x{color} [link|http://x]"),
        ("h1. line\nnext\r\n# item", "h1. line next # item", "h1. line next \\# item",
         "h1. line next # item"),
        ('say "hi" (y) -x- ^sup^ ~sub~ ??cite?? !img.png!',
         'say "hi" (y) -x- ^sup^ ~sub~ ??cite?? !img.png!',
         'say "hi" \\(y\\) \\-x\\- \\^sup\\^ \\~sub\\~ \\?\\?cite\\?\\? \\!img.png\\!',
         "say &quot;hi&quot; (y) -x- ^sup^ ~sub~ ??cite?? !img.png!"),
    ],
)  # fmt: skip
def test_escaping_per_target(text: str, slack: str, jira: str, html: str) -> None:
    assert slack_mrkdwn(text) == slack
    assert jira_wiki(text) == jira
    assert html_text(text) == html
    assert "\n" not in plain(text)


PLAYBOOK = """
name: Plan test
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
actions:
  - name: Renewal risk
    on: {status_changed_to: At-risk}
    where: [{property: renewal_date, op: within_next_days, value: 120}]
    do: slack
    fallback_channel: "#cs-alerts"
    message: "{{ account.name }} renews {{ account.renewal_date }}{{ account.missing_prop }}"
"""


def test_plan_applies_where_and_renders_escaped_values() -> None:
    playbook = parse_playbook(PLAYBOOK)
    snapshot = CrmSnapshot.from_json(
        {
            "owners": [{"id": "1", "email": "ana@example.com"}],
            "companies": [
                {"id": "1", "properties": {"name": "Soon <b>", "usage": "10",
                                           "renewal_date": "2026-05-01", "hubspot_owner_id": "1"}},
                {"id": "2", "properties": {"name": "Late", "usage": "10",
                                           "renewal_date": "2027-05-01"}},
                {"id": "3", "properties": {"name": "Fine", "usage": "90",
                                           "renewal_date": "2026-05-01"}},
            ],
        }
    )  # fmt: skip
    scores = Scorer(playbook).score_snapshot(snapshot, T0)
    comparisons = compare(scores, Baseline(), playbook.trend.flat_band)
    plan = plan_actions(
        playbook, comparisons, snapshot, TriggerHistory(), T0, "42", enroll_existing=True
    )
    assert [(a.account_id, a.target) for a in plan.due] == [
        ("1", "owner ana@example.com (else #cs-alerts)")
    ]
    payload = plan.due[0].payload
    assert payload["text"] == "Soon &lt;b&gt; renews 2026-05-01"
    assert payload["url"] == "https://app.hubspot.com/contacts/42/company/1"
    assert plan.due[0].occurrence == "2026-03-01T09:00:00+00:00"


CUSTOM_LIST = """
name: Subscriptions at risk
object: p42_subscriptions
groups:
  - name: Plan
    rules:
      - {property: plan, points_each: {enterprise: 100}}
actions:
  - name: Review list
    on: {status_changed_to: At-risk}
    do: hubspot_list
    list: Subscriptions to review
    sync: true
"""


def test_a_custom_object_named_by_its_fully_qualified_name_is_listed_by_its_type_id() -> None:
    """HubSpot's lists API takes `objectTypeId` (`2-…`), never the object's name; the
    record link of a custom object is `/record/{objectTypeId}/{id}`."""
    playbook = parse_playbook(CUSTOM_LIST)
    schema = {
        "name": "subscriptions",
        "objectTypeId": "2-1234567",
        "fullyQualifiedName": "p42_subscriptions",
    }
    records = [{"id": "301", "properties": {"name": "Starter sub", "plan": "starter"}}]
    snapshot = CrmSnapshot.from_json(
        {"owners": [], "schemas": [schema], "p42_subscriptions": records}
    )
    scores = Scorer(playbook).score_snapshot(snapshot, T0)
    comparisons = compare(scores, Baseline(), playbook.trend.flat_band)
    plan = plan_actions(
        playbook, comparisons, snapshot, TriggerHistory(), T0, "42", enroll_existing=True
    )
    assert [(a.account_id, a.payload["object_type_id"]) for a in plan.due] == [("301", "2-1234567")]
    assert plan.due[0].payload["url"] == "https://app.hubspot.com/contacts/42/record/2-1234567/301"
    assert [s.object_type_id for s in plan.syncs] == ["2-1234567"]
