"""The action ledger on SQLite and PostgreSQL: outbox insert, dedupe, claim, states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from healthscore.history import RunInfo, open_store
from healthscore.history.ledger import (
    ActionLedger,
    Delivered,
    LedgerError,
    PendingAction,
    Refused,
)

AS_OF = datetime(2026, 3, 1, 9, tzinfo=UTC)


def due(account: str, occurrence: str = "2026-03-01T09:00:00+00:00") -> PendingAction:
    return PendingAction(
        playbook="P",
        action="Alert",
        kind="slack",
        account_id=account,
        occurrence=occurrence,
        as_of=AS_OF,
        reason="status changed",
        target="#cs-alerts",
        payload={"text": "hi"},
    )


def run() -> RunInfo:
    return RunInfo("P", "hash", AS_OF, "sandbox", AS_OF)


def test_pending_rows_ride_in_the_run_transaction_and_dedupe(db_url: str) -> None:
    with open_store(db_url) as store:
        ledger = ActionLedger(store.engine)
        first = store.record_run(run(), [], actions=[due("1"), due("2")])
        store.record_run(run(), [], actions=[due("1"), due("2"), due("2", "later")])
        rows = ledger.due("P")
        assert [(r.account_id, r.occurrence, r.state, r.run_id) for r in rows] == [
            ("1", "2026-03-01T09:00:00+00:00", "pending", first),
            ("2", "2026-03-01T09:00:00+00:00", "pending", first),
            ("2", "later", "pending", first + 1),
        ]
        recorded = ledger.recorded(
            "P", [("Alert", "1", "2026-03-01T09:00:00+00:00"), ("Alert", "9", "x")]
        )
        assert recorded == {("Alert", "1", "2026-03-01T09:00:00+00:00"): "pending"}


def test_a_failed_store_records_neither_the_run_nor_its_actions(db_url: str) -> None:
    broken = PendingAction(**{**due("2").__dict__, "payload": {"x": object()}})
    with open_store(db_url) as store:
        with pytest.raises(
            (TypeError, sa_exc.StatementError)
        ):  # unwritable payload: all is rolled back
            store.record_run(run(), [], actions=[due("1"), broken])
        assert store.runs() == []
        assert ActionLedger(store.engine).due("P") == []


def test_claim_is_compare_and_set_and_states_move(db_url: str) -> None:
    with open_store(db_url) as store:
        ledger = ActionLedger(store.engine)
        store.record_run(run(), [], actions=[due("1")])
        (row,) = ledger.due("P")
        claimed = ledger.claim(row)
        assert claimed is not None and (claimed.state, claimed.attempts) == ("attempting", 1)
        assert ledger.claim(row) is None  # a second dispatcher read the same row: loses
        ledger.mark_failed(row.id, "ConnectionError: boom")
        (failed,) = ledger.due("P")
        assert (failed.state, failed.attempts, failed.last_error) == (
            "failed",
            1,
            "ConnectionError: boom",
        )
        again = ledger.claim(failed)
        assert again is not None and again.attempts == 2
        ledger.mark_sent(row.id, "C1/1.0", {"channel": "C1", "ts": "1.0"})
        assert ledger.due("P") == []
        (sent,) = ledger.entries(state="sent")
        assert (sent.external_id, sent.external, sent.last_error) == (
            "C1/1.0",
            {"channel": "C1", "ts": "1.0"},
            None,
        )
        assert sent.sent_at is not None
        with pytest.raises(LedgerError):
            ledger.entries(state="lost")


def test_claim_many_is_one_compare_and_set_per_batch(db_url: str) -> None:
    with open_store(db_url) as store:
        ledger = ActionLedger(store.engine)
        store.record_run(run(), [], actions=[due(str(i)) for i in range(1, 6)])
        mine, theirs = ledger.due("P"), ledger.due("P")  # two dispatchers read the same rows
        ledger.mark_failed(mine[1].id, "ConnectionError: boom")  # row 2 moved since the read
        commits: list[int] = []
        sa.event.listen(store.engine, "commit", lambda _: commits.append(1))
        won = ledger.claim_many(mine)
        assert [r.account_id for r in won] == ["1", "3", "4", "5"] and commits == [1]
        assert {(r.state, r.attempts) for r in won} == {("attempting", 1)}
        assert ledger.claim_many(theirs) == []  # every row changed since their read
        ledger.record(
            [Delivered(won[0].id, "C1/1.0", {"ts": "1.0"})],
            [Refused(won[1].id, "SlackApiError: ratelimited", dead=True)],
        )
        states = {r.account_id: r.state for r in ledger.entries(limit=10)}
        assert states == {
            "1": "sent",
            "2": "failed",
            "3": "dead",
            "4": "attempting",
            "5": "attempting",
        }
        with pytest.raises(LedgerError, match="no ledger row with id 999"):
            ledger.record([Delivered(won[2].id, "C1/2.0", None), Delivered(999, "x", None)], [])
        (four,) = ledger.entries(account_id="4")
        assert four.state == "attempting"  # the batch with an unknown row wrote nothing
