"""The sample CRM: deterministic, in the snapshot format, messy on purpose, and drifting."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthscore.core.crm import CrmSnapshot
from healthscore.demo.sample import (
    DEFAULT_AS_OF,
    EVENT_TYPES,
    apply_changes,
    evolve_snapshot,
    generate_snapshot,
)

NUMERIC = ("seats_purchased", "active_users", "annualrevenue", "numberofemployees", "mrr")


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=False)


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    return generate_snapshot(1000, seed=11)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_json() -> None:
    assert dumps(generate_snapshot(200, seed=3)) == dumps(generate_snapshot(200, seed=3))


def test_different_seed_gives_different_json() -> None:
    assert dumps(generate_snapshot(200, seed=3)) != dumps(generate_snapshot(200, seed=4))


def test_as_of_moves_every_timestamp_but_nothing_else() -> None:
    """Timestamps are relative to as-of, so a later as-of shifts them and keeps the rest."""
    a = generate_snapshot(50, seed=5)
    b = generate_snapshot(50, seed=5, as_of=DEFAULT_AS_OF + timedelta(days=10))
    assert a != b
    assert [c["properties"]["name"] for c in a["companies"]] == [
        c["properties"]["name"] for c in b["companies"]
    ]
    assert (
        a["meetings"][0]["properties"]["hs_meeting_outcome"]
        == (b["meetings"][0]["properties"]["hs_meeting_outcome"])
    )


def test_default_as_of_is_fixed() -> None:
    assert datetime(2026, 11, 1, tzinfo=UTC) == DEFAULT_AS_OF
    assert dumps(generate_snapshot(30)) == dumps(generate_snapshot(30, as_of=DEFAULT_AS_OF))


def test_a_prefix_of_accounts_is_stable() -> None:
    """Account i does not depend on how many accounts follow it."""
    small = generate_snapshot(20, seed=9)["companies"]
    large = generate_snapshot(40, seed=9)["companies"][:20]
    assert [c["properties"]["name"] for c in small] == [c["properties"]["name"] for c in large]


# ---------------------------------------------------------------------- format


def test_top_level_keys_and_loads_as_crm_snapshot(snapshot: dict[str, Any]) -> None:
    assert list(snapshot) == ["owners", "companies", "contacts", *EVENT_TYPES]
    model = CrmSnapshot.from_json(snapshot)
    assert len(model.records("companies")) == 1000
    assert model.to_json() == snapshot


def test_every_property_value_is_a_string(snapshot: dict[str, Any]) -> None:
    for object_type, records in snapshot.items():
        if object_type == "owners":
            continue
        for record in records:
            assert isinstance(record["id"], str)
            for key, value in record["properties"].items():
                assert isinstance(value, str), (object_type, record["id"], key, value)


def test_ids_are_unique_numeric_strings(snapshot: dict[str, Any]) -> None:
    for object_type, records in snapshot.items():
        ids = [r["id"] for r in records]
        assert len(set(ids)) == len(ids), object_type
        assert all(i.isdigit() for i in ids), object_type
    assert snapshot["companies"][0]["id"] == "101"
    assert snapshot["owners"][0]["id"] == "1001"


def test_every_association_points_to_an_existing_record(snapshot: dict[str, Any]) -> None:
    companies = {c["id"] for c in snapshot["companies"]}
    contacts = {c["id"] for c in snapshot["contacts"]}
    for contact in snapshot["contacts"]:
        assert len(contact["associations"]["companies"]) == 1
        assert contact["associations"]["companies"][0] in companies
    for object_type in EVENT_TYPES:
        for record in snapshot[object_type]:
            assoc = record["associations"]
            assert assoc["companies"] and set(assoc["companies"]) <= companies
            assert set(assoc.get("contacts", [])) <= contacts


def test_event_contacts_belong_to_the_event_company(snapshot: dict[str, Any]) -> None:
    company_of = {c["id"]: c["associations"]["companies"][0] for c in snapshot["contacts"]}
    for object_type in EVENT_TYPES:
        for record in snapshot[object_type]:
            for contact_id in record["associations"].get("contacts", []):
                assert company_of[contact_id] in record["associations"]["companies"]


def test_every_company_owner_exists(snapshot: dict[str, Any]) -> None:
    owners = {o["id"] for o in snapshot["owners"]}
    owned = [c for c in snapshot["companies"] if "hubspot_owner_id" in c["properties"]]
    assert len(owned) > 0.95 * len(snapshot["companies"])
    assert all(c["properties"]["hubspot_owner_id"] in owners for c in owned)


def test_owners_look_like_csms(snapshot: dict[str, Any]) -> None:
    owners = snapshot["owners"]
    assert 1000 / 80 <= len(owners) <= 1000 / 40
    emails = [o["email"] for o in owners]
    assert len(set(emails)) == len(emails)
    for owner in owners:
        assert owner["firstName"] and owner["lastName"]
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.com", owner["email"]), owner["email"]


@pytest.mark.parametrize("accounts", [0, 1, 5, 120])
def test_sizes(accounts: int) -> None:
    data = generate_snapshot(accounts, seed=1)
    assert len(data["companies"]) == accounts
    assert len(data["owners"]) == max(4, round(accounts / 60))
    if accounts:
        assert len(data["contacts"]) >= accounts  # at least one contact per company


def test_negative_accounts_is_an_error() -> None:
    with pytest.raises(ValueError):
        generate_snapshot(-1)


def test_event_timestamps_mostly_past_some_future(snapshot: dict[str, Any]) -> None:
    as_of = DEFAULT_AS_OF.timestamp()
    for object_type, allow_future in (("meetings", True), ("calls", False), ("emails", False)):
        times = [
            datetime.fromisoformat(r["properties"]["hs_timestamp"]).timestamp()
            for r in snapshot[object_type]
        ]
        past = [t for t in times if t <= as_of]
        assert len(past) > 0.8 * len(times)
        assert all(as_of - t <= 366 * 86400 for t in past)
        assert any(t > as_of for t in times) == allow_future
    scheduled = [
        m
        for m in snapshot["meetings"]
        if datetime.fromisoformat(m["properties"]["hs_timestamp"]).timestamp() > as_of
    ]
    assert all(m["properties"]["hs_meeting_outcome"] == "SCHEDULED" for m in scheduled)


def test_vocabulary(snapshot: dict[str, Any]) -> None:
    """The properties the playbooks read are there, with HubSpot's value sets."""
    company_props: Counter[str] = Counter()
    for company in snapshot["companies"]:
        company_props.update(company["properties"].keys())
    for prop in (
        "name", "domain", "industry", "hubspot_owner_id", "lifecyclestage", "annualrevenue",
        "numberofemployees", "createdate", "hs_lastmodifieddate", "notes_last_contacted",
        "seats_purchased", "active_users", "last_login_date", "product_adoption_pct",
        "renewal_date", "csm_pulse", "case_study_published", "g2_review_left",
        "reference_customer", "plan_tier", "mrr",
    ):  # fmt: skip
        assert company_props[prop] > 0, prop
    stages = Counter(c["properties"]["lifecyclestage"] for c in snapshot["companies"])
    assert stages["customer"] > 0.8 * 1000 and stages["opportunity"] and stages["lead"]
    values = {
        ("tickets", "hs_ticket_priority"): {"LOW", "MEDIUM", "HIGH", "URGENT"},
        ("tickets", "hs_pipeline_stage"): {"1", "2", "3", "4"},
        ("meetings", "hs_meeting_outcome"): {
            "COMPLETED", "SCHEDULED", "NO_SHOW", "CANCELED", "RESCHEDULED",
        },
        ("emails", "hs_email_direction"): {"EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"},
        ("deals", "pipeline"): {"default"},
    }  # fmt: skip
    for (object_type, prop), expected in values.items():
        seen = {r["properties"][prop] for r in snapshot[object_type]}
        assert seen == expected, (object_type, prop, seen)
    for object_type, props in (
        ("meetings", {"hs_timestamp", "hs_meeting_title"}),
        ("calls", {"hs_timestamp", "hs_call_disposition", "hs_call_duration"}),
        ("notes", {"hs_timestamp", "hs_note_body"}),
        ("tickets", {"subject", "createdate"}),
        ("deals", {"dealstage", "amount", "closedate", "dealname"}),
        ("contacts", {"email", "firstname", "lastname", "jobtitle"}),
    ):
        for record in snapshot[object_type]:
            assert props <= set(record["properties"]), (object_type, record)


