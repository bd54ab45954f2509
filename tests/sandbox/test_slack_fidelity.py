"""Slack sandbox fidelity through the real slack_sdk WebClient: scopes, membership,
Block Kit limits and the per-channel rate limit of chat.postMessage."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from healthscore.sandbox import SandboxUrls, running_sandbox
from healthscore.sandbox.slack import ALL_SCOPES

from .conftest import make_seed

NARROW = ["chat:write", "channels:read"]
TOKENS = {
    "xoxb-narrow": NARROW,
    "xoxb-public": ["chat:write", "chat:write.public"],
    "xoxb-full": list(ALL_SCOPES),
    "pat-hubspot": ["crm.objects.companies.read"],  # not a Slack token: ignored by Slack
}


def _seed() -> dict[str, Any]:
    return {
        **make_seed(),
        "slack_channels": [
            {"name": "renewals", "bot_member": False},
            {"name": "exec", "is_private": True, "bot_member": False},
            {"name": "old", "is_archived": True},
        ],
    }


def _refusal(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call(**kwargs)
    data: dict[str, Any] = caught.value.response.data
    return data


@pytest.fixture(scope="module")
def scoped() -> Iterator[SandboxUrls]:
    with running_sandbox(_seed(), slack_tokens=TOKENS) as urls:
        yield urls


@pytest.fixture(scope="module")
def open_sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(_seed()) as urls:
        yield urls


def _client(urls: SandboxUrls, token: str = "xoxb-any") -> WebClient:
    return WebClient(token=token, base_url=urls.slack_url)


# ---------------------------------------------------------------- scopes


def test_auth_test_reports_the_granted_scopes(scoped: SandboxUrls) -> None:
    response = _client(scoped, "xoxb-narrow").auth_test()
    assert response["ok"] is True and response["user_id"] == "U0HEALTHBOT"
    assert response.headers["x-oauth-scopes"] == "chat:write,channels:read"
    assert response.headers["x-accepted-oauth-scopes"] == ""


def test_without_a_token_mapping_any_token_has_every_scope(open_sandbox: SandboxUrls) -> None:
    response = _client(open_sandbox, "anything").auth_test()
    assert response.headers["x-oauth-scopes"] == ",".join(ALL_SCOPES)


@pytest.mark.parametrize("token", ["xoxb-unknown", "pat-hubspot"])
def test_an_unknown_token_is_invalid_auth(scoped: SandboxUrls, token: str) -> None:
    assert _refusal(_client(scoped, token).auth_test) == {"ok": False, "error": "invalid_auth"}


@pytest.mark.parametrize(
    ("method", "kwargs", "needed"),
    [
        ("conversations_list", {"types": "public_channel,private_channel"}, "groups:read"),
        ("conversations_list", {"types": "im"}, "im:read"),
        ("users_lookupByEmail", {"email": "ana@example.com"}, "users:read.email"),
        ("conversations_open", {"users": "U00000001"}, "im:write"),
        ("conversations_history", {"channel": "C00000001"}, "channels:history"),
        ("conversations_join", {"channel": "C00000004"}, "channels:join"),
    ],
)
def test_missing_scope_names_needed_and_provided(
    scoped: SandboxUrls, method: str, kwargs: dict[str, str], needed: str
) -> None:
    client = _client(scoped, "xoxb-narrow")
    assert _refusal(getattr(client, method), **kwargs) == {
        "ok": False,
        "error": "missing_scope",
        "needed": needed,
        "provided": "chat:write,channels:read",
    }


def test_history_of_a_dm_needs_im_history(scoped: SandboxUrls) -> None:
    full = _client(scoped, "xoxb-full")
    dm = full.conversations_open(users="U00000001")["channel"]["id"]
    refused = _refusal(_client(scoped, "xoxb-narrow").conversations_history, channel=dm)
    assert (refused["error"], refused["needed"]) == ("missing_scope", "im:history")


def test_the_granted_scopes_suffice(scoped: SandboxUrls) -> None:
    narrow = _client(scoped, "xoxb-narrow")
    listed = narrow.conversations_list()
    assert [c["name"] for c in listed["channels"]] == [
        "cs-alerts", "cs-leadership", "general", "renewals", "old",
    ]  # fmt: skip
    assert listed.headers["x-accepted-oauth-scopes"] == (
        "channels:read,groups:read,im:read,mpim:read"
    )
    assert narrow.chat_postMessage(channel="#general", text="hi")["ok"] is True


def test_chat_write_public_posts_where_the_bot_is_not_a_member(scoped: SandboxUrls) -> None:
    posted = _client(scoped, "xoxb-public").chat_postMessage(channel="#renewals", text="hi")
    assert posted["channel"] == "C00000004"
    refused = _refusal(
        _client(scoped, "xoxb-narrow").chat_postMessage, channel="#renewals", text="x"
    )
    assert refused == {"ok": False, "error": "not_in_channel"}


# ---------------------------------------------------------------- membership


def test_not_in_channel_then_join_then_post(open_sandbox: SandboxUrls) -> None:
    client = _client(open_sandbox)
    channel = open_sandbox.state.slack.add_channel("onboarding")
    refused = _refusal(client.chat_postMessage, channel="#onboarding", text="welcome")
    assert refused == {"ok": False, "error": "not_in_channel"}
    history = _refusal(client.conversations_history, channel=channel["id"])
    assert history["error"] == "not_in_channel"
    joined = client.conversations_join(channel=channel["id"])
    assert joined["channel"]["is_member"] is True and "warning" not in joined.data
    assert client.chat_postMessage(channel="#onboarding", text="welcome")["ok"] is True
    again = client.conversations_join(channel=channel["id"])
    assert again["warning"] == "already_in_channel"
    assert again["response_metadata"] == {"warnings": ["already_in_channel"]}
    messages = client.conversations_history(channel=channel["id"])["messages"]
    assert [m["text"] for m in messages] == ["welcome"]


def test_join_refusals(open_sandbox: SandboxUrls) -> None:
    client = _client(open_sandbox)
    slack = open_sandbox.state.slack
    private = slack.channel_by_name("exec")
    archived = slack.channel_by_name("old")
    assert private is not None and archived is not None
    dm = client.conversations_open(users="U00000002")["channel"]["id"]
    for channel, code in [
        (private["id"], "method_not_supported_for_channel_type"),
        (dm, "method_not_supported_for_channel_type"),
        (archived["id"], "is_archived"),
        ("C99999999", "channel_not_found"),
    ]:
        assert _refusal(client.conversations_join, channel=channel)["error"] == code


def test_private_channels_the_bot_is_not_in_do_not_exist_for_it(open_sandbox: SandboxUrls) -> None:
    client = _client(open_sandbox)
    assert _refusal(client.chat_postMessage, channel="#exec", text="x")["error"] == (
        "channel_not_found"
    )
    refused = _refusal(client.chat_postMessage, channel="#old", text="x")
    assert refused == {"ok": False, "error": "is_archived"}
    assert client.chat_postMessage(channel="U00000001", text="a DM is always open")["ok"]


def test_conversations_list_types_archived_members_and_paging(open_sandbox: SandboxUrls) -> None:
    client = _client(open_sandbox)
    slack = open_sandbox.state.slack
    if slack.channel_by_name("onboarding") is None:  # the membership test may run elsewhere
        slack.add_channel("onboarding", bot_member=True)
    for user in ("U00000001", "U00000002"):  # opening a DM again gives the same one
        client.conversations_open(users=user)
    slack.add_channel("csm-private", is_private=True, bot_member=True)
    public = client.conversations_list(limit=1000)["channels"]
    assert {c["name"]: c["is_member"] for c in public} == {
        "cs-alerts": True, "cs-leadership": True, "general": True, "renewals": False,
        "old": True, "onboarding": True,
    }  # fmt: skip
    unarchived = client.conversations_list(exclude_archived=True)["channels"]
    assert "old" not in [c["name"] for c in unarchived]
    private = client.conversations_list(types="private_channel")["channels"]
    assert [(c["name"], c["is_private"], c["is_member"]) for c in private] == [
        ("csm-private", True, True)
    ]
    ims = client.conversations_list(types="im")["channels"]
    assert sorted((c["user"], c["is_im"]) for c in ims) == [
        ("U00000001", True),
        ("U00000002", True),
    ]
    names: list[str] = []
    cursor = None
    while True:
        page = client.conversations_list(
            limit=4, cursor=cursor, types="public_channel,private_channel"
        )
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert len(names) == 7 and names[-1] == "csm-private"


# ---------------------------------------------------------------- Block Kit and text limits


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


@pytest.mark.parametrize(
    ("blocks", "detail"),
    [
        ([_section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
        (
            [_section("ok"), _section("  \n ")],
            "must be more than 0 characters [json-pointer:/blocks/1/text/text]",
        ),
        (
            [_section("x" * 3001)],
            "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [_header("h" * 151)],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        ([_section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    ],
)
def test_invalid_blocks_with_slacks_detail(
    open_sandbox: SandboxUrls, blocks: list[dict[str, Any]], detail: str
) -> None:
    refused = _refusal(
        _client(open_sandbox).chat_postMessage, channel="#general", text="t", blocks=blocks
    )
    assert refused == {
        "ok": False,
        "error": "invalid_blocks",
        "errors": [detail],
        "response_metadata": {"messages": [f"[ERROR] {detail}"]},
    }


def test_blocks_at_the_limits_are_accepted(open_sandbox: SandboxUrls) -> None:
    blocks = [_header("h" * 150), _section("x" * 3000)] + [{"type": "divider"}] * 48
    client = _client(open_sandbox)
    posted = client.chat_postMessage(channel="#general", text="t", blocks=blocks)
    assert len(posted["message"]["blocks"]) == 50
    fields_only = {"type": "section", "fields": [{"type": "mrkdwn", "text": "*a*"}]}
    assert client.chat_postMessage(channel="#general", text="t", blocks=[fields_only])["ok"]


@pytest.mark.filterwarnings("ignore:The top-level `text`:UserWarning")
@pytest.mark.filterwarnings("ignore:Additionally, the attachment-level:UserWarning")
def test_text_limits(open_sandbox: SandboxUrls) -> None:
    client = _client(open_sandbox)
    too_long = _refusal(client.chat_postMessage, channel="#general", text="x" * 40_001)
    assert too_long == {"ok": False, "error": "msg_too_long"}
    assert client.chat_postMessage(channel="#general", text="x" * 40_000)["ok"]
    assert _refusal(client.chat_postMessage, channel="#general") == {
        "ok": False,
        "error": "no_text",
    }
    attached = client.chat_postMessage(channel="#general", attachments=[{"text": "a"}])
    assert attached["ok"] and "attachments" not in attached["message"]
    bad = _refusal(client.chat_postMessage, channel="#general", text="t", blocks="[{")
    assert bad["error"] == "invalid_blocks_format"


# ---------------------------------------------------------------- per-channel rate limit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stats(urls: SandboxUrls) -> dict[str, Any]:
    with urllib.request.urlopen(urls.base_url + "/_sandbox/stats") as response:
        body: dict[str, Any] = json.load(response)
    return body


def test_channel_rate_limit_is_a_429_with_retry_after() -> None:
    with running_sandbox(make_seed(), slack_channel_rate=0.25) as urls:
        clock = Clock()
        urls.state.slack.clock = clock
        client = _client(urls)
        for i in range(3):  # the burst
            assert client.chat_postMessage(channel="#general", text=f"m{i}")["ok"]
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel="#general", text="m3")
        response = caught.value.response
        assert response.status_code == 429
        assert response.data == {"ok": False, "error": "ratelimited"}
        assert response.headers["Retry-After"] == "4"  # 1 message every 4 s
        assert client.chat_postMessage(channel="#cs-alerts", text="other channel")["ok"]
        clock.now += 3.0
        with pytest.raises(SlackApiError) as again:
            client.chat_postMessage(channel="#general", text="m3")
        assert again.value.response.headers["Retry-After"] == "1"
        clock.now += 1.0
        assert client.chat_postMessage(channel="#general", text="m3")["ok"]
        assert _stats(urls)["rate_limited"] == 2
        texts = [m["text"] for m in client.conversations_history(channel="C00000003")["messages"]]
        assert texts == ["m3", "m2", "m1", "m0"]


def test_rate_limit_retry_handler_honours_retry_after() -> None:
    with running_sandbox(make_seed(), slack_channel_rate=1.0) as urls:
        client = _client(urls)
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
        for i in range(4):  # the fourth waits for Retry-After, then goes through
            assert client.chat_postMessage(channel="#general", text=f"m{i}")["ok"]
        assert _stats(urls)["rate_limited"] == 1
