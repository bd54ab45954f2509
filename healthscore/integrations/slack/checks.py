"""`healthscore doctor`'s Slack checks: the token, its scopes, the channels a playbook names.

Slack puts the token's scopes on every Web API answer (`x-oauth-scopes` header,
api.slack.com/authentication/oauth-v2 "Scopes"); `auth.test` needs no scope and
answers `invalid_auth` for a token Slack does not know. The scope each method
needs is the one Slack's web-API spec (`slack_web.json`, `security`) names:
chat.postMessage `chat:write`, users.lookupByEmail `users:read.email`,
conversations.open `im:write`, conversations.list `channels:read`,
conversations.history `channels:history` / `groups:history` / `im:history`.
"""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk.errors import SlackApiError

from healthscore.integrations.slack.messages import SlackChannelNotFound, SlackSender


def needed_scopes(*, owner: bool, channels: bool) -> dict[str, str]:
    """Scope -> what needs it: posting always; DMs to owners; `#channel` targets.

    `owner`: some message goes to the account owner (found by email, sent as a DM);
    `channels`: some message goes to, or falls back to, a `#channel`.
    """
    needs = {"chat:write": "posting messages"}
    if owner:
        needs["users:read.email"] = "finding the owner by email"
        needs["im:write"] = "opening the DM to the owner"
        needs["im:history"] = "finding a DM again after a lost answer"
    if channels:
        needs["channels:read"] = "finding #channels by name"
        needs["channels:history"] = "finding a channel message again after a lost answer"
    return needs


def slack_problems(sender: SlackSender, *, owner: bool, channels: Iterable[str]) -> list[str]:
    """Every Slack setup problem for messages to the owner (`owner`) and to `channels`.

    `channels`: `#name`s (targets and fallbacks). Returns one line per problem:
    an invalid token (then nothing else is checked), each missing scope, each
    channel the bot cannot see, each channel it cannot post in and cannot join.
    """
    try:
        granted = sender.scopes()
    except SlackApiError as exc:
        code = exc.response.get("error")
        return [f"the Slack token is not valid (Slack answered {code})"]
    names = sorted(set(channels))
    problems = [
        f"Slack token lacks the scope {scope} (needed for {why})"
        for scope, why in sorted(needed_scopes(owner=owner, channels=bool(names)).items())
        if scope not in granted
    ]
    if names and "channels:read" not in granted:
        return problems  # conversations.list would only answer missing_scope
    for name in names:
        try:
            channel = sender.channel_id(name)
        except SlackChannelNotFound as exc:
            problems.append(str(exc))
            continue
        reason = sender.cannot_post(channel)
        if reason is not None:
            problems.append(f"{name}: {reason}")
    return problems
