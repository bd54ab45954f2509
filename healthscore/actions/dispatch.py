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
treats it like a failed one (step 2 before 3).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.actions.plan import ListSync
from healthscore.history.ledger import ActionLedger, LedgerEntry
from healthscore.integrations.hubspot.actions import HubSpotActions
from healthscore.integrations.jira.issues import JiraSender
from healthscore.integrations.slack.messages import SlackSender

KILL_AFTER_ENV = "HEALTHSCORE_TEST_KILL_AFTER_SENT"
"""Test hook: an integer N. After the Nth vendor call that succeeded, and before its
ledger row is marked sent, the process SIGKILLs itself (the worst moment to die)."""


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

    def get(self, kind: str) -> Any:
        if kind not in self._built:
            factory = {"slack": self.slack, "jira": self.jira, "hubspot": self.hubspot}[kind]
            try:
                self._built[kind] = factory()
            except Exception as exc:  # remembered: every row of this kind fails the same way
                self._built[kind] = exc
        built = self._built[kind]
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
    """Sends the due ledger rows of one playbook and applies `sync: true` list removals."""

    def __init__(
        self, ledger: ActionLedger, vendors: Vendors, log: Callable[[str], None] = print
    ) -> None:
        self.ledger = ledger
        self.vendors = vendors
        self.log = log
        self.result = DispatchResult()
        self._accepted = 0
        self._kill_after = int(os.environ.get(KILL_AFTER_ENV) or 0)

    def run(self, playbook: str, syncs: Sequence[ListSync] = ()) -> DispatchResult:
        due = self.ledger.due(playbook)
        lists: dict[tuple[str, str], list[LedgerEntry]] = {}
        for entry in due:
            if entry.kind == "hubspot_list":
                key = (str(entry.payload["list"]), str(entry.payload["object_type_id"]))
                lists.setdefault(key, []).append(entry)
            else:
                self._one(entry)
        for (name, object_type_id), entries in lists.items():
            self._list_batch(name, object_type_id, entries)
        for sync in syncs:
            self._sync(sync)
        return self.result

    # -- one row

    def _one(self, entry: LedgerEntry) -> None:
        claimed = self.ledger.claim(entry)
        if claimed is None:
            self.result.skipped += 1
            return
        reconcile = entry.attempts > 0
        try:
            external_id, external = self._send(claimed, reconcile)
        except Exception as exc:  # any failure is recorded; the row is retried next run
            self.ledger.mark_failed(claimed.id, _error(exc))
            self.result.failed += 1
            self.result.errors.append(f"{entry.action} / {entry.account_id}: {_error(exc)}")
            return
        self._vendor_accepted()
        self.ledger.mark_sent(claimed.id, external_id, external)
        if external.get("reconciled"):
            self.result.reconciled += 1
            self.log(f"[{entry.action}] {entry.account_id}: already delivered ({external_id})")
        else:
            self.result.sent += 1

    def _send(self, entry: LedgerEntry, reconcile: bool) -> tuple[str, dict[str, Any]]:
        payload = entry.payload
        if entry.kind == "slack":
            slack: SlackSender = self.vendors.get("slack")
            channel, where = slack.resolve(payload)
            if reconcile:
                ts = slack.find_sent(channel, entry.key, entry.created_at)
                if ts is not None:
                    return f"{channel}/{ts}", {
                        "channel": channel,
                        "ts": ts,
                        "where": where,
                        "reconciled": True,
                    }
            ts = slack.post(channel, payload, entry.key)
            return f"{channel}/{ts}", {"channel": channel, "ts": ts, "where": where}
        if entry.kind == "jira":
            jira: JiraSender = self.vendors.get("jira")
            return jira.send(payload)
        if entry.kind == "hubspot_task":
            hubspot: HubSpotActions = self.vendors.get("hubspot")
            if reconcile:
                found = hubspot.find_task(payload, entry.account_id)
                if found is not None:
                    return f"task {found}", {"task": found, "reconciled": True}
            task = hubspot.create_task(payload, entry.account_id)
            return f"task {task}", {"task": task}
        raise ValueError(f"unknown action kind {entry.kind!r}")

    # -- lists: one membership call per list for all its due rows

    def _list_batch(self, name: str, object_type_id: str, entries: list[LedgerEntry]) -> None:
        claimed = [c for c in (self.ledger.claim(e) for e in entries) if c is not None]
        self.result.skipped += len(entries) - len(claimed)
        if not claimed:
            return
        try:
            hubspot: HubSpotActions = self.vendors.get("hubspot")
            list_id = hubspot.list_id(name, object_type_id, create=True)
            assert list_id is not None  # created when missing
            hubspot.add_members(list_id, [c.account_id for c in claimed])
        except Exception as exc:
            for entry in claimed:
                self.ledger.mark_failed(entry.id, _error(exc))
            self.result.failed += len(claimed)
            self.result.errors.append(f"list {name!r}: {_error(exc)}")
            return
        for entry in claimed:
            self._vendor_accepted()
            self.ledger.mark_sent(entry.id, f"list {list_id}", {"list_id": list_id})
            self.result.sent += 1

    def _sync(self, sync: ListSync) -> None:
        try:
            hubspot: HubSpotActions = self.vendors.get("hubspot")
            list_id = hubspot.list_id(sync.list_name, sync.object_type_id, create=False)
            if list_id is None:
                return
            stale = [m for m in hubspot.members(list_id) if m not in sync.qualifying]
            if stale:
                hubspot.remove_members(list_id, stale)
                self.result.removed += len(stale)
                self.log(
                    f"[{sync.action}] removed {len(stale)} from {sync.list_name!r}: {stale[:20]}"
                )
        except Exception as exc:  # retried next run: removal is recomputed from scratch
            self.result.errors.append(f"sync {sync.list_name!r}: {_error(exc)}")

    def _vendor_accepted(self) -> None:
        self._accepted += 1
        if self._kill_after and self._accepted >= self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