def test_nps_category_matches_score(snapshot: dict[str, Any]) -> None:
    answered = 0
    for contact in snapshot["contacts"]:
        props = contact["properties"]
        score = props.get("nps_score")
        if not score:
            assert "nps_category" not in props
            continue
        answered += 1
        value = int(score)
        assert 0 <= value <= 10
        expected = "promoter" if value >= 9 else "passive" if value >= 7 else "detractor"
        assert props["nps_category"] == expected
    assert 0.2 * len(snapshot["contacts"]) < answered < 0.9 * len(snapshot["contacts"])


def test_some_tickets_lack_hs_timestamp(snapshot: dict[str, Any]) -> None:
    with_ts = sum("hs_timestamp" in t["properties"] for t in snapshot["tickets"])
    assert 0 < with_ts < len(snapshot["tickets"])


def test_company_names_include_unicode_and_characters_to_escape() -> None:
    names = [c["properties"]["name"] for c in generate_snapshot(3000, seed=2)["companies"]]
    assert any(not n.isascii() for n in names)
    for char in "&<'":
        assert any(char in n for n in names), char
    assert len(set(names)) > 0.8 * len(names)


# ----------------------------------------------------------------------- messy


def test_messy_values_exist(snapshot: dict[str, Any]) -> None:
    companies = [c["properties"] for c in snapshot["companies"]]
    assert any(v == "" for p in companies for v in p.values()), "empty strings"
    assert any("csm_pulse" not in p for p in companies), "missing properties"
    non_numeric = [p[k] for p in companies for k in NUMERIC if p.get(k) and not is_number(p[k])]
    assert "n/a" in non_numeric
    assert any(re.fullmatch(r"\d{1,3}(,\d{3})+", v) for v in non_numeric)
    logins = [p["last_login_date"] for p in companies if "last_login_date" in p]
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in logins), "ISO dates"
    assert any(re.fullmatch(r"\d{12,13}", v) for v in logins), "epoch milliseconds"
    assert any("T" in v for v in logins), "ISO date-times"
    pulses = {p.get("csm_pulse") for p in companies}
    assert {"green", "yellow", "red", ""} <= pulses
    assert any(p and p != p.lower() for p in pulses), "mixed case"


