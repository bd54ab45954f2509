"""Planning: which actions are due this run, for whom, why, and exactly what they will send.

Pure: the run's comparisons, the CRM snapshot (owners, properties) and the
trigger history in, `PendingAction`s out. Everything a vendor will receive is
rendered here, at plan time, and stored in the ledger row: a retry next week
sends the message of the occurrence it belongs to, not a re-render with next
week's numbers, and a dry run prints exactly what a real run would send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from healthscore.actions.context import group_drops, record_url, status_chip, template_context
from healthscore.actions.escape import escaper, html_text, jira_wiki, plain
from healthscore.actions.messages import (
    account_label,
    jira_breakdown,
    label_slug,
    occurrence_label,
    rule_label,
    slack_blocks,
)
from healthscore.core.conditions import compile_all
from healthscore.core.crm import OBJECT_TYPE_IDS, CrmSnapshot, Owner
from healthscore.core.playbook import Action, Playbook
from healthscore.core.templates import render
from healthscore.core.trends import Comparison
from healthscore.core.triggers import Firing, TriggerHistory, fire, holds_now
from healthscore.errors import UserError
from healthscore.history.ledger import PendingAction, ledger_key

DEFAULT_TASK_DUE_DAYS = 3


class ActionRenderError(UserError):
    """A template that parsed at validation time but failed on this account's values."""


@dataclass(frozen=True)
class ListSync:
    """A `sync: true` list: who qualifies now; every other member is removed."""

    action: str
    list_name: str
    object_type_id: str
    qualifying: frozenset[str]


@dataclass
class ActionPlan:
    """The due actions of a run, the list syncs, and templates that failed to render."""

    playbook: str
    due: list[PendingAction] = field(default_factory=list)
    syncs: list[ListSync] = field(default_factory=list)
    render_errors: list[str] = field(default_factory=list)

    def keys(self) -> list[tuple[str, str, str]]:
        return [(a.action, a.account_id, a.occurrence) for a in self.due]


def describe(action: PendingAction, state: str | None = None) -> str:
    """One line for a dry run or a log: what, to whom, for which account, and why."""
    verb = {
        "slack": "send a Slack message to",
        "jira": "open (or comment on) a Jira issue in",
        "hubspot_list": "add the account to HubSpot list",
        "hubspot_task": "create a HubSpot task for",
    }.get(action.kind, action.kind)
    name = action.payload.get("account_name", "")
    line = (
        f"[{action.action}] would {verb} {action.target} for {name} ({action.account_id}): "
        f"{action.reason} [occurrence {action.occurrence}]"
    )
    if state == "sent":
        return line + " -- already sent, nothing to do"
    if state is not None:
        return line + f" -- already recorded ({state}), would retry"
    return line


def _render(source: str, context: dict[str, Any], what: str) -> str:
    try:
        return render(source, context)
    except TemplateError as exc:
        raise ActionRenderError(f"{what}: {exc}") from None


def plan_actions(
    playbook: Playbook,
    comparisons: Sequence[Comparison],
    snapshot: CrmSnapshot,
    history: TriggerHistory,
    as_of: datetime,
    portal_id: str,
) -> ActionPlan:
    """Evaluate every action's trigger and `where` for every account; render the due ones."""
    plan = ActionPlan(playbook.name)
    owners = snapshot.owner_by_id()
    moment = as_of.timestamp()
    for action in playbook.actions:
        where = compile_all([c.as_tuple() for c in action.where])
        qualifying: set[str] = set()
        for comparison in comparisons:
            score = comparison.score
            if not where(score.properties, moment):
                continue
            if action.do == "hubspot_list" and holds_now(
                action.trigger, score.id, comparison.rounded, score.status, history
            ):
                qualifying.add(score.id)
            firing = fire(
                action.trigger,
                account_id=score.id,
                score=comparison.rounded,
                status=score.status,
                as_of=as_of,
                history=history,
            )
            if firing is None:
                continue
            owner = owners.get(score.owner_id or "")
            try:
                plan.due.append(
                    _pending(playbook, action, comparison, firing, owner, history, as_of, portal_id)
                )
            except ActionRenderError as exc:
                plan.render_errors.append(f"{action.name} / {score.id}: {exc}")
        if action.do == "hubspot_list" and action.options.get("sync"):
            plan.syncs.append(
                ListSync(
                    action.name,
                    str(action.options["list"]),
                    OBJECT_TYPE_IDS[playbook.object],
                    frozenset(qualifying),
                )
            )
    return plan


