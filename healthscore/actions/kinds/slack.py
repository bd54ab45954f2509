"""`do: slack`: a message to the account owner (by email), a #channel or a user id.

Reconciling: the message carries the ledger key in its metadata, so after a
crash the channel's history since the row was created says whether it arrived.
"""

from __future__ import annotations

from typing import Any, ClassVar

from healthscore.actions.context import group_drops, status_chip
from healthscore.actions.escape import plain
from healthscore.actions.kinds.base import ActionKind, Occurrence, Sent, template
from healthscore.actions.messages import slack_blocks
from healthscore.core.text import SLACK_TEXT_LIMIT, cap
from healthscore.history.ledger import LedgerEntry
from healthscore.integrations.slack.messages import SlackSender


class Slack(ActionKind):
    name = "slack"
    vendor = "slack"
    verb = "send a Slack message to"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "to": {
                "type": "string",
                "default": "owner",
                "description": "`owner` (the account owner by email), a #channel or a user id.",
            },
            "fallback_channel": {
                "type": "string",
                "description": "Where an owner's message goes when the owner has no Slack user.",
            },
            "message": template("Jinja template of the Slack text."),
        },
        "required": ["message"],
    }

    def render(self, occurrence: Occurrence) -> tuple[dict[str, Any], str]:
        options, score, comparison = (
            occurrence.action.options,
            occurrence.score,
            occurrence.comparison,
        )
        owner = occurrence.owner
        text = occurrence.render("message", "slack")
        prior = occurrence.history.prior.get(score.id)
        drops = group_drops(score.group_points(), prior.groups if prior else {})
        to = str(options.get("to") or "owner")
        fallback = options.get("fallback_channel")
        payload = {
            "to": to,
            "owner_email": owner.email if owner else None,
            "fallback_channel": str(fallback) if fallback else None,
            # the notification's fallback text: never empty, even when the message is
            "text": cap(
                text if text.strip() else f"{plain(score.name)}: {score.status}", SLACK_TEXT_LIMIT
            ),
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
                url=occurrence.url,
            ),
        }
        if to != "owner":
            return payload, to
        target = f"owner {owner.email if owner and owner.email else '(no email)'}"
        if fallback:
            target += f" (else {fallback})"
        return payload, target

    def send(self, client: SlackSender, entry: LedgerEntry, reconcile: bool) -> Sent:
        channel, where = client.resolve(entry.payload)
        if reconcile:
            ts = client.find_sent(channel, entry.key, entry.created_at)
            if ts is not None:
                return f"{channel}/{ts}", {
                    "channel": channel,
                    "ts": ts,
                    "where": where,
                    "reconciled": True,
                }
        ts = client.post(channel, entry.payload, entry.key)
        return f"{channel}/{ts}", {"channel": channel, "ts": ts, "where": where}
