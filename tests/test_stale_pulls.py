"""Incremental pulls that never go stale (issue 11): the four cases of the issue.

The invariant under test: an incremental pull gives exactly the scores a full
pull gives at that moment. Every CRM change goes through the sandbox's HubSpot
API with the real hubspot-api-client; nothing edits sandbox state directly.

The playbook (`STALE`) and how its numbers come out (PLAYBOOK_SPEC.md, sum):
  Base 50 (a named company) + Engagement 50 (at least one meeting, a frequency
  band) + Support -40 per ticket (an event rule, "score every time")
  + Champions 5 per promoter contact; Healthy >= 80, Neutral >= 60, else At-risk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hubspot import HubSpot

from healthscore.actions import parse_playbook
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook, PlaybookError
from healthscore.core.scoring import Scorer
from healthscore.core.trends import compare
from healthscore.core.triggers import fire, window_start
from healthscore.history import CacheEntry, RunInfo, open_store
from healthscore.history.cache import pack_snapshot, unpack_snapshot
from healthscore.history.trigger_history import trigger_history
from healthscore.integrations.hubspot.client import HubSpotConnection, RateLimiter
from healthscore.integrations.hubspot.pull import pull
from healthscore.sandbox import SandboxUrls, running_sandbox
from healthscore.sources import cached, load_snapshot

AS_OF = datetime(2026, 2, 1, tzinfo=UTC)
STAMP = "2026-01-10T10:00:00Z"

STALE = parse_playbook(
    """
name: Stale pulls
groups:
  - name: Base
    rules:
      - name: named
        when: [{property: name, op: known}]
        points: 50
  - name: Engagement
    rules:
      - name: met
        event: meetings
        frequency:
          - {at_least: 1, points: 50}
  - name: Support
    rules:
      - name: tickets
        event: tickets
        points: -40
  - name: Champions
    rules:
      - name: promoters
        associated: contacts
        when: [{property: nps_category, op: eq, value: promoter}]
        points: 5
""",
    "stale.yaml",
)


def fast_connection(url: str) -> HubSpotConnection:
    """Our limiter opened wide: the sandbox's own limits are what applies."""
    return HubSpotConnection(
        url,
        "test-token",
        burst=RateLimiter(100_000, 10.0),
        search=RateLimiter(1_000, 1.0),
        clock_margin=timedelta(0),
    )


def scores(playbook: Playbook, snapshot: CrmSnapshot, as_of: datetime = AS_OF) -> dict[str, Any]:
    return {s.id: (s.score, s.status) for s in Scorer(playbook).score_snapshot(snapshot, as_of)}


def company(i: int) -> dict[str, Any]:
    return {"id": str(i), "properties": {"name": f"Co {i}", "createdate": STAMP}}


def event(record_id: str, *companies: str, **more: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "properties": {"hs_timestamp": STAMP, "createdate": STAMP},
        "associations": {"companies": list(companies), **more},
    }