def _pending(
    playbook: Playbook,
    action: Action,
    comparison: Comparison,
    firing: Firing,
    owner: Owner | None,
    history: TriggerHistory,
    as_of: datetime,
    portal_id: str,
) -> PendingAction:
    score = comparison.score
    url = record_url(portal_id, playbook.object, score.id)
    payload: dict[str, Any] = {"account_name": plain(score.name), "url": url}
    kind = action.do

    def context(target: str) -> dict[str, Any]:
        return template_context(
            comparison,
            owner=owner,
            playbook=playbook.name,
            action=action.name,
            url=url,
            escape=escaper(target),
        )

    options = action.options
    if kind == "slack":
        text = _render(str(options["message"]), context("slack"), "message")
        prior = history.prior.get(score.id)
        drops = group_drops(score.group_points(), prior.groups if prior else {})
        to = str(options.get("to") or "owner")
        fallback = options.get("fallback_channel")
        payload |= {
            "to": to,
            "owner_email": owner.email if owner else None,
            "fallback_channel": str(fallback) if fallback else None,
            "text": text,
            "blocks": slack_blocks(
                account_name=score.name,
                text=text,
                score=comparison.rounded,
                delta=comparison.delta,
                status=score.status,
                chip=status_chip(score.color),
                trend=comparison.trend,
                arrow=comparison.arrow,
                previous_status=comparison.previous_status,
                drops=drops,
                url=url,
            ),
        }
        if to == "owner":
            target = f"owner {owner.email if owner and owner.email else '(no email)'}"
            if fallback:
                target += f" (else {fallback})"
        else:
            target = to
    elif kind == "jira":
        summary = _render(str(options["summary"]), context("plain"), "summary")
        intro = ""
        if options.get("description"):
            intro = _render(str(options["description"]), context("jira"), "description")
        key = ledger_key(playbook.name, action.name, score.id, firing.occurrence)
        labels = [label_slug(str(label)) for label in options.get("labels") or []]
        payload |= {
            "project": str(options["project"]),
            "issue_type": str(options.get("issue_type") or "Task"),
            "summary": plain(summary)[:255],
            "description": jira_breakdown(
                intro=intro,
                score=comparison.rounded,
                status=score.status,
                previous_status=comparison.previous_status,
                delta=comparison.delta,
                trend=comparison.trend,
                reason=firing.reason,
                rules=score.rule_points(),
                groups=score.group_points(),
                url=url,
            ),
            "comment": (
                f"Health score alert again: {jira_wiki(firing.reason)} (score "
                f"{comparison.rounded:g}, status {jira_wiki(score.status)}, {url})"
            ),
            "labels": labels,
            "account_label": account_label(score.id),
            "rule_label": rule_label(playbook.name, action.name),
            "occurrence_label": occurrence_label(key),
        }
        target = f"project {options['project']}"
    elif kind == "hubspot_list":
        payload |= {
            "list": str(options["list"]),
            "object_type_id": OBJECT_TYPE_IDS[playbook.object],
            "sync": bool(options.get("sync")),
        }
        target = f"'{options['list']}'"
    elif kind == "hubspot_task":
        subject = _render(str(options["subject"]), context("plain"), "subject")
        body = ""
        if options.get("description"):
            body = _render(str(options["description"]), context("html"), "description")
        due_days = float(options.get("due_in_days") or DEFAULT_TASK_DUE_DAYS)
        due = as_of + timedelta(days=due_days)
        payload |= {
            "subject": plain(subject)[:255],
            "body": body or html_text(firing.reason),
            "owner_id": score.owner_id,
            "due_ms": int(due.timestamp() * 1000),
            "priority": str(options.get("priority") or "MEDIUM").upper(),
            "object_type": playbook.object,
        }
        target = f"owner {owner.display_name if owner else score.owner_id or '(none)'}"
    else:  # pragma: no cover - validation allows only the four kinds
        raise ActionRenderError(f"unknown action kind {kind!r}")
    return PendingAction(
        playbook=playbook.name,
        action=action.name,
        kind=kind,
        account_id=score.id,
        occurrence=firing.occurrence,
        as_of=as_of,
        reason=firing.reason,
        target=target,
        payload=payload,
    )


def window_days(playbook: Playbook) -> tuple[list[float], list[float]]:
    """The distinct windows of the drop and of the rise triggers: one history query each."""
    drops = sorted(
        {
            float(a.trigger.within_days or 0)
            for a in playbook.actions
            if a.trigger.kind == "score_dropped_by"
        }
    )
    rises = sorted(
        {
            float(a.trigger.within_days or 0)
            for a in playbook.actions
            if a.trigger.kind == "score_rose_by"
        }
    )
    return drops, rises


def recorded_states(
    plan: ActionPlan, recorded: Mapping[tuple[str, str, str], str]
) -> list[tuple[PendingAction, str | None]]:
    """Each due action with the state of its ledger row, if one exists already."""
    return [(a, recorded.get((a.action, a.account_id, a.occurrence))) for a in plan.due]
