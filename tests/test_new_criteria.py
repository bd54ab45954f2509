"""HubSpot's health-score criteria a playbook can now write (issue 16), hand-computed.

List membership (member and non-member, by name and by id), five segments, a labelled
associated-contact average, an event value map with `limit` and `decay`, and a custom
object as the scored object. Each playbook is scored by `healthscore score` twice: from
the snapshot file (`--source file:`) and from the same snapshot served by the HubSpot
sandbox (`--source sandbox`, the real hubspot-api-client reading lists, labels and
schemas); both must print exactly the expected numbers, worked out below by hand.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from typer.testing import CliRunner

from healthscore.actions import load_playbook
from healthscore.cli import app
from healthscore.core.scoring import Scorer
from healthscore.integrations.hubspot.checks import needed_scopes
from healthscore.integrations.hubspot.pull import pull
from healthscore.sandbox import running_sandbox
from tests.test_hubspot_source import fast_connection

AS_OF = "2026-11-01T00:00:00Z"


def _days_ago(days: int) -> str:
    return f"{(1_793_491_200 - days * 86_400) * 1000}"  # epoch ms; 1793491200 = AS_OF


def _company(record_id: str, **props: str) -> dict[str, Any]:
    return {"id": record_id, "properties": {"name": f"Co {record_id}", **props}}


def _meeting(record_id: str, kind: str, days: int, company: str) -> dict[str, Any]:
    return {
        "id": record_id,
        "properties": {"hs_timestamp": _days_ago(days), "hs_activity_type": kind},
        "associations": {"companies": [company]},
    }


def _contact(record_id: str, nps: str, *links: Any) -> dict[str, Any]:
    return {"id": record_id, "properties": {"nps": nps}, "associations": {"companies": list(links)}}


SEED: dict[str, Any] = {
    "owners": [],
    "schemas": [
        {
            "name": "subscriptions",
            "objectTypeId": "2-1234567",
            "labels": {"singular": "Subscription", "plural": "Subscriptions"},
            "primaryDisplayProperty": "name",
            "properties": [{"name": "name", "type": "string"}, {"name": "plan", "type": "string"}],
            "requiredProperties": ["name"],
            "associatedObjects": ["CONTACT"],
        }
    ],
    "companies": [
        _company("101"),
        _company("102", tier="gold"),
        _company("103", tier="silver"),
        _company("104", employees="5000"),
        _company("105", tier="bronze"),
        _company("106", tier="bronze"),
        _company("107"),
    ],
    "contacts": [
        _contact("201", "promoter", {"id": "101", "labels": ["Decision maker"]}),
        _contact("202", "passive", {"id": "101", "labels": ["Decision maker", "Billing contact"]}),
        _contact("203", "detractor", "101"),
        _contact("204", "promoter", {"id": "101", "labels": ["Billing contact"]}),
        _contact("205", "detractor", {"id": "102", "labels": ["Decision maker"]}),
        {
            "id": "206",
            "properties": {"nps": "promoter"},
            "associations": {"subscriptions": ["301"]},
        },
    ],
    "meetings": [
        _meeting("401", "QBR", 10, "101"),  # 4
        _meeting("402", "QBR", 40, "101"),  # 4 * 0.5 = 2
        _meeting("403", "Check-in", 5, "101"),  # 1
        _meeting("404", "Check-in", 70, "101"),  # 1 * 0.25 = 0.25
        _meeting("405", "Demo", 3, "101"),  # not in the map: no points, not counted
        _meeting("406", "QBR", 100, "101"),  # outside 90 days
        _meeting("407", "Check-in", 31, "102"),  # 1 * 0.5 = 0.5
        _meeting("408", "qbr", 65, "102"),  # 4 * 0.25 = 1 (values match case-insensitively)
    ],
    "subscriptions": [
        {"id": "301", "properties": {"name": "Sub A", "plan": "enterprise"}},
        {"id": "302", "properties": {"name": "Sub B", "plan": "starter"}},
    ],
    "lists": [
        {"name": "Strategic accounts", "objectTypeId": "0-2", "members": ["101", "103"]},
        {"name": "Churn watch", "listId": "900", "objectTypeId": "0-2", "members": ["103", "106"]},
        {"name": "Key subscriptions", "objectTypeId": "2-1234567", "members": ["302"]},
    ],
}

LISTS_AND_SEGMENTS = """
name: Lists and segments
segments:
  - [{list: Strategic accounts}]
  - [{property: tier, op: eq, value: gold}]
  - [{property: tier, op: eq, value: silver}, {list: "900"}]
  - [{property: employees, op: gte, value: 1000}]
  - [{list: "900", member: false}, {property: tier, op: eq, value: bronze}]
