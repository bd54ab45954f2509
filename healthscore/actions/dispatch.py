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
3. send; 4. mark `sent` with the vendor's id, or `failed` with the error.

A process killed between 1 and 4 leaves the row `attempting`; the next run
treats it like a failed one (step 2 before 3). How each kind sends and looks for
its earlier write is the kind's (`healthscore.actions.kinds`); this module is
the protocol around it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.actions.kinds import REGISTRY
from healthscore.actions.kinds.base import ActionKind, ListSync
from healthscore.history.ledger import ActionLedger, LedgerEntry
from healthscore.integrations.hubspot.actions import HubSpotActions
from healthscore.integrations.jira.issues import JiraSender
from healthscore.integrations.slack.messages import SlackSender


@dataclass
class Vendors:
    """Lazily built clients: a run with only Slack actions never needs Jira credentials.

    A factory that fails (no token) fails every row of that kind for this run,
    with the configuration error as the row's `last_error`.
    """

    slack: Callable[[], SlackSender]
    jira: Callable[[], JiraSender]
    hubspot: Callable[[], HubSpotActions]
    _built: dict[str, Any] = field(default_factory=dict)

    def get(self, vendor: str) -> Any:
        """The client of `vendor` (an `ActionKind.vendor`: a field name of this class)."""
        if vendor not in self._built:
            factory: Callable[[], Any] = getattr(self, vendor)
            try:
                self._built[vendor] = factory()
            except Exception as exc:  # remembered: every row of this vendor fails the same way
                self._built[vendor] = exc
        built = self._built[vendor]
        if isinstance(built, Exception):
            raise built
        return built


@dataclass
class DispatchResult:
    sent: int = 0
    reconciled: int = 0
    failed: int = 0
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
    ) -> None:
        self.ledger = ledger
        self.vendors = vendors
        self.log = log
        self.after_send = after_send
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
        claimed = self.ledger.claim(entry)
        if claimed is None:
            self.result.skipped += 1
            return
        reconcile = entry.attempts > 0
        try:
            if kind is None:
                raise ValueError(f"unknown action kind {entry.kind!r}")
            external_id, external = kind.send(self.vendors.get(kind.vendor), claimed, reconcile)
        except Exception as exc:  # any failure is recorded; the row is retried next run
            self.ledger.mark_failed(claimed.id, _error(exc))
            self.result.failed += 1
            self.result.errors.append(f"{entry.action} / {entry.account_id}: {_error(exc)}")
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
        claimed = [c for c in (self.ledger.claim(e) for e in entries) if c is not None]
        self.result.skipped += len(entries) - len(claimed)
        if not claimed:
            return
        try:
            external_id, external = kind.send_batch(self.vendors.get(kind.vendor), key, claimed)
        except Exception as exc:
            for entry in claimed:
                self.ledger.mark_failed(entry.id, _error(exc))
            self.result.failed += len(claimed)
            self.result.errors.append(f"{kind.name} {key!r}: {_error(exc)}")
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

    def _accepted(self, entry: LedgerEntry) -> None:
        if self.after_send is not None:
            self.after_send(entry)
