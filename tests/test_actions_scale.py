"""Issue 15, actions at scale: batched ledger writes, Slack concurrent across channels at the
per-channel pace, owner lookups cached in the store, `group: owner` exactly once.

Real parts: the ledger in SQLite and PostgreSQL, the product's Slack client (slack_sdk)
against the sandbox with Slack's per-channel limit on, faults made by the sandbox.
Times are never asserted here (benchmarks/bench_actions.py measures them).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from healthscore.actions.dispatch import Dispatcher, Vendors
from healthscore.actions.messages import slack_owner_line
from healthscore.cli import app
from healthscore.history import RunInfo, open_store
from healthscore.history.ledger import ActionCounts, ActionLedger, PendingAction, RetryPolicy
from healthscore.history.lookups import StoreLookupCache
from healthscore.integrations.slack.messages import SlackSender, slack_client
from healthscore.sandbox import SandboxUrls, running_sandbox

AS_OF = datetime(2026, 3, 1, 9, tzinfo=UTC)
OWNERS = ["ana", "bo", "cy", "di"]  # di has no Slack user: her rows go to #cs-alerts


def seed() -> dict[str, Any]:
    return {
        "owners": [
            {"id": str(i + 1), "email": f"{name}@example.com", "firstName": name.title()}
            for i, name in enumerate(OWNERS)
        ],
        "slack_users": [
            {"id": f"U{name.upper():0>8}", "email": f"{name}@example.com"} for name in OWNERS[:3]
        ],
        "companies": [],
    }


@pytest.fixture
def slack() -> Iterator[SandboxUrls]:
    with running_sandbox(seed(), slack_channel_rate=1.0) as urls:
        yield urls


def row(owner: str, account: str, *, group: bool = False) -> PendingAction:
    text = f"{account} is now At-risk"
    payload: dict[str, Any] = {
        "to": "owner",
        "owner_email": f"{owner}@example.com",
        "fallback_channel": "#cs-alerts",
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    if group:
        payload |= {
            "group": "owner",
            "name": account,
            "line": slack_owner_line(
                account_name=account,
                text=text,
                score=41,
                delta=-20,
                status="At-risk",
                chip="🔴",
                previous_status="Healthy",
                url=f"https://app.hubspot.com/contacts/1/company/{account}",
            ),
        }
    return PendingAction(
        playbook="P",
        action="Digest" if group else "Alert",
        kind="slack",
        account_id=account,
        occurrence="2026-03-01T09:00:00+00:00",
        as_of=AS_OF,
        reason="status changed",
        target=f"owner {owner}@example.com (else #cs-alerts)",
        payload=payload,
    )


def record(db_url: str, actions: list[PendingAction]) -> None:
    with open_store(db_url) as store:
        store.record_run(RunInfo("P", "hash", AS_OF, "sandbox", AS_OF), [], actions=actions)


def dispatch(
    db_url: str, urls: SandboxUrls, *, cache: bool = False, **sender: Any
) -> tuple[ActionCounts, list[str], int, int]:
    """One dispatch of playbook P: counts, errors, commits made, lookups the sender made."""
    with open_store(db_url) as store:
        commits: list[int] = []
        sa.event.listen(store.engine, "commit", lambda _: commits.append(1))
        client = SlackSender(
            slack_client(urls.slack_url, "xoxb-test"),
            cache=StoreLookupCache(store.engine, **sender.pop("ttl", {})) if cache else None,
            **sender,
        )

        def unused() -> Any:
            raise AssertionError("only Slack is dispatched here")

        dispatcher = Dispatcher(
            ActionLedger(store.engine),
            Vendors(slack=lambda: client, jira=unused, hubspot=unused),
            log=lambda _: None,
            policy=RetryPolicy(backoff_seconds=0),  # a failed row is due again at once
            mark_size=3,
        )
        counts, errors = dispatcher.run("P")
        return counts, errors, len(commits), client.lookups_made


def posted(urls: SandboxUrls) -> list[dict[str, Any]]:
    return list(urls.state.slack.messages)


def stats(urls: SandboxUrls) -> dict[str, Any]:
    return dict(httpx.get(f"{urls.base_url}/_sandbox/stats", timeout=10).json())


def ledger(db_url: str) -> list[Any]:
    with open_store(db_url) as store:
        return sorted(ActionLedger(store.engine).entries(limit=1000), key=lambda r: r.id)


def test_claims_and_outcomes_go_in_batches_and_each_channel_keeps_its_order(
    db_url: str, slack: SandboxUrls
) -> None:
    # ana 3, bo 2, cy 1, di 1 (to #cs-alerts): 7 rows, 4 channels
    plan = [("ana", "a1"), ("bo", "b1"), ("ana", "a2"), ("cy", "c1"), ("di", "d1")]
    plan += [("ana", "a3"), ("bo", "b2")]
    record(db_url, [row(owner, account) for owner, account in plan])
    counts, errors, commits, lookups = dispatch(db_url, slack)
    assert (counts.sent, counts.failed, counts.skipped, errors) == (7, 0, 0, [])
    # one transaction claims the 7 rows; outcomes are written 3 at a time: 3 + 3 + 1
    assert commits == 1 + 3
    # users.lookupByEmail for the 4 owners, conversations.open for the 3 with Slack
    assert lookups == 4 + 3
    by_channel: dict[str, list[str]] = {}
    for message in posted(slack):
        key = message["metadata"]["event_payload"]["ledger_key"]
        by_channel.setdefault(message["channel_name"], []).append(key.split("|")[2])
    assert by_channel == {
        "@U00000ANA": ["a1", "a2", "a3"],
        "@U000000BO": ["b1", "b2"],
        "@U000000CY": ["c1"],
        "cs-alerts": ["d1"],
    }
    # the client kept each channel under Slack's pace: the sandbox never said 429
    assert stats(slack)["rate_limited"] == 0
    assert [r.state for r in ledger(db_url)] == ["sent"] * 7


def test_a_client_faster_than_the_channel_limit_waits_for_retry_after(
    db_url: str, slack: SandboxUrls
) -> None:
    record(db_url, [row("ana", f"a{i}") for i in range(1, 6)])
    counts, errors, _, _ = dispatch(db_url, slack, channel_rate=50.0)
    assert (counts.sent, counts.failed, errors) == (5, 0, [])
    # a burst of 3 goes through, then the sandbox answers 429 + Retry-After and
    # slack_sdk waits and sends again: every message once, in ledger order
    assert stats(slack)["rate_limited"] >= 1
    keys = [m["metadata"]["event_payload"]["ledger_key"] for m in posted(slack)]
    assert [k.split("|")[2] for k in keys] == ["a1", "a2", "a3", "a4", "a5"]


def test_owner_lookups_are_remembered_across_runs_until_they_expire(
    db_url: str, slack: SandboxUrls
) -> None:
    record(db_url, [row("ana", "a1"), row("di", "d1")])
    _, _, _, first = dispatch(db_url, slack, cache=True)
    assert first == 2 + 1  # two emails; one DM (di has no Slack user)
    with open_store(db_url) as store, store.engine.connect() as connection:
        kept = connection.execute(
            sa.text("SELECT kind, key, value FROM slack_lookups ORDER BY kind, key")
        ).all()
    assert [tuple(r) for r in kept] == [
        ("dm", "U00000ANA", "D00000ANA"),
        ("user", "ana@example.com", "U00000ANA"),
        ("user", "di@example.com", None),
    ]
    later = AS_OF + timedelta(days=1)
    record(db_url, [replace_occurrence(row("ana", "a1"), later), row("di", "d2")])
    _, errors, _, second = dispatch(db_url, slack, cache=True)
    assert (second, errors) == (0, [])  # the next day's run asks Slack nothing
    assert stats(slack)["calls"]["POST /api/users.lookupByEmail"] == 2
    record(db_url, [row("ana", "a9")])
    expired = {"ttl": {"found_ttl": timedelta(0), "missing_ttl": timedelta(0)}}
    dispatch(db_url, slack, cache=True, **expired)  # writes answers that expire at once
    _, _, _, third = dispatch(db_url, slack, cache=True)
    record(db_url, [row("bo", "b9")])
    _, _, _, fourth = dispatch(db_url, slack, cache=True)
    assert (third, fourth) == (0, 2)  # nothing due; then bo: email and DM asked once
    assert len(posted(slack)) == 6


def replace_occurrence(action: PendingAction, when: datetime) -> PendingAction:
    return PendingAction(**{**action.__dict__, "occurrence": when.isoformat()})


def test_group_owner_sends_one_message_per_owner_and_a_lost_answer_is_found_not_resent(
    db_url: str, slack: SandboxUrls
) -> None:
    plan = [("ana", "a1"), ("bo", "b1"), ("ana", "a2"), ("di", "d1"), ("ana", "a3")]
    record(db_url, [row(owner, account, group=True) for owner, account in plan])
    # every write is applied, then its answer is dropped: the client cannot tell
    httpx.post(
        f"{slack.base_url}/_sandbox/faults-after-write",
        json={"rate": 1.0, "seed": 1, "kinds": ["drop"]},
    ).raise_for_status()
    counts, errors, _, _ = dispatch(db_url, slack)
    assert (counts.sent, counts.failed) == (0, 5) and len(errors) == 5
    assert len(posted(slack)) == 3  # ana's 3 accounts, bo's 1, di's 1: one message each
    httpx.post(
        f"{slack.base_url}/_sandbox/faults-after-write", json={"rate": 0.0}
    ).raise_for_status()
    counts, errors, _, _ = dispatch(db_url, slack)
    assert (counts.sent, counts.reconciled, counts.failed, errors) == (0, 5, 0, [])
    assert len(posted(slack)) == 3  # found by the keys in their metadata, not sent again
    ana = next(m for m in posted(slack) if m["channel_name"] == "@U00000ANA")
    assert [k.split("|")[2] for k in ana["metadata"]["event_payload"]["ledger_keys"]] == [
        "a1",
        "a2",
        "a3",
    ]
    assert ana["blocks"][0]["text"]["text"] == "Health score: 3 of your accounts moved"
    assert ana["text"] == "Health score: 3 of your accounts moved: a1, a2, a3"
    rows = ledger(db_url)
    assert [r.state for r in rows] == ["sent"] * 5
    ana_rows = [r for r in rows if r.account_id.startswith("a")]
    assert {r.external_id for r in ana_rows} == {f"{ana['channel']}/{ana['ts']}"}


def test_group_owner_splits_past_the_block_limit(db_url: str, slack: SandboxUrls) -> None:
    record(db_url, [row("ana", f"a{i:02d}", group=True) for i in range(50)])
    counts, errors, _, _ = dispatch(db_url, slack)
    assert (counts.sent, errors) == (50, [])
    sizes = [len(m["metadata"]["event_payload"]["ledger_keys"]) for m in posted(slack)]
    assert sizes == [45, 5]  # GROUP_LIMIT accounts, then the rest


def test_an_unknown_group_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: P\n"
        "groups:\n"
        "  - name: G\n"
        "    rules:\n"
        "      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}\n"
        "actions:\n"
        "  - on: {status_is: At-risk}\n"
        "    do: slack\n"
        "    message: hi\n"
        "    group: team\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:10" in result.output + result.stderr
    assert "group" in result.output + result.stderr


GROUPED = """
name: Grouped health
object: companies
writeback: false
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
actions:
  - name: CSM digest
    on: {status_is: At-risk}
    do: slack
    to: owner
    group: owner
    fallback_channel: "#cs-alerts"
    message: "usage {{ account.usage }}"