groups:
  - name: Lists
    rules:
      - name: Strategic
        when: [{list: Strategic accounts}]
        points: 5
      - name: Not on churn watch
        when: [{list: "900", member: false}]
        points: 3
"""
# In the segments: 101 (1st), 102 (2nd), 103 (1st and 3rd), 104 (4th), 105 (5th: bronze and
# not on list 900); 106 is bronze but on list 900, 107 matches none.
# Strategic +5: 101, 103. Not on churn watch (900 = 103, 106) +3: 101, 102, 104, 105.
LISTS_EXPECTED = {"101": 8.0, "102": 3.0, "103": 5.0, "104": 3.0, "105": 3.0}

LABELS = """
name: Labels
groups:
  - name: Sentiment
    rules:
      - name: Decision makers' NPS (average)
        associated: contacts
        label: Decision maker
        property: nps
        points_each: {promoter: 10, passive: 6, detractor: 0}
        aggregate: avg
      - name: Decision makers or billing contacts (sum)
        associated: contacts
        label: [Decision maker, Billing contact]
        property: nps
        points_each: {promoter: 10, passive: 6, detractor: 0}
      - name: Every contact (average)
        associated: contacts
        property: nps
        points_each: {promoter: 10, passive: 6, detractor: 0}
        aggregate: avg
"""
# 101: decision makers 201 (10) and 202 (6): avg 8; with billing contacts also 204 (10):
# 10 + 6 + 10 = 26; every contact 201, 202, 203, 204: (10 + 6 + 0 + 10) / 4 = 6.5.
# 102: decision maker 205 (0): avg 0, sum 0, all 0. Others: no contacts.
LABELS_EXPECTED = {
    "101": {
        "Decision makers' NPS (average)": 8.0,
        "Decision makers or billing contacts (sum)": 26.0,
        "Every contact (average)": 6.5,
    },
    "102": {
        "Decision makers' NPS (average)": 0.0,
        "Decision makers or billing contacts (sum)": 0.0,
        "Every contact (average)": 0.0,
    },
}

EVENT_VALUES = """
name: Meetings by type
groups:
  - name: Engagement
    rules:
      - name: Meetings by type
        event: meetings
        property: hs_activity_type
        points_each: {QBR: 4, Check-in: 1}
        within_days: 90
        decay: {percent: 50, every_days: 30}
        limit: 6
"""
# 101: 4 + 2 + 1 + 0.25 = 7.25, capped at 6. 102: 0.5 + 1 = 1.5. Others 0.
EVENT_EXPECTED = {
    "101": 6.0,
    "102": 1.5,
    "103": 0.0,
    "104": 0.0,
    "105": 0.0,
    "106": 0.0,
    "107": 0.0,
}

CUSTOM_OBJECT = """
name: Subscriptions
object: 2-1234567
groups:
  - name: Plan
    rules:
      - name: Plan
        property: plan
        points_each: {enterprise: 20, starter: 5}
      - name: Key subscription
        when: [{list: Key subscriptions}]
        points: 7
      - name: Promoters
        associated: contacts
        when: [{property: nps, op: eq, value: promoter}]
        points: 2
