"""What each target receives: a Slack Block Kit message, Jira wiki text, labels.

Pure builders over already-escaped values (see `context.py`); the vendor
modules only send what is built here, so the dry run can show it verbatim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from healthscore.actions.escape import jira_wiki, plain, slack_mrkdwn
from healthscore.core.text import slug

HEADER_LIMIT = 150  # Slack: plain_text in a header block
SECTION_LIMIT = 3000  # Slack: text of a section block
LABEL_LIMIT = 255  # Jira
GROUP_LIMIT = 45
"""Accounts in one per-owner Slack message: a header and a section each stay under Block
Kit's 50 blocks a message (a longer list continues in a second message)."""


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+g}"


def slack_blocks(
    *,
    account_name: str,
    text: str,
    score: float,
    delta: float | None,
    status: str,
    chip: str,
    trend: str,
    arrow: str,
    previous_status: str | None,
    drops: Sequence[tuple[str, float, float]],
    url: str,
) -> list[dict[str, Any]]:
    """Header, the rendered message, score/status/trend fields, the groups that fell, a button.

    `account_name` and the group names are raw CRM/playbook text here: the
    header is `plain_text` (no mrkdwn, no mentions), the rest is escaped. A
    message that renders empty (`{% if previous_status %}…{% endif %}` on a first
    score) leaves its section out: Slack refuses a section without text
    (`invalid_blocks`, Block Kit reference "Section block": `text` 1-3000 characters).
    """
    header = plain(f"{chip} {account_name}")[:HEADER_LIMIT]
    fields = [
        {"type": "mrkdwn", "text": f"*Score*\n{score:g} ({_signed(delta)})"},
        {"type": "mrkdwn", "text": f"*Status*\n{chip} {slack_mrkdwn(status)}"},
        {"type": "mrkdwn", "text": f"*Trend*\n{arrow} {trend}"},
        {
            "type": "mrkdwn",
            "text": f"*Previous status*\n{slack_mrkdwn(previous_status or 'none (first score)')}",
        },
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    if text.strip():
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}})
    blocks.append({"type": "section", "fields": fields})
    if drops:
        lines = "\n".join(
            f"• {slack_mrkdwn(name)}: {before:g} → {after:g} ({after - before:+g})"
            for name, before, after in drops
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Dropped most*\n{lines}"}}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in HubSpot"},
                    "url": url,
                    "action_id": "open_hubspot_record",
                }
            ],
        }
    )
    return blocks


def slack_owner_line(
    *,
    account_name: str,
    text: str,
    score: float,
    delta: float | None,
    status: str,
    chip: str,
    previous_status: str | None,
    url: str,
) -> str:
    """One account of a per-owner message (`group: owner`), mrkdwn: the linked name, score
    (change), status (from what), then the rendered message. `account_name` and the
    statuses are raw text here and escaped; `text` is rendered (escaped) already."""
    was = f" (was {slack_mrkdwn(previous_status)})" if previous_status else ""
    line = (
        f"{chip} *<{url}|{slack_mrkdwn(account_name)}>*: {score:g} ({_signed(delta)}), "
        f"{slack_mrkdwn(status)}{was}"
    )
    if text.strip():
        line += f"\n{text}"
    return line[:SECTION_LIMIT]


def slack_owner_blocks(
    lines: Sequence[str], names: Sequence[str]
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of one per-owner message: a header, one section per account.

    At most `GROUP_LIMIT` accounts (the caller splits longer lists); `names` are raw
    account names for the notification text.
    """
    count = f"{len(lines)} of your accounts" if len(lines) != 1 else "1 of your accounts"
    header = f"Health score: {count} moved"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines)
    text = plain(f"{header}: {', '.join(names)}")
    return text, blocks


def jira_breakdown(
    *,
    intro: str,
    score: float,
    status: str,
    previous_status: str | None,
    delta: float | None,
    trend: str,
    reason: str,
    rules: Mapping[str, Mapping[str, float]],
    groups: Mapping[str, float],
    url: str,
) -> str:
    """The issue description: the rendered template, then the score breakdown as wiki tables."""
    lines = [intro, ""] if intro else []
    lines += [
        f"*Score:* {score:g} ({_signed(delta)}, trend {trend})",
        f"*Status:* {jira_wiki(status)} (previous: {jira_wiki(previous_status or 'none')})",
        f"*Why:* {jira_wiki(reason)}",
        f"*HubSpot:* [{url}]",
        "",
        "||Group||Rule||Points||",
    ]
    for group, points in groups.items():
        lines.append(f"|*{jira_wiki(group)}*| |*{points:g}*|")
        for rule, rule_points in rules.get(group, {}).items():
            lines.append(f"| |{jira_wiki(rule)}|{rule_points:g}|")
    return "\n".join(lines)


def label_slug(text: str) -> str:
    """Jira labels: no spaces; lower-case letters, digits and dashes read well in JQL."""
    return slug(text, "-") or "x"


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def account_label(account_id: str) -> str:
    return f"healthscore-acct-{label_slug(account_id)}"[:LABEL_LIMIT]


def rule_label(playbook: str, action: str) -> str:
    """Stable per (playbook, action); long names keep a hash so two rules never collide."""
    slug = label_slug(f"{playbook}-{action}")
    if len(slug) > 60:
        slug = slug[:47] + "-" + short_hash(f"{playbook}|{action}")
    return f"healthscore-rule-{slug}"


def occurrence_label(key: str) -> str:
    """Marks the issue created for one ledger row: how a retry recognises its own issue."""
    return f"healthscore-occ-{short_hash(key, 16)}"
