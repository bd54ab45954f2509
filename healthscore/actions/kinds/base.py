"""What an action kind is: its keys' schema, how it renders, how it sends and reconciles.

One module per kind (`slack.py`, `jira.py`, ...) subclasses `ActionKind`; the
registry in `__init__` is the only list of them. The core validates a playbook
against each kind's `schema` (pure JSON Schema data), the planner calls
`render`, the dispatcher `send` (or `send_batch`) with the vendor client named
by `vendor`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from jinja2 import TemplateError

from healthscore.actions.context import template_context
from healthscore.actions.escape import Target, escaper
from healthscore.core.crm import Owner
from healthscore.core.playbook import Action, Playbook
from healthscore.core.schema import TEMPLATE_FORMAT
from healthscore.core.scoring import AccountScore
from healthscore.core.templates import render
from healthscore.core.trends import Comparison
from healthscore.core.triggers import Firing, TriggerHistory
from healthscore.errors import UserError
from healthscore.history.ledger import LedgerEntry, ledger_key

Sent = tuple[str, dict[str, Any]]
"""What a vendor call leaves on the ledger row: (external id, details); details carry
`"reconciled": True` when an earlier attempt's write was found instead of sending."""

Done = Callable[["LedgerEntry", "Sent | None", "Exception | None"], None]
"""done(row, sent, error): the outcome of one claimed row (`error` None when delivered)."""


class ActionRenderError(UserError):
    """A template that parsed at validation time but failed on this account's values."""


def template(description: str) -> dict[str, Any]:
    """The schema of an option that is a Jinja template (checked when the playbook loads)."""
    return {"type": "string", "format": TEMPLATE_FORMAT, "description": description}


@dataclass(frozen=True)
class ListSync:
    """A kind's membership kept in step: who qualifies now; every other member is removed."""

    kind: str
    action: str
    list_name: str
    object_type_id: str
    qualifying: frozenset[str]


@dataclass(frozen=True)
class Occurrence:
    """One due action for one account: everything a kind renders its payload from."""

    playbook: Playbook
    action: Action
    comparison: Comparison
    firing: Firing
    owner: Owner | None
    history: TriggerHistory
    as_of: datetime
    url: str
    object_type_id: str  # HubSpot's id of the scored object type (`0-2`, `2-1234567`)

    @property
    def score(self) -> AccountScore:
        return self.comparison.score

    @property
    def key(self) -> str:
        """The ledger's idempotency key of this occurrence."""
        return ledger_key(
            self.playbook.name, self.action.name, self.score.id, self.firing.occurrence
        )

    def render(self, option: str, target: Target) -> str:
        """The action's template `option`, with CRM text escaped for `target`."""
        context = template_context(
            self.comparison,
            owner=self.owner,
            playbook=self.playbook.name,
            action=self.action.name,
            url=self.url,
            escape=escaper(target),
        )
        try:
            return render(str(self.action.options[option]), context)
        except TemplateError as exc:
            raise ActionRenderError(f"{option}: {exc}") from None


class ActionKind:
    """One `do:` kind. Subclasses set the class attributes and `render` and `send`."""

    name: ClassVar[str]
    """The `do:` value."""
    vendor: ClassVar[str]
    """The `Vendors` factory its client comes from: slack, jira or hubspot."""
    verb: ClassVar[str]
    """A dry run's "would <verb> <target>"."""
    schema: ClassVar[dict[str, Any]]
    """JSON Schema of its own keys: `properties` (with `default`s) and `required`."""

    def render(self, occurrence: Occurrence) -> tuple[dict[str, Any], str]:
        """The payload keys this kind sends, and the target named in logs."""
        raise NotImplementedError

    def send(self, client: Any, entry: LedgerEntry, reconcile: bool) -> Sent:
        """Deliver one ledger row. With `reconcile` (an earlier attempt may have
        reached the vendor) first look for that write and return it, marked."""
        raise NotImplementedError

    def send_all(self, client: Any, entries: Sequence[LedgerEntry], done: Done) -> None:
        """Deliver claimed rows, calling `done` once for each. The default sends them one by
        one with `send`, reconciling a row attempted before (attempts > 1 once claimed);
        a kind that can send concurrently (Slack) overrides it and sets `concurrent`."""
        for entry in entries:
            try:
                sent = self.send(client, entry, entry.attempts > 1)
            except Exception as exc:  # recorded on the row by the dispatcher
                done(entry, None, exc)
                continue
            done(entry, sent, None)

    concurrent: ClassVar[bool] = False
    """True: the dispatcher claims all the kind's due rows and hands them to `send_all` at
    once; False: a few at a time (`Dispatcher.claim_size`), so no claim outlives its lease."""

    def lease_seconds(self, entries: Sequence[LedgerEntry]) -> float:
        """How much longer than one send `send_all` of these rows may take (added to the lease)."""
        return 0.0

    def finish(self, client: Any) -> None:
        """After `send_all`: keep what the client learned (the Slack lookup cache)."""

    def batch(self, entry: LedgerEntry) -> Hashable | None:
        """Rows with the same non-None key go to the vendor in one `send_batch` call."""
        return None

    def send_batch(self, client: Any, key: Hashable, entries: Sequence[LedgerEntry]) -> Sent:
        """Deliver the rows of one batch together (one call); what each row records."""
        raise NotImplementedError

    def synced_list(self, action: Action) -> str | None:
        """The membership this action keeps in step with who qualifies, if any."""
        return None

    def remove_stale(self, client: Any, sync: ListSync) -> list[str]:
        """Remove the members that no longer qualify; returns them."""
        raise NotImplementedError