def seed() -> dict[str, Any]:
    """601: a meeting and a spam ticket; 602: to be deleted; 801: its meeting is on a contact."""
    return {
        "owners": [{"id": "1", "email": "ana@example.com"}],
        "companies": [company(601), company(602), company(801)],
        "contacts": [
            {
                "id": "5001",
                "properties": {"email": "x@801.example.com", "nps_category": "detractor"},
                "associations": {"companies": ["801"]},
            }
        ],
        "meetings": [event("7001", "601", "602"), event("7801", contacts=["5001"])],
        "tickets": [event("9601", "601")],
        "calls": [],
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(seed(), rate_limit=100_000, search_rate_per_second=1_000) as urls:
        yield urls


@pytest.fixture(scope="module")
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    return HubSpot(access_token="test-token", host=sandbox.hubspot_url)


def test_deleted_company_and_spam_ticket_leave_the_next_incremental_run(
    sandbox: SandboxUrls, hubspot: HubSpot
) -> None:
    connection = fast_connection(sandbox.hubspot_url)
    first = pull(STALE, connection)
    before = scores(STALE, first.snapshot)
    # 601: 50 + 50 (a meeting) - 40 (ticket 9601) = 60 Neutral; 602: 50 + 50 = 100
    assert before["601"] == (60.0, "Neutral") and before["602"] == (100.0, "Healthy")
    hubspot.crm.objects.basic_api.archive("tickets", "9601")  # deleted as spam
    hubspot.crm.companies.basic_api.archive("602")  # deleted company
    second = pull(
        STALE,
        connection,
        previous=first.snapshot,
        since=first.pulled_at,
        previous_signature=first.signature,
    )
    after = scores(STALE, second.snapshot)
    assert second.incremental is True
    # 601: 50 + 50, the ticket no longer costs 40; 602 is not scored at all
    assert after["601"] == (100.0, "Healthy")
    assert "602" not in after
    assert after == scores(STALE, pull(STALE, connection).snapshot)


def test_a_meeting_linked_to_the_company_later_counts_on_the_next_run(
    sandbox: SandboxUrls, hubspot: HubSpot
) -> None:
    connection = fast_connection(sandbox.hubspot_url)
    first = pull(STALE, connection)
    # 801: 50 (named), no meeting of its own, a detractor contact: 50 At-risk
    assert scores(STALE, first.snapshot)["801"] == (50.0, "At-risk")
    # the meeting logged on contact 5001 is linked to the company afterwards:
    # creating an association bumps neither record's hs_lastmodifieddate
    hubspot.crm.associations.v4.basic_api.create_default("meetings", "7801", "companies", "801")
    second = pull(
        STALE,
        connection,
        previous=first.snapshot,
        since=first.pulled_at,
        previous_signature=first.signature,
    )
    assert second.incremental is True and second.changed["meetings"] == 0
    # 50 + 50 (at least one meeting) = 100 Healthy, as a full pull says
    assert scores(STALE, second.snapshot)["801"] == (100.0, "Healthy")
    assert second.snapshot.to_json() == pull(STALE, connection).snapshot.to_json()


DUPLICATES = parse_playbook(
    """
name: Meeting bands
groups:
  - name: Engagement
    rules:
      - name: meetings
        event: meetings
        frequency:
          - {exactly: 1, points: 5}
          - {at_least: 2, points: 15}
thresholds:
  - {min: 10, label: Healthy}
  - {min: 0, label: At-risk}
""",
    "bands.yaml",
)


def duplicate_seed() -> dict[str, Any]:
    """A CRM export listing the meeting->company pair twice (it has two association types)."""
    return {
        "owners": [],
        "companies": [company(701)],
        "meetings": [event("7701", "701", "701")],
    }


def test_a_pair_listed_twice_counts_once_in_the_file_source(tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(duplicate_seed()))
    snapshot = load_snapshot(f"file:{path}", DUPLICATES)
    # one meeting: the band `exactly: 1` gives 5.0, At-risk (< 10); counted twice it
    # would fall in `at_least: 2` and give 15.0 Healthy
    assert scores(DUPLICATES, snapshot) == {"701": (5.0, "At-risk")}
    assert snapshot.records("meetings")[0].associations == {"companies": ["701"]}


def test_a_pair_listed_twice_counts_once_through_the_hubspot_source() -> None:
    with running_sandbox(duplicate_seed(), rate_limit=100_000) as urls:
        snapshot = pull(DUPLICATES, fast_connection(urls.hubspot_url)).snapshot
    assert scores(DUPLICATES, snapshot) == {"701": (5.0, "At-risk")}


def test_full_flag_and_the_full_pull_age_decide_the_kind_of_pull(
    sandbox: SandboxUrls, db_url: str
) -> None:
    """`run --full`, the 7-day safety net and the reasons the run summary prints."""
    connection = fast_connection(sandbox.hubspot_url)
    with open_store(db_url) as store:

        def remember(pulled: cached.PulledCrm) -> None:
            run = RunInfo(STALE.name, STALE.content_hash, AS_OF, "sandbox", AS_OF)
            store.record_run(run, [], pulled.cache)

        def again(**kw: Any) -> cached.PulledCrm:
            return cached.pull(
                "sandbox", STALE, load_cache=store.load_cache, connection=connection, **kw
            )

        first = again()
        assert (first.incremental, first.reason) == (False, "no cached snapshot")
        remember(first)
        second = again()
        assert second.incremental is True
        assert second.reason.startswith("changes since ")
        forced = again(full=True)
        assert (forced.incremental, forced.reason) == (False, "--full")
        remember(second)
        # the cache keeps the first (full) pull's date through incremental runs
        assert second.cache is not None
        entry = store.load_cache(second.cache.source_key)
        assert entry is not None
        unpacked = unpack_snapshot(entry.payload)
        assert unpacked is not None
        held, full_at = unpacked
        assert full_at == first.pulled_at
        assert held.to_json() == second.snapshot.to_json()
        aged = pack_snapshot(held, first.pulled_at - timedelta(days=7))
        old = CacheEntry(entry.source_key, entry.pulled_at, aged, entry.signature)
        stale = cached.pull("sandbox", STALE, load_cache=lambda key: old, connection=connection)
        assert stale.incremental is False
        assert stale.reason.startswith("last full pull 7.0 days ago (every 7 days)")
        # the JSON blob of earlier releases
        blob = json.dumps({"full_pulled_at": full_at.isoformat(), "snapshot": held.to_json()})
        legacy = CacheEntry(entry.source_key, entry.pulled_at, blob.encode(), entry.signature)
        from_legacy = cached.pull(
            "sandbox", STALE, load_cache=lambda key: legacy, connection=connection
        )
        assert from_legacy.incremental is False
        assert from_legacy.reason == "the cache is in an older format"
        assert scores(STALE, second.snapshot) == scores(STALE, forced.snapshot)


# ---------------------------------------------------------------- weekly trigger windows

WEEKLY_TEXT = """
name: Weekly drop
timezone: Europe/Berlin
groups:
  - name: Usage
    rules:
      - name: usage
        property: usage
        scale: {from: [0, 100], to: [0, 100]}
actions:
  - name: dropped
    on: {score_dropped_by: 20, within_days: 7}
    do: slack
    message: "{{ account.name }} dropped"
"""
WEEKLY = parse_playbook(WEEKLY_TEXT, "weekly.yaml")
BERLIN = ZoneInfo("Europe/Berlin")


def _weekly_runs(db_url: str, playbook: Playbook, last: datetime, now: datetime) -> Any:
    """Store last week's run (usage 90 -> 90 points), ask the triggers at `now` (usage 60)."""

    def snapshot(usage: str) -> CrmSnapshot:
        return CrmSnapshot.from_json(
            {"companies": [{"id": "1", "properties": {"name": "Acme", "usage": usage}}]}
        )

    with open_store(db_url) as store:
        past = Scorer(playbook).score_snapshot(snapshot("90"), last)
        comparisons = compare(past, store.baseline(playbook, last), 3)
        run = RunInfo(playbook.name, playbook.content_hash, last, "file:x.json", last)
        store.record_run(run, comparisons)
        history = trigger_history(store.engine, playbook.name, now, [7.0], [], playbook.timezone)
    trigger = playbook.actions[0].trigger
    return fire(trigger, account_id="1", score=60.0, status="At-risk", as_of=now, history=history)


def test_last_weeks_run_is_inside_within_days_7_across_the_october_clock_change(
    db_url: str,
) -> None:
    # Monday 2026-10-19 06:00 CEST (04:00 UTC) and Monday 2026-10-26 06:00 CET (05:00 UTC):
    # the clocks went back on 2026-10-25, so the runs are 7 days and 1 hour apart and a
    # 7 x 24 h window (from 2026-10-19 05:00 UTC) would miss the first one.
    last = datetime(2026, 10, 19, 6, tzinfo=BERLIN)
    now = datetime(2026, 10, 26, 6, tzinfo=BERLIN)
    assert now.astimezone(UTC) - last.astimezone(UTC) == timedelta(days=7, hours=1)
    assert window_start(now, 7, "Europe/Berlin") == datetime(2026, 10, 19, tzinfo=BERLIN)
    fired = _weekly_runs(db_url, WEEKLY, last, now)
    # 90 (last week's high) - 60 (now) = 30 >= 20
    assert fired is not None
    assert fired.occurrence == "drop-from:2026-10-19T04:00:00+00:00"
    assert fired.reason.startswith("score dropped 30 points (from 90 on 2026-10-19 to 60")


def test_last_weeks_run_is_inside_within_days_7_when_this_run_starts_7_seconds_late(
    db_url: str,
) -> None:
    # UTC by default: Monday 06:00:00 last week, 06:00:07 this week (7 days and 7 s)
    utc = parse_playbook(
        "\n".join(line for line in WEEKLY_TEXT.splitlines() if "timezone" not in line),
        "weekly-utc.yaml",
    )
    assert utc.timezone == "UTC"
    last = datetime(2026, 10, 5, 6, tzinfo=UTC)
    now = datetime(2026, 10, 12, 6, 0, 7, tzinfo=UTC)
    fired = _weekly_runs(db_url, utc, last, now)
    assert fired is not None and fired.occurrence == "drop-from:2026-10-05T06:00:00+00:00"


def test_a_window_counts_whole_calendar_days_back() -> None:
    now = datetime(2026, 3, 30, 23, 59, tzinfo=UTC)  # Monday night, after the spring change
    assert window_start(now, 7, "Europe/Berlin") == datetime(2026, 3, 24, tzinfo=BERLIN)
    assert window_start(now, 7) == datetime(2026, 3, 23, tzinfo=UTC)
    assert window_start(now, 0.5) == datetime(2026, 3, 29, tzinfo=UTC)  # ceil: one day


def test_an_unknown_timezone_is_a_validate_error_with_a_hint() -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(WEEKLY_TEXT.replace("Europe/Berlin", "Europe/Berln"), "weekly.yaml")
    assert str(caught.value) == (
        "1 problem in the playbook:\n"
        "weekly.yaml:3: timezone: unknown time zone 'Europe/Berln'\n"
        "    hint: did you mean `Europe/Berlin`?"
    )