"""


def grouped_seed() -> dict[str, Any]:
    """ana owns 4 companies (3 at risk), bo 3 (2 at risk), cy 2 (1), di 1 (1, no Slack)."""
    usage = {"ana": [10, 20, 30, 95], "bo": [15, 25, 90], "cy": [5, 99], "di": [12]}
    companies = [
        {
            "id": f"{100 * (i + 1) + n}",
            "properties": {
                "name": f"{owner.title()} Co {n}",
                "usage": str(value),
                "hubspot_owner_id": str(i + 1),
            },
        }
        for i, owner in enumerate(OWNERS)
        for n, value in enumerate(usage[owner])
    ]
    return {**seed(), "companies": companies}


@pytest.mark.usefixtures("prefect_harness")
def test_a_first_run_with_enroll_existing_sends_one_message_per_csm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.score_accounts import score_accounts

    path = tmp_path / "grouped.yaml"
    path.write_text(GROUPED, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with running_sandbox(grouped_seed(), slack_channel_rate=1.0) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        summary = score_accounts(
            str(path), source="sandbox", as_of=AS_OF.isoformat(), db_url=db, enroll_existing=True
        )
        assert summary["actions"]["sent"] == 3 + 2 + 1 + 1  # one ledger row per account
        by_channel = {
            m["channel_name"]: [
                k.split("|")[2] for k in m["metadata"]["event_payload"]["ledger_keys"]
            ]
            for m in posted(urls)
        }
        assert by_channel == {
            "@U00000ANA": ["100", "101", "102"],
            "@U000000BO": ["200", "201"],
            "@U000000CY": ["300"],
            "cs-alerts": ["400"],
        }
        # the same run again: every occurrence is in the ledger already, nothing is sent
        again = score_accounts(str(path), source="sandbox", as_of=AS_OF.isoformat(), db_url=db)
        assert again["actions"]["sent"] == 0 and len(posted(urls)) == 4


def test_a_cached_dm_that_slack_no_longer_knows_is_forgotten_and_looked_up_again(
    db_url: str, slack: SandboxUrls
) -> None:
    with open_store(db_url) as store:
        # last week's run cached ana's DM as a channel that is gone from the workspace now
        StoreLookupCache(store.engine).save(
            "T0SANDBOX", {("user", "ana@example.com"): "U00000ANA", ("dm", "U00000ANA"): "DGONE"}
        )
    record(db_url, [row("ana", "a1")])
    counts, errors, _, lookups = dispatch(db_url, slack, cache=True)
    assert (counts.sent, counts.failed, lookups) == (0, 1, 0)
    assert errors[0].endswith("'error': 'channel_not_found'}")
    counts, errors, _, lookups = dispatch(db_url, slack, cache=True)
    assert (counts.sent, counts.reconciled, errors) == (1, 0, [])
    assert lookups == 2  # the email and the DM, asked again
    assert [m["channel"] for m in posted(slack)] == ["D00000ANA"]


HEALTHSCORE = str(Path(sys.executable).parent / "healthscore")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(("rate", "answers"), [("1", [200, 200, 200, 429]), ("0", [200] * 4)])
def test_the_sandbox_command_sets_slacks_per_channel_limit(rate: str, answers: list[int]) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [HEALTHSCORE, "sandbox", "--port", str(port), "--slack-channel-rate", rate],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.2)
        got = []
        for i in range(4):  # one channel, at once: a burst of 3, then the limit
            response = httpx.post(
                f"http://127.0.0.1:{port}/api/chat.postMessage",
                headers={"Authorization": "Bearer xoxb-any"},
                json={"channel": "#cs-alerts", "text": f"message {i}"},
                timeout=10,
            )
            got.append(response.status_code)
        assert got == answers
        if rate == "1":
            assert response.headers["Retry-After"] == "1"
            assert response.json() == {"ok": False, "error": "ratelimited"}
    finally:
        server.terminate()
        server.wait(timeout=30)
