"""`do: hubspot_list`: add the account to a HubSpot list (created if missing).

Adding a member twice is a no-op, so there is nothing to reconcile; the due rows
of one list go in one membership call. With `sync: true` the list is kept in
step: every member that no longer qualifies (its trigger does not hold now) is
removed after the run.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, cast

from healthscore.actions.kinds.base import ActionKind, ListSync, Occurrence, Sent
from healthscore.core.playbook import Action
from healthscore.history.ledger import LedgerEntry
from healthscore.integrations.hubspot.actions import HubSpotActions


class HubSpotList(ActionKind):
    name = "hubspot_list"
    vendor = "hubspot"
    verb = "add the account to HubSpot list"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "list": {"type": "string", "description": "HubSpot list name (created if missing)."},
            "sync": {
                "type": "boolean",
                "default": False,
                "description": "Remove accounts that no longer qualify.",
            },
        },
        "required": ["list"],
    }

    def render(self, occurrence: Occurrence) -> tuple[dict[str, Any], str]:
        options = occurrence.action.options
        payload = {
            "list": str(options["list"]),
            "object_type_id": occurrence.object_type_id,
            "sync": bool(options.get("sync")),
        }
        return payload, f"'{options['list']}'"

    def batch(self, entry: LedgerEntry) -> Hashable:
        return (str(entry.payload["list"]), str(entry.payload["object_type_id"]))

    def send_batch(
        self, client: HubSpotActions, key: Hashable, entries: Sequence[LedgerEntry]
    ) -> Sent:
        name, object_type_id = cast(tuple[str, str], key)
        list_id = client.list_id(name, object_type_id, create=True)
        assert list_id is not None  # created when missing
        client.add_members(list_id, [entry.account_id for entry in entries])
        return f"list {list_id}", {"list_id": list_id}

    def synced_list(self, action: Action) -> str | None:
        return str(action.options["list"]) if action.options.get("sync") else None

    def remove_stale(self, client: HubSpotActions, sync: ListSync) -> list[str]:
        list_id = client.list_id(sync.list_name, sync.object_type_id, create=False)
        if list_id is None:
            return []
        stale = [m for m in client.members(list_id) if m not in sync.qualifying]
        if stale:
            client.remove_members(list_id, stale)
        return stale