def test_signals_correlate_with_each_other(snapshot: dict[str, Any]) -> None:
    """Red-pulse customers use less and file more urgent tickets than green ones."""
    tickets: Counter[str] = Counter()
    for ticket in snapshot["tickets"]:
        if ticket["properties"]["hs_ticket_priority"] in ("HIGH", "URGENT"):
            tickets[ticket["associations"]["companies"][0]] += 1
    by_pulse: dict[str, list[tuple[float, int]]] = {"green": [], "red": []}
    for company in snapshot["companies"]:
        props = company["properties"]
        pulse = props.get("csm_pulse")
        seats, active = props.get("seats_purchased", ""), props.get("active_users", "")
        if pulse in by_pulse and seats.isdigit() and active.isdigit():
            by_pulse[pulse].append((int(active) / int(seats), tickets[company["id"]]))
    green, red = by_pulse["green"], by_pulse["red"]
    assert sum(u for u, _ in green) / len(green) > sum(u for u, _ in red) / len(red) + 0.2
    assert sum(t for _, t in red) / len(red) > sum(t for _, t in green) / len(green)


# ---------------------------------------------------------------------- evolve


def week(n: int) -> datetime:
    return DEFAULT_AS_OF + timedelta(days=7 * n)


def test_evolve_is_deterministic() -> None:
    base = generate_snapshot(300, seed=4)
    a = evolve_snapshot(base, weeks=1, seed=4, as_of=week(1))
    b = evolve_snapshot(generate_snapshot(300, seed=4), weeks=1, seed=4, as_of=week(1))
    assert dumps(a) == dumps(b)
    assert dumps(a) != dumps(evolve_snapshot(base, weeks=2, seed=4, as_of=week(1)))
    assert dumps(a) != dumps(evolve_snapshot(base, weeks=1, seed=5, as_of=week(1)))


def test_evolve_does_not_depend_on_record_order() -> None:
    base = generate_snapshot(200, seed=4)
    shuffled = dict(base, companies=list(reversed(base["companies"])))
    a = evolve_snapshot(base, weeks=2, seed=4, as_of=week(2))
    b = evolve_snapshot(shuffled, weeks=2, seed=4, as_of=week(2))
    assert a["companies"] == b["companies"]


