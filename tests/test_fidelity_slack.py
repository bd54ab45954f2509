"""Slack actions with exactly the README's scopes: fallback channels, joining, empty messages.

The real slack_sdk client (through `slack_client`, the product's own) against the
sandbox started with a tokens table, so Slack's `missing_scope`, `not_in_channel`
and `invalid_blocks` are what the product sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from healthscore.actions.messages import slack_blocks
from healthscore.integrations.slack.messages import (
    SlackChannelNotFound,
    SlackNotInChannel,
    SlackSender,
    slack_client,
)
from healthscore.sandbox import SandboxUrls, running_sandbox
from tests.sandbox.conftest import make_seed

# README, "Actions": the Slack scopes it asks for.
README_SCOPES = [
    "chat:write",
    "users:read.email",
    "im:write",
    "channels:read",
    "channels:history",
    "groups:history",
    "im:history",
]
TOKENS = {
    "xoxb-readme": README_SCOPES,
    "xoxb-join": [*README_SCOPES, "channels:join"],
    "xoxb-private": [*README_SCOPES, "groups:read"],
}


@pytest.fixture
def sandbox() -> Iterator[SandboxUrls]:
    seed = {
        **make_seed(),
        "slack_channels": [
            {"name": "cs-alerts", "bot_member": True},
            {"name": "renewals", "bot_member": False},
            {"name": "exec", "is_private": True, "bot_member": True},
        ],
    }
    with running_sandbox(seed, slack_tokens=TOKENS) as urls:
        yield urls


def sender(urls: SandboxUrls, token: str) -> SlackSender:
    return SlackSender(slack_client(urls.slack_url, token))


def blocks(text: str) -> list[dict[str, Any]]:
    return slack_blocks(
        account_name="Acme",
        text=text,
        score=41,
        delta=None,
        status="At-risk",
        chip="🔴",
        trend="new",
        arrow="🆕",
        previous_status=None,
        drops=[],
        url="https://app.hubspot.com/contacts/1/company/101",
    )


def messages(urls: SandboxUrls, channel: str) -> list[dict[str, Any]]:
    return [m for m in urls.state.slack.messages if m["channel"] == channel]


def test_fallback_channel_with_the_readme_scopes_posts(sandbox: SandboxUrls) -> None:
    slack = sender(sandbox, "xoxb-readme")
    payload = {"to": "owner", "owner_email": "nobody@example.com", "fallback_channel": "#cs-alerts"}
    channel, where = slack.resolve(payload)
    assert where == "#cs-alerts (owner nobody@example.com not in Slack)"
    slack.post(channel, {"text": "At risk", "blocks": blocks("At risk")}, "k1")
    assert [m["text"] for m in messages(sandbox, channel)] == ["At risk"]
    # a private channel is only looked for with groups:read
    with pytest.raises(SlackChannelNotFound, match=r"#exec not found \(a private one needs"):
        slack.channel_id("#exec")
    private = sender(sandbox, "xoxb-private")
    assert private.channel_id("#exec") == sandbox.state.slack.channel_by_name("exec")["id"]


def test_not_in_channel_joins_with_channels_join(sandbox: SandboxUrls) -> None:
    slack = sender(sandbox, "xoxb-join")
    channel = slack.channel_id("#renewals")
    slack.post(channel, {"text": "Renewal", "blocks": blocks("Renewal")}, "k2")
    assert sandbox.state.slack.bot_in(channel)
    assert [m["text"] for m in messages(sandbox, channel)] == ["Renewal"]


def test_not_in_channel_without_join_names_the_fix(sandbox: SandboxUrls) -> None:
    slack = sender(sandbox, "xoxb-readme")
    channel = slack.channel_id("#renewals")
    with pytest.raises(SlackNotInChannel) as caught:
        slack.post(channel, {"text": "Renewal", "blocks": blocks("Renewal")}, "k3")
    assert str(caught.value) == (
        f"the Slack bot is not a member of channel {channel}: invite it (/invite @your-bot "
        "in the channel) or grant the channels:join scope so it joins public channels by itself"
    )
    assert messages(sandbox, channel) == []


def test_a_message_that_renders_empty_posts_a_valid_message(sandbox: SandboxUrls) -> None:
    slack = sender(sandbox, "xoxb-readme")
    channel = slack.channel_id("#cs-alerts")
    empty = blocks("")
    assert [b["type"] for b in empty] == ["header", "section", "actions"]
    assert "text" not in empty[1]  # the fields section; the empty text section is left out
    slack.post(channel, {"text": "Acme: At-risk", "blocks": empty}, "k4")
    (posted,) = messages(sandbox, channel)
    assert [b["type"] for b in posted["blocks"]] == ["header", "section", "actions"]
