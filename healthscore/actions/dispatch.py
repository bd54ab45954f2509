"""Dispatching the ledger: send every row not yet sent, each at most once as far as we can tell.

The protocol, per ledger row:

1. claim: a compare-and-set from the state we read to `attempting`, attempts + 1,
   committed before any vendor call (two dispatchers cannot both claim a row);
2. if the row was attempted before (attempts > 0 when read: a crash or an error
   after which the vendor may still have accepted the call), look for our own
   earlier write first: Slack, the channel's history for a message whose
   metadata carries the ledger key; Jira, the open issue with this row's
   occurrence label or a comment with it (Jira is always searched first);
   HubSpot tasks, a task on the record with the same subject and due time;
   list membership needs nothing (adding twice is a no-op);
3. send; 4. mark `sent` with the vendor's id, or `failed` with the error and a
   backoff (`RetryPolicy`), or `dead` once the row has failed `max_attempts` times.

Batches: claims are made a batch at a time (`ActionLedger.claim_many`, one
transaction per batch) and outcomes are written a batch at a time
(`ActionLedger.record`, one transaction per `mark_size` outcomes), not two
transactions per row. A kind that sends concurrently (Slack, across channels)
gets all its due rows claimed at once, with a lease lengthened by how long its
busiest channel needs; the others are claimed `claim_size` rows at a time.
Writing outcomes later than each send only widens the window of step 4's
crash case below, which reconciliation already covers.

A process killed between 1 and 4 leaves the row `attempting` under its claim;
the next run takes it over once that process is gone or the lease expired and
treats it like a failed one (step 2 before 3). A live run's claim is left
alone (`ActionLedger.due`), so concurrent runs neither double nor reconcile early.
Only the ledger re-sends a write: the vendor clients retry reads, searches and
idempotent batch writes only (see each client's module), because a client that
re-sends a POST whose answer was lost doubles it before the ledger can look.
How each kind sends and looks for its earlier write is the kind's
(`healthscore.actions.kinds`); this module is the protocol around it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.actions.kinds import REGISTRY
from healthscore.actions.kinds.base import ActionKind, ListSync, Sent
from healthscore.errors import Unreachable
from healthscore.history.ledger import (
    ActionCounts,
    ActionLedger,
    Delivered,
    LedgerEntry,
    Refused,
    RetryPolicy,
)
from healthscore.integrations.hubspot.actions import HubSpotActions
from healthscore.integrations.jira.issues import JiraSender
from healthscore.integrations.slack.messages import SlackSender


@dataclass
class Vendors:
    """Lazily built clients: a run with only Slack actions never needs Jira credentials.

    A factory that fails (no token, a 500 from Jira's `serverInfo`) fails the
    row being sent, with the error as its `last_error`; it is not remembered,
    so the next row of that vendor builds the client again (a passing outage
    must not fail every Jira row of the run). An address where nothing answers
    (`Unreachable`: connection refused, unknown host) is remembered for the run:
    asking again would only wait for the same refusal on every row.
    """

    slack: Callable[[], SlackSender]
    jira: Callable[[], JiraSender]
    hubspot: Callable[[], HubSpotActions]
    _built: dict[str, Any] = field(default_factory=dict)
    _unreachable: dict[str, Unreachable] = field(default_factory=dict)

    def get(self, vendor: str) -> Any:
        """The client of `vendor` (an `ActionKind.vendor`: a field name of this class)."""
        if vendor in self._unreachable:
            raise self._unreachable[vendor]
        if vendor not in self._built:
            factory: Callable[[], Any] = getattr(self, vendor)
            try:
                self._built[vendor] = factory()  # raises for this row only: not remembered
            except Unreachable as exc:
                self._unreachable[vendor] = exc
                raise
        return self._built[vendor]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


CLAIM_SIZE = 50
"""Rows of a one-at-a-time kind (Jira, HubSpot tasks) claimed per transaction: few enough
that the last is sent well within the lease (50 sends of a few seconds each)."""
MARK_SIZE = 200
"""Outcomes written per transaction."""


class Dispatcher:
    """Sends the due ledger rows of one playbook and applies `sync: true` list removals.

    `after_send(entry)` runs after the vendor accepted a row and before the row is
    marked sent: the moment a crash leaves a delivered row `attempting`, which
    the crash tests use to die at the worst time. It may run on a worker thread.
    """

    def __init__(
        self,
        ledger: ActionLedger,
        vendors: Vendors,
        log: Callable[[str], None] = print,
        after_send: Callable[[LedgerEntry], None] | None = None,
        policy: RetryPolicy | None = None,
        claim_size: int = CLAIM_SIZE,
        mark_size: int = MARK_SIZE,
    ) -> None:
        self.ledger = ledger
        self.vendors = vendors
        self.log = log
        self.after_send = after_send
        self.policy = policy or RetryPolicy()
        self.claim_size = claim_size
        self.mark_size = mark_size
        self.counts = ActionCounts()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._delivered: list[Delivered] = []
        self._refused: list[Refused] = []

    def run(self, playbook: str, syncs: Sequence[ListSync] = ()) -> tuple[ActionCounts, list[str]]:
        """Send every due row of `playbook`, then the list syncs: the counts, and one line per
        failure (vendor errors never raise; a database error does)."""
        single: list[LedgerEntry] = []
        together: dict[str, list[LedgerEntry]] = {}
        batches: dict[tuple[str, Hashable], list[LedgerEntry]] = {}
        for entry in self.ledger.due(playbook):
            kind = REGISTRY.get(entry.kind)
            key = kind.batch(entry) if kind else None
            if kind is None:
                single.append(entry)
            elif key is not None:
                batches.setdefault((entry.kind, key), []).append(entry)
            elif kind.concurrent:
                together.setdefault(kind.name, []).append(entry)
            else:
                single.append(entry)
        for start in range(0, len(single), self.claim_size):
            self._singles(single[start : start + self.claim_size])
        for name, entries in together.items():
            self._together(REGISTRY[name], entries)
        for (name, key), entries in batches.items():
            self._batch(REGISTRY[name], key, entries)
        self._flush()
        for sync in syncs:
            self._sync(sync)
        return self.counts, self.errors

    # -- claims and outcomes

    def _claim(self, entries: Sequence[LedgerEntry], extra_lease: float = 0.0) -> list[LedgerEntry]:
        claimed: list[LedgerEntry] = []
        for start in range(0, len(entries), 500):
            claimed += self.ledger.claim_many(
                entries[start : start + 500], self.policy.lease_seconds + extra_lease
            )
        self.counts.skipped += len(entries) - len(claimed)
        return claimed

    def _done(
        self, entry: LedgerEntry, sent: Sent | None, error: Exception | None, what: str = ""
    ) -> None:
        """One claimed row's outcome, buffered; written every `mark_size` outcomes."""
        if error is not None or sent is None:
            self._failed(entry, what or f"{entry.action} / {entry.account_id}", error)
            return
        self._accepted(entry)
        external_id, external = sent
        with self._lock:
            self._delivered.append(Delivered(entry.id, external_id, external))
            if external.get("reconciled"):
                self.counts.reconciled += 1
                self.log(f"[{entry.action}] {entry.account_id}: already delivered ({external_id})")
            else:
                self.counts.sent += 1
            full = len(self._delivered) + len(self._refused) >= self.mark_size
        if full:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            delivered, refused = self._delivered, self._refused
            self._delivered, self._refused = [], []
            self.ledger.record(delivered, refused)

    # -- one row at a time (Jira, HubSpot tasks, unknown kinds)

    def _singles(self, entries: Sequence[LedgerEntry]) -> None:
        claimed = self._claim(entries)
        for entry in claimed:
            kind = REGISTRY.get(entry.kind)
            if kind is None:
                self._done(entry, None, ValueError(f"unknown action kind {entry.kind!r}"))
                continue
            try:
                client = self.vendors.get(kind.vendor)
            except Exception as exc:  # this row fails; the next one builds the client again
                self._done(entry, None, exc)
                continue
            kind.send_all(client, [entry], self._done)
        self._flush()

    # -- all at once (Slack: concurrent across channels)

    def _together(self, kind: ActionKind, entries: Sequence[LedgerEntry]) -> None:
        claimed = self._claim(entries, kind.lease_seconds(entries))
        if not claimed:
            return
        try:
            client = self.vendors.get(kind.vendor)
        except Exception as exc:
            for entry in claimed:
                self._done(entry, None, exc)
            return
        try:
            kind.send_all(client, claimed, self._done)
        finally:
            self._flush()
        try:
            kind.finish(client)
        except Exception as exc:  # a lookup cache not written costs lookups next run only
            self.errors.append(f"{kind.name}: keeping lookups: {_error(exc)}")

    # -- batches (HubSpot lists): one vendor call for all the due rows of a batch

    def _batch(self, kind: ActionKind, key: Hashable, entries: list[LedgerEntry]) -> None:
        claimed = self._claim(entries)
        if not claimed:
            return
        try:
            sent = kind.send_batch(self.vendors.get(kind.vendor), key, claimed)
        except Exception as exc:
            for entry in claimed:
                self._done(entry, None, exc, f"{kind.name} {key!r} / {entry.account_id}")
            return
        for entry in claimed:
            self._done(entry, sent, None)

    def _sync(self, sync: ListSync) -> None:
        kind = REGISTRY[sync.kind]
        try:
            stale = kind.remove_stale(self.vendors.get(kind.vendor), sync)
        except Exception as exc:  # retried next run: removal is recomputed from scratch
            self.errors.append(f"sync {sync.list_name!r}: {_error(exc)}")
            return
        if stale:
            self.counts.removed += len(stale)
            self.log(f"[{sync.action}] removed {len(stale)} from {sync.list_name!r}: {stale[:20]}")

    def _failed(self, entry: LedgerEntry, what: str, exc: BaseException | None) -> None:
        error = _error(exc) if exc is not None else "no answer"
        refused = self.policy.refusal(entry, error)
        with self._lock:
            self._refused.append(refused)
            if refused.dead:
                self.counts.dead += 1
                self.errors.append(f"{what}: gave up after {entry.attempts} attempts: {error}")
            else:
                self.counts.failed += 1
                self.errors.append(f"{what}: {error}")
            full = len(self._delivered) + len(self._refused) >= self.mark_size
        if full:
            self._flush()

    def _accepted(self, entry: LedgerEntry) -> None:
        if self.after_send is not None:
            self.after_send(entry)