"""
# 301: enterprise 20, not on the list, contact 206 a promoter +2 = 22. 302: 5 + 7 = 12.
CUSTOM_EXPECTED = {"301": 22.0, "302": 12.0}


def _score(playbook: Path, source: str) -> list[dict[str, Any]]:
    args = ["score", "-p", str(playbook), "-s", source, "--as-of", AS_OF, "-f", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """score(playbook text) -> (file output, sandbox output), one sandbox for the module."""
    folder = tmp_path_factory.mktemp("criteria")
    snapshot = folder / "crm.json"
    snapshot.write_text(json.dumps(SEED))
    with running_sandbox(SEED) as urls, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)

        def score(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            playbook = folder / "playbook.yaml"
            playbook.write_text(text)
            return _score(playbook, f"file:{snapshot}"), _score(playbook, "sandbox")

        score.base_url = urls.base_url  # type: ignore[attr-defined]
        yield score


def test_list_membership_and_five_segments(both: Any) -> None:
    from_file, from_sandbox = both(LISTS_AND_SEGMENTS)
    assert {s["id"]: s["score"] for s in from_file} == LISTS_EXPECTED
    assert from_sandbox == from_file


def test_a_labelled_associated_contact_average(both: Any) -> None:
    from_file, from_sandbox = both(LABELS)
    rules = {s["id"]: s["rules"]["Sentiment"] for s in from_file}
    assert {k: rules[k] for k in LABELS_EXPECTED} == LABELS_EXPECTED
    assert all(sum(r.values()) == 0 for k, r in rules.items() if k not in LABELS_EXPECTED)
    assert from_sandbox == from_file


def test_an_event_value_map_with_limit_and_decay(both: Any) -> None:
    from_file, from_sandbox = both(EVENT_VALUES)
    assert {s["id"]: s["score"] for s in from_file} == EVENT_EXPECTED
    assert from_sandbox == from_file


def test_a_custom_object_as_the_scored_object(both: Any) -> None:
    from_file, from_sandbox = both(CUSTOM_OBJECT)
    assert {s["id"]: (s["name"], s["score"]) for s in from_file} == {
        "301": ("Sub A", CUSTOM_EXPECTED["301"]),
        "302": ("Sub B", CUSTOM_EXPECTED["302"]),
    }
    assert from_sandbox == from_file


def test_explain_shows_list_membership_labels_and_each_meetings_value(
    tmp_path: Path,
) -> None:
    snapshot = tmp_path / "crm.json"
    snapshot.write_text(json.dumps(SEED))
    playbook = tmp_path / "p.yaml"
    playbook.write_text(LISTS_AND_SEGMENTS + EVENT_VALUES.split("groups:\n", 1)[1])
    args = ["explain", "101", "-p", str(playbook), "-s", f"file:{snapshot}", "--as-of", AS_OF]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rules = {r["name"]: r for g in json.loads(result.stdout)["breakdown"] for r in g["rules"]}
    assert rules["Strategic"]["inputs"] == {"list Strategic accounts": "member", "matched": True}
    assert rules["Not on churn watch"]["inputs"] == {"list 900": "not a member", "matched": True}
    meetings = rules["Meetings by type"]
    assert meetings["points"] == 6.0
    assert meetings["inputs"]["capped_from"] == 7.25
    assert [
        (o["id"], o["hs_activity_type"], o["points"]) for o in meetings["inputs"]["occurrences"]
    ] == [
        ("401", "QBR", 4.0),
        ("402", "QBR", 2.0),
        ("403", "Check-in", 1.0),
        ("404", "Check-in", 0.25),
    ]


def test_a_list_is_read_once_a_run_every_page_of_it(tmp_path: Path) -> None:
    """600 members are three pages of 250 (lists v3's largest `limit`), read once though
    two conditions name the list: one lookup by name and three membership pages."""
    seed = {
        "companies": [_company("101"), _company("102")],
        "lists": [
            {
                "name": "Big",
                "objectTypeId": "0-2",
                "members": ["102", *(str(n) for n in range(5000, 5599))],
            }
        ],
    }
    playbook = tmp_path / "p.yaml"
    playbook.write_text(
        "name: Big list\nsegment: [{list: Big}]\ngroups:\n  - name: G\n    rules:\n"
        "      - {when: [{list: Big}], points: 1}\n"
    )
    with running_sandbox(seed) as urls, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        scored = _score(playbook, "sandbox")
        calls = httpx.get(f"{urls.base_url}/_sandbox/stats").json()["calls"]
    assert [(s["id"], s["score"]) for s in scored] == [("102", 1.0)]
    list_calls = {k: v for k, v in calls.items() if "/lists" in k}
    assert sum(list_calls.values()) == 4, calls


def test_an_incremental_pull_rereads_lists_and_labels(tmp_path: Path) -> None:
    """Joining a list or labelling an association changes no record's modification date,
    so the incremental pull reads both again: its scores are the full pull's."""
    playbook_path = tmp_path / "p.yaml"
    playbook_path.write_text(
        LISTS_AND_SEGMENTS.replace("points: 3", "points: 3\n" + LABELS.split("rules:\n", 1)[1])
    )
    playbook = load_playbook(playbook_path)
    moment = datetime.fromisoformat(AS_OF)

    def scores(snapshot: Any) -> dict[str, float]:
        return {s.id: s.score for s in Scorer(playbook).score_snapshot(snapshot, moment)}

    with running_sandbox(SEED, rate_limit=100_000) as urls:
        connection = fast_connection(urls.hubspot_url)
        first = pull(playbook, connection)
        # 101: 8 (lists) + 8 + 26 + 6.5 (labels); 102: 3 + 0; 103 .. 105 as before
        assert scores(first.snapshot) == {
            "101": 48.5,
            "102": 3.0,
            "103": 5.0,
            "104": 3.0,
            "105": 3.0,
        }
        client = HubSpot(access_token="test-token", host=urls.hubspot_url)
        client.crm.lists.memberships_api.add("900", ["101"])  # on churn watch: -3
        client.crm.associations.v4.basic_api.create(  # 203 (detractor) a decision maker
            "contacts",
            "203",
            "companies",
            "101",
            [{"associationCategory": "USER_DEFINED", "associationTypeId": _label_id(client)}],
        )
        later = pull(
            playbook,
            connection,
            previous=first.snapshot,
            since=first.pulled_at,
            previous_signature=first.signature,
        )
        full = pull(playbook, connection)
    assert later.incremental
    # 101: 5 (strategic only) + (10 + 6 + 0) / 3 + (10 + 6 + 0 + 10) + 6.5, summed exactly
    expected = math.fsum([5, 16 / 3, 26, 6.5])
    assert scores(later.snapshot) == scores(full.snapshot)
    assert scores(later.snapshot)["101"] == expected


def _label_id(client: Any) -> int:
    labels = client.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
    return next(t.type_id for t in labels.results if t.label == "Decision maker")


def test_the_scopes_a_playbook_with_lists_and_a_custom_object_needs(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(CUSTOM_OBJECT)
    assert sorted(needed_scopes(load_playbook(path))) == [
        "crm.lists.read",
        "crm.objects.contacts.read",
        "crm.objects.custom.read",
        "crm.objects.custom.write",
        "crm.objects.owners.read",
        "crm.schemas.custom.read",
        "crm.schemas.custom.write",
    ]


def test_a_list_the_snapshot_lacks_is_an_error_naming_it(tmp_path: Path) -> None:
    snapshot = tmp_path / "crm.json"
    snapshot.write_text(json.dumps(SEED))
    playbook = tmp_path / "p.yaml"
    playbook.write_text(LISTS_AND_SEGMENTS.replace("Strategic accounts", "Strategic"))
    args = ["score", "-p", str(playbook), "-s", f"file:{snapshot}", "--as-of", AS_OF]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "lists the CRM snapshot does not hold: 'Strategic' (companies, object type 0-2)" in (
        " ".join(result.output.split())
    )


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_scores_a_custom_object_and_writes_back_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole flow on a custom object: pulled through the generic objects API, its
    list read, scores written back through its batch update (`/crm/v3/objects/{type}`)."""
    from flows.score_accounts import score_accounts

    playbook = tmp_path / "subscriptions.yaml"
    playbook.write_text(CUSTOM_OBJECT)
    with running_sandbox(SEED) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        score_accounts(
            str(playbook), source="sandbox", as_of=AS_OF, db_url=f"sqlite:///{tmp_path}/h.db"
        )
        client = HubSpot(access_token="test-token", host=urls.hubspot_url)
        page = client.crm.objects.basic_api.get_page(
            "2-1234567", properties=["subscriptions_score", "subscriptions_status"]
        )
    written = {
        r.id: (r.properties["subscriptions_score"], r.properties["subscriptions_status"])
        for r in page.results
    }
    assert written == {"301": ("22", "At-risk"), "302": ("12", "At-risk")}
