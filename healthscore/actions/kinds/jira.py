"""`do: jira`: an issue in a project, or a comment on the open issue of the same alert.

Reconciling is Jira's own: `JiraSender.send` always searches first, for the
open issue carrying this row's occurrence label or a comment with it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from healthscore.actions.escape import jira_wiki, plain
from healthscore.actions.kinds.base import ActionKind, Occurrence, Sent, template
from healthscore.actions.messages import (
    account_label,
    jira_breakdown,
    label_slug,
    occurrence_label,
    rule_label,
)
from healthscore.core.text import JIRA_SUMMARY_LIMIT, JIRA_TEXT_LIMIT, cap
from healthscore.history.ledger import LedgerEntry
from healthscore.integrations.jira.issues import JiraSender


class Jira(ActionKind):
    name = "jira"
    vendor = "jira"
    verb = "open (or comment on) a Jira issue in"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "project": {"type": "string", "description": "Jira project key."},
            "issue_type": {"type": "string", "default": "Task", "description": "Issue type."},
            "summary": template("Jinja template of the Jira summary."),
            "description": template("Jinja template of the body."),
            "labels": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Labels added to the issue.",
            },
        },
        "required": ["project", "summary"],
    }

    def render(self, occurrence: Occurrence) -> tuple[dict[str, Any], str]:
        options, score, comparison = (
            occurrence.action.options,
            occurrence.score,
            occurrence.comparison,
        )
        summary = occurrence.render("summary", "plain")
        intro = occurrence.render("description", "jira") if options.get("description") else ""
        reason = occurrence.firing.reason
        payload = {
            "project": str(options["project"]),
            "issue_type": str(options.get("issue_type") or "Task"),
            "summary": cap(plain(summary), JIRA_SUMMARY_LIMIT),
            "description": cap(
                jira_breakdown(
                    intro=intro,
                    score=comparison.rounded,
                    status=score.status,
                    previous_status=comparison.previous_status,
                    delta=comparison.delta,
                    trend=comparison.trend,
                    reason=reason,
                    rules=score.rule_points(),
                    groups=score.group_points(),
                    url=occurrence.url,
                ),
                JIRA_TEXT_LIMIT,
            ),
            "comment": cap(
                f"Health score alert again: {jira_wiki(reason)} (score "
                f"{comparison.rounded:g}, status {jira_wiki(score.status)}, {occurrence.url})",
                JIRA_TEXT_LIMIT,
            ),
            "labels": [label_slug(str(label)) for label in options.get("labels") or []],
            "account_label": account_label(score.id),
            "rule_label": rule_label(occurrence.playbook.name, occurrence.action.name),
            "occurrence_label": occurrence_label(occurrence.key),
        }
        return payload, f"project {options['project']}"

    def send(self, client: JiraSender, entry: LedgerEntry, reconcile: bool) -> Sent:
        return client.send(entry.payload)
