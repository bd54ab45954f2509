"""`do: hubspot_task`: a task for the account owner, on the record, due in N days.

Reconciling: a task on the record with the same subject and due time is ours.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from healthscore.actions.escape import html_text, plain
from healthscore.actions.kinds.base import ActionKind, Occurrence, Sent, template
from healthscore.core.text import HUBSPOT_TASK_BODY_LIMIT, HUBSPOT_TASK_SUBJECT_LIMIT, cap
from healthscore.history.ledger import LedgerEntry
from healthscore.integrations.hubspot.actions import HubSpotActions

DEFAULT_TASK_DUE_DAYS = 3


class HubSpotTask(ActionKind):
    name = "hubspot_task"
    vendor = "hubspot"
    verb = "create a HubSpot task for"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "subject": template("Jinja template of the task subject."),
            "description": template("Jinja template of the body."),
            "due_in_days": {
                "type": "number",
                "minimum": 0,
                "description": f"Days to the due date (default {DEFAULT_TASK_DUE_DAYS}).",
            },
            "priority": {"enum": ["LOW", "MEDIUM", "HIGH"], "description": "Default MEDIUM."},
        },
        "required": ["subject"],
    }

    def render(self, occurrence: Occurrence) -> tuple[dict[str, Any], str]:
        options, score, owner = occurrence.action.options, occurrence.score, occurrence.owner
        subject = occurrence.render("subject", "plain")
        body = occurrence.render("description", "html") if options.get("description") else ""
        due_days = float(options.get("due_in_days") or DEFAULT_TASK_DUE_DAYS)
        due = occurrence.as_of + timedelta(days=due_days)
        payload = {
            "subject": cap(plain(subject), HUBSPOT_TASK_SUBJECT_LIMIT),
            "body": cap(body or html_text(occurrence.firing.reason), HUBSPOT_TASK_BODY_LIMIT),
            "owner_id": score.owner_id,
            "due_ms": int(due.timestamp() * 1000),
            "priority": str(options.get("priority") or "MEDIUM").upper(),
            "object_type": occurrence.playbook.object,
        }
        return payload, f"owner {owner.display_name if owner else score.owner_id or '(none)'}"

    def send(self, client: HubSpotActions, entry: LedgerEntry, reconcile: bool) -> Sent:
        if reconcile:
            found = client.find_task(entry.payload, entry.account_id)
            if found is not None:
                return f"task {found}", {"task": found, "reconciled": True}
        task = client.create_task(entry.payload, entry.account_id)
        return f"task {task}", {"task": task}
