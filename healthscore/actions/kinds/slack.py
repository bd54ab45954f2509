"""`do: slack`: a message to the account owner (by email), a #channel or a user id.

Reconciling: the message carries the ledger key in its metadata, so after a
crash the channel's history since the row was created says whether it arrived.

Sending: all the due rows at once (`send_all`): each row's channel is resolved
(owner lookups cached across runs), rows attempted before are looked up in their
channel's history (one read per channel), and the rest go out concurrently across
channels at Slack's per-channel pace (`SlackSender.post_many`). With `group: owner`
the rows of one action for one owner in one channel become one message listing
the accounts (split every `GROUP_LIMIT`), whose metadata lists every row's key:
a ledger row per account occurrence still, each marked by that one message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from slack_sdk.errors import SlackApiError

from healthscore.actions.context import group_drops, status_chip
from healthscore.actions.escape import plain
from healthscore.actions.kinds.base import ActionKind, Done, Occurrence, Sent, template
from healthscore.actions.messages import (
    GROUP_LIMIT,
    slack_blocks,
    slack_owner_blocks,
    slack_owner_line,
)
from healthscore.core.text import SLACK_TEXT_LIMIT, cap
from healthscore.history.ledger import LedgerEntry
from healthscore.integrations.slack.messages import (
    CHANNEL_RATE,
    STALE_ERRORS,
    Post,
    SlackSender,
)

OWNER = "owner"  # the one `group:` value: one message per owner per run


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
            "group": {
                "enum": [OWNER],
                "description": "`owner`: one message per CSM per run listing their accounts "
                "(each with its message) instead of one message per account.",
            },
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
        account: dict[str, Any] = {  # what the message and a grouped message's line show
            "account_name": score.name,
            "text": text,
            "score": comparison.rounded,
            "delta": comparison.delta,
            "status": score.status,
            "chip": status_chip(score.color),
            "previous_status": comparison.previous_status,
            "url": occurrence.url,
        }
        payload = {
            "to": to,
            "owner_email": owner.email if owner else None,
            "fallback_channel": str(fallback) if fallback else None,
            # the notification's fallback text: never empty, even when the message is
            "text": cap(
                text if text.strip() else f"{plain(score.name)}: {score.status}", SLACK_TEXT_LIMIT
            ),
            "blocks": slack_blocks(
                **account, trend=comparison.trend, arrow=comparison.arrow, drops=drops
            ),
        }
        if options.get("group") == OWNER:
            payload["group"] = OWNER
            payload["name"] = plain(score.name)
            payload["line"] = slack_owner_line(**account)
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

    concurrent = True

    def lease_seconds(self, entries: Sequence[LedgerEntry]) -> float:
        """The busiest target's messages at Slack's per-channel pace (grouped rows: one)."""
        per_target = Counter(
            (e.action, e.target) if e.payload.get("group") == OWNER else (e.id, e.target)
            for e in entries
        )
        per_channel = Counter(target for _, target in per_target)
        return max(per_channel.values(), default=0) / CHANNEL_RATE

    def send_all(self, client: SlackSender, entries: Sequence[LedgerEntry], done: Done) -> None:
        """Resolve every row's channel, reconcile the rows attempted before, then post the
        rest (grouped per owner where asked) concurrently across channels (module doc)."""
        routed: list[tuple[LedgerEntry, str, str]] = []
        for entry in entries:
            try:
                channel, where = client.resolve(entry.payload)
            except Exception as exc:  # this row fails; the others go on
                done(entry, None, exc)
                continue
            routed.append((entry, channel, where))
        fresh = self._reconcile(client, routed, done)
        posts, rows = self._posts(fresh)

        def posted(post: Post, ts: str | None, error: Exception | None) -> None:
            for entry, channel, where in rows[id(post)]:
                if error is not None:
                    if _stale(error) and where.startswith("DM to "):
                        client.forget_route(entry.payload)
                    done(entry, None, error)
                else:
                    external: dict[str, Any] = {"channel": channel, "ts": ts, "where": where}
                    if post.grouped:
                        external["grouped"] = len(post.keys)
                    done(entry, (f"{channel}/{ts}", external), None)

        client.post_many(posts, posted)

    def finish(self, client: SlackSender) -> None:
        client.save_lookups()

    @staticmethod
    def _reconcile(
        client: SlackSender, routed: list[tuple[LedgerEntry, str, str]], done: Done
    ) -> list[tuple[LedgerEntry, str, str]]:
        """Rows attempted before are looked up first (one history read per channel): the
        found ones are done, reconciled; the rest are returned to be sent."""
        again: dict[str, list[tuple[LedgerEntry, str, str]]] = {}
        fresh: list[tuple[LedgerEntry, str, str]] = []
        for row in routed:
            (again.setdefault(row[1], []) if row[0].attempts > 1 else fresh).append(row)
        for channel, rows in again.items():
            try:
                since = min(entry.created_at for entry, _, _ in rows)
                found = client.find_sent_many(channel, [e.key for e, _, _ in rows], since)
            except Exception as exc:  # cannot tell whether they arrived: try again later
                for entry, _, _ in rows:
                    done(entry, None, exc)
                continue
            for row in rows:
                entry, _, where = row
                ts = found.get(entry.key)
                if ts is None:
                    fresh.append(row)
                    continue
                external = {"channel": channel, "ts": ts, "where": where, "reconciled": True}
                done(entry, (f"{channel}/{ts}", external), None)
        fresh.sort(key=lambda row: row[0].id)
        return fresh

    @staticmethod
    def _posts(
        routed: list[tuple[LedgerEntry, str, str]],
    ) -> tuple[list[Post], dict[int, list[tuple[LedgerEntry, str, str]]]]:
        """One post per ungrouped row; one per (action, channel, owner) of `group: owner`
        rows, every `GROUP_LIMIT` accounts, in ledger order. Returns the posts and, by
        `id(post)`, the rows each stands for."""
        posts: list[Post] = []
        rows: dict[int, list[tuple[LedgerEntry, str, str]]] = {}
        groups: dict[tuple[str, str, str], list[tuple[LedgerEntry, str, str]]] = {}
        for row in routed:
            entry, channel, _ = row
            if entry.payload.get("group") == OWNER:
                owner = str(entry.payload.get("owner_email") or "")
                groups.setdefault((entry.action, channel, owner), []).append(row)
                continue
            post = Post(
                channel,
                str(entry.payload["text"]),
                list(entry.payload.get("blocks") or []),
                (entry.key,),
            )
            posts.append(post)
            rows[id(post)] = [row]
        for (_, channel, _), members in groups.items():
            for start in range(0, len(members), GROUP_LIMIT):
                chunk = members[start : start + GROUP_LIMIT]
                text, blocks = slack_owner_blocks(
                    [str(e.payload["line"]) for e, _, _ in chunk],
                    [str(e.payload.get("name") or e.account_id) for e, _, _ in chunk],
                )
                keys = tuple(e.key for e, _, _ in chunk)
                post = Post(channel, cap(text, SLACK_TEXT_LIMIT), blocks, keys, grouped=True)
                posts.append(post)
                rows[id(post)] = chunk
        return posts, rows


def _stale(error: Exception) -> bool:
    return isinstance(error, SlackApiError) and error.response.get("error") in STALE_ERRORS