def test_evolve_shape_and_new_events() -> None:
    base = generate_snapshot(500, seed=8)
    changes = evolve_snapshot(base, weeks=1, seed=8, as_of=week(1))
    companies = {c["id"] for c in base["companies"]}
    assert set(changes["companies"]) <= companies
    for values in changes["companies"].values():
        assert values and all(isinstance(v, str) for v in values.values())
    assert set(changes["_new"]) <= {"meetings", "calls", "tickets"}
    start, end = week(1).timestamp() - 7 * 86400, week(1).timestamp()
    existing = {t: {r["id"] for r in base[t]} for t in changes["_new"]}
    for object_type, records in changes["_new"].items():
        for record in records:
            assert record["id"] not in existing[object_type]
            assert set(record["associations"]["companies"]) <= companies
            props = record["properties"]
            moment = datetime.fromisoformat(props.get("hs_timestamp") or props["createdate"])
            assert start <= moment.timestamp() <= end
            assert all(isinstance(v, str) for v in props.values())


def test_evolve_has_decliners_and_recoverers_and_mostly_stable() -> None:
    base = generate_snapshot(1000, seed=8)
    pulses: Counter[str] = Counter()
    urgent = 0
    for w in range(1, 5):
        changes = evolve_snapshot(base, weeks=w, seed=8, as_of=week(w))
        pulses.update(v["csm_pulse"] for v in changes["companies"].values() if "csm_pulse" in v)
        urgent += sum(
            t["properties"]["hs_ticket_priority"] == "URGENT"
            for t in changes["_new"].get("tickets", [])
        )
        apply_changes(base, changes)
    assert pulses["red"] > 0 and pulses["green"] > 0
    assert urgent > 0
    customers = sum(c["properties"]["lifecyclestage"] == "customer" for c in base["companies"])
    assert sum(pulses.values()) < 0.5 * customers


def test_apply_changes_updates_in_place_and_appends() -> None:
    base = generate_snapshot(100, seed=8)
    before = {t: len(base[t]) for t in ("meetings", "calls", "tickets")}
    changes = evolve_snapshot(base, weeks=1, seed=8, as_of=week(1))
    apply_changes(base, changes)
    by_id = {c["id"]: c for c in base["companies"]}
    for company_id, values in changes["companies"].items():
        for key, value in values.items():
            assert by_id[company_id]["properties"][key] == value
    for object_type, records in changes["_new"].items():
        assert len(base[object_type]) == before[object_type] + len(records)
    CrmSnapshot.from_json(base)  # still a valid snapshot


# ------------------------------------------------------------------- playbooks

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


@pytest.mark.parametrize("name", ["default.yaml", "examples/hubspot_sum.yaml"])
def test_playbooks_only_read_properties_the_generator_produces(
    name: str, snapshot: dict[str, Any]
) -> None:
    from healthscore.actions import load_playbook

    produced: dict[str, set[str]] = {}
    for object_type, records in snapshot.items():
        if object_type != "owners":
            produced[object_type] = {k for r in records for k in r["properties"]}
    for object_type, needed in load_playbook(PLAYBOOKS / name).required_properties().items():
        # createdate/hs_timestamp are the event-time fallbacks; one of them is enough.
        missing = needed - produced[object_type] - {"hs_timestamp", "createdate"}
        assert not missing, (object_type, missing)


def test_default_playbook_status_shares() -> None:
    """Tuning guard: about half Healthy, a quarter Neutral, a fifth At-risk."""
    from healthscore.actions import load_playbook
    from healthscore.core.scoring import Scorer

    book = load_playbook(PLAYBOOKS / "default.yaml")
    model = CrmSnapshot.from_json(generate_snapshot(2000, seed=7))
    scores = Scorer(book).score_snapshot(model, DEFAULT_AS_OF)
    customers = sum(
        c.properties.get("lifecyclestage") == "customer" for c in model.records("companies")
    )
    assert len(scores) == customers
    shares = Counter(s.status for s in scores)
    assert 0.45 <= shares["Healthy"] / len(scores) <= 0.60
    assert 0.20 <= shares["Neutral"] / len(scores) <= 0.30
    assert 0.15 <= shares["At-risk"] / len(scores) <= 0.30
