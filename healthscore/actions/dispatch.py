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

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.actions.kinds import REGISTRY
from healthscore.actions.kinds.base import ActionKind, ListSync
from healthscore.errors import Unreachable
from healthscore.history.ledger import DEAD, ActionLedger, LedgerEntry, RetryPolicy
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


@dataclass
class DispatchResult:
    sent: int = 0
    reconciled: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Dispatcher:
    """Sends the due ledger rows of one playbook and applies `sync: true` list removals.

    `after_send(entry)` runs after the vendor accepted a row and before the row is
    marked sent: the moment a crash leaves a delivered row `attempting`, which
    the crash tests use to die at the worst time.
    """

    def __init__(
        self,
        ledger: ActionLedger,
        vendors: Vendors,
        log: Callable[[str], None] = print,
        after_send: Callable[[LedgerEntry], None] | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.ledger = ledger
        self.vendors = vendors
        self.log = log
        self.after_send = after_send
        self.policy = policy or RetryPolicy()
        self.result = DispatchResult()

    def run(self, playbook: str, syncs: Sequence[ListSync] = ()) -> DispatchResult:
        batches: dict[tuple[str, Hashable], list[LedgerEntry]] = {}
        for entry in self.ledger.due(playbook):
            kind = REGISTRY.get(entry.kind)
            key = kind.batch(entry) if kind else None
            if key is None:
                self._one(entry, kind)
            else:
                batches.setdefault((entry.kind, key), []).append(entry)
        for (name, key), entries in batches.items():
            self._batch(REGISTRY[name], key, entries)
        for sync in syncs:
            self._sync(sync)
        return self.result

    # -- one row

    def _one(self, entry: LedgerEntry, kind: ActionKind | None) -> None:
        claimed = self.ledger.claim(entry, self.policy.lease_seconds)
        if claimed is None:
            self.result.skipped += 1
            return
        reconcile = entry.attempts > 0
        try:
            if kind is None:
                raise ValueError(f"unknown action kind {entry.kind!r}")
            external_id, external = kind.send(self.vendors.get(kind.vendor), claimed, reconcile)
        except Exception as exc:  # any failure is recorded; the row is retried after a backoff
            self._failed(claimed, f"{entry.action} / {entry.account_id}", exc)
            return
        self._accepted(claimed)
        self.ledger.mark_sent(claimed.id, external_id, external)
        if external.get("reconciled"):
            self.result.reconciled += 1
            self.log(f"[{entry.action}] {entry.account_id}: already delivered ({external_id})")
        else:
            self.result.sent += 1

    # -- batches (HubSpot lists): one vendor call for all the due rows of a batch

    def _batch(self, kind: ActionKind, key: Hashable, entries: list[LedgerEntry]) -> None:
        claims = (self.ledger.claim(e, self.policy.lease_seconds) for e in entries)
        claimed = [c for c in claims if c is not None]
        self.result.skipped += len(entries) - len(claimed)
        if not claimed:
            return
        try:
            external_id, external = kind.send_batch(self.vendors.get(kind.vendor), key, claimed)
        except Exception as exc:
            for entry in claimed:
                self._failed(entry, f"{kind.name} {key!r} / {entry.account_id}", exc)
            return
        for entry in claimed:
            self._accepted(entry)
            self.ledger.mark_sent(entry.id, external_id, external)
            self.result.sent += 1

    def _sync(self, sync: ListSync) -> None:
        kind = REGISTRY[sync.kind]
        try:
            stale = kind.remove_stale(self.vendors.get(kind.vendor), sync)
        except Exception as exc:  # retried next run: removal is recomputed from scratch
            self.result.errors.append(f"sync {sync.list_name!r}: {_error(exc)}")
            return
        if stale:
            self.result.removed += len(stale)
            self.log(f"[{sync.action}] removed {len(stale)} from {sync.list_name!r}: {stale[:20]}")

    def _failed(self, entry: LedgerEntry, what: str, exc: BaseException) -> None:
        state = self.ledger.fail(entry, _error(exc), self.policy)
        if state == DEAD:
            self.result.dead += 1
            self.result.errors.append(
                f"{what}: gave up after {entry.attempts} attempts: {_error(exc)}"
            )
        else:
            self.result.failed += 1
            self.result.errors.append(f"{what}: {_error(exc)}")

    def _accepted(self, entry: LedgerEntry) -> None:
        if self.after_send is not None:
            self.after_send(entry)
