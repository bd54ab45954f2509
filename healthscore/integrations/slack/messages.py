"""Slack: find where a message goes, post it tagged with its ledger key, find it again.

Retries: slack_sdk's own handlers (429 with `Retry-After`, connection errors,
5xx), except that `chat.postMessage` is only re-sent after a 429 (Slack refused
it, nothing was posted): after a dropped answer or a 5xx the message may be in
the channel, and the client re-sending it is what doubled messages. Slack has
no idempotency key for `chat.postMessage`, so each message
carries its ledger key in message metadata (`event_type: healthscore_action`,
`event_payload.ledger_key`), and a ledger row that was attempted before is
first looked up in the channel's history (`conversations.history` with
`include_all_metadata`): found means it was delivered, only the
acknowledgement was lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from healthscore.errors import VendorError

EVENT_TYPE = "healthscore_action"
HISTORY_MARGIN_SECONDS = 300  # clock skew between us and Slack when bounding the history read


class SlackActionError(VendorError):
    """A Slack action that cannot be delivered as configured."""


class NoSlackTarget(SlackActionError):
    """The owner has no Slack user (or no email) and the action has no fallback channel."""


class SlackChannelNotFound(SlackActionError):
    """A `#channel` the bot cannot see."""


class SlackNotInChannel(SlackActionError):
    """The bot is not a member of the channel and cannot join it by itself."""


PRIVATE_SCOPE = "groups:read"  # conversations.list types=private_channel
JOIN_SCOPE = "channels:join"  # conversations.join, public channels only


def not_in_channel(channel: str) -> str:
    """The fix for Slack's `not_in_channel` (chat.postMessage) in one sentence."""
    return (
        f"the Slack bot is not a member of channel {channel}: invite it (/invite @your-bot "
        f"in the channel) or grant the {JOIN_SCOPE} scope so it joins public channels by itself"
    )


WRITES = ("chat.postMessage",)
"""Methods that post something new each time they are applied: never re-sent after they may
have reached Slack (the ledger reconciles through message metadata instead)."""


def _writes(request: HttpRequest) -> bool:
    return request.url.split("?", 1)[0].rstrip("/").endswith(WRITES)


class _ReadsOnly:
    """A retry handler mixin: re-send reads only, never a write that may have landed."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _writes(request):
            return False
        retry: bool = super()._can_retry(  # type: ignore[misc]
            state=state, request=request, response=response, error=error
        )
        return retry


class _ReadConnectionErrorRetry(_ReadsOnly, ConnectionErrorRetryHandler):
    """Dropped connections are re-sent for reads only."""


class _ReadServerErrorRetry(_ReadsOnly, ServerErrorRetryHandler):
    """5xx answers are re-sent for reads only."""


def slack_client(base_url: str, token: str, timeout: int = 15) -> WebClient:
    """A WebClient that honours 429 Retry-After everywhere and re-sends reads (only) after a
    dropped connection or a 5xx."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            _ReadConnectionErrorRetry(max_retry_count=3),
            _ReadServerErrorRetry(max_retry_count=3),
        ],
    )


class SlackSender:
    """One run's Slack side: caches (email -> user, channel name -> id) live for one run."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._users: dict[str, str | None] = {}
        self._channels: dict[str, str] | None = None
        self._private: set[str] = set()
        self._member: set[str] = set()
        self._scopes: frozenset[str] | None = None
        self._dms: dict[str, str] = {}

    def scopes(self) -> frozenset[str]:
        """The token's scopes: the `x-oauth-scopes` header Slack puts on every Web API answer.

        Taken from the first `conversations.list` page when there was one, else
        from `auth.test` (one call, once per run).
        """
        if self._scopes is None:
            self._note_scopes(self.client.auth_test())
        return self._scopes or frozenset()

    def _note_scopes(self, response: Any) -> None:
        header = {k.lower(): v for k, v in (response.headers or {}).items()}
        raw = header.get("x-oauth-scopes")
        if raw is None:
            return
        if isinstance(raw, list):
            raw = ",".join(raw)
        self._scopes = frozenset(s.strip() for s in str(raw).split(",") if s.strip())

    # -- where

    def user_id(self, email: str) -> str | None:
        """The Slack user with this email (`users.lookupByEmail`), None if there is none."""
        key = email.strip().lower()
        if key not in self._users:
            try:
                response = self.client.users_lookupByEmail(email=key)
                self._users[key] = str(response["user"]["id"])
            except SlackApiError as exc:
                if exc.response.get("error") != "users_not_found":
                    raise
                self._users[key] = None
        return self._users[key]

    def channel_id(self, name: str) -> str:
        """A channel's id by name (`conversations.list`, read once per run).

        Public channels only need `channels:read`, which the README asks for;
        private ones are listed too only when the token has `groups:read`
        (asking without it is Slack's `missing_scope`, and nothing would post).
        """
        if self._channels is None:
            channels = self._list("public_channel")
            if PRIVATE_SCOPE in self.scopes():
                private = self._list("private_channel")
                self._private = set(private.values())
                channels = private | channels
            self._channels = channels
        bare = name.lstrip("#")
        if bare in self._channels:
            return self._channels[bare]
        if bare in self._channels.values():  # an id was given
            return bare
        hint = "" if PRIVATE_SCOPE in self.scopes() else f" (a private one needs {PRIVATE_SCOPE})"
        raise SlackChannelNotFound(f"Slack channel {name} not found{hint}")

    def _list(self, types: str) -> dict[str, str]:
        channels: dict[str, str] = {}
        cursor = None
        while True:
            page = self.client.conversations_list(
                exclude_archived=True, limit=1000, types=types, cursor=cursor
            )
            if self._scopes is None:
                self._note_scopes(page)
            for channel in page.get("channels") or []:
                channels[str(channel["name"])] = str(channel["id"])
                if channel.get("is_member"):
                    self._member.add(str(channel["id"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return channels

    def cannot_post(self, channel_id: str) -> str | None:
        """Why the bot cannot post in a channel `channel_id` found, None when it can.

        From `conversations.list`'s `is_member`: a member posts; a public channel
        is joined first when the token has `channels:join` (`post`); otherwise
        chat.postMessage answers `not_in_channel`, and this is that error's fix.
        """
        if channel_id in self._member:
            return None
        if channel_id not in self._private and JOIN_SCOPE in self.scopes():
            return None
        return not_in_channel(channel_id)

    def dm_channel(self, user_id: str) -> str:
        if user_id not in self._dms:
            response = self.client.conversations_open(users=user_id)
            self._dms[user_id] = str(response["channel"]["id"])
        return self._dms[user_id]

    def resolve(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """(channel id, description) for a payload's `to`, with the fallback channel.

        Deterministic for the same payload and workspace, which is what lets a
        retry look for its earlier message in the same channel.
        """
        to = str(payload.get("to") or "owner")
        fallback = payload.get("fallback_channel")
        if to == "owner":
            email = payload.get("owner_email")
            user = self.user_id(str(email)) if email else None
            if user is not None:
                return self.dm_channel(user), f"DM to {email}"
            if not fallback:
                raise NoSlackTarget(
                    f"owner {email or '(no email)'} has no Slack user and no fallback_channel"
                )
            return self.channel_id(
                str(fallback)
            ), f"{fallback} (owner {email or 'unknown'} not in Slack)"
        if to[:1] in ("U", "W") and not to.startswith("#"):
            return self.dm_channel(to), f"DM to {to}"
        return self.channel_id(to), to

    # -- what

    def find_sent(self, channel: str, key: str, since: datetime) -> str | None:
        """The ts of a message in `channel` carrying `key` in its metadata, posted after `since`."""
        oldest = f"{since.timestamp() - HISTORY_MARGIN_SECONDS:.6f}"
        cursor = None
        while True:
            page = self.client.conversations_history(
                channel=channel,
                oldest=oldest,
                limit=200,
                include_all_metadata=True,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == EVENT_TYPE and payload.get("ledger_key") == key:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None

    def post(self, channel: str, payload: Mapping[str, Any], key: str) -> str:
        """Post the message; returns its ts.

        `not_in_channel` (chat.postMessage's error for a channel the bot has not
        joined): a public channel is joined (`conversations.join`) when the token
        has `channels:join`, and the post is sent again; otherwise the error says
        how to fix it.
        """
        try:
            return self._post(channel, payload, key)
        except SlackApiError as exc:
            if exc.response.get("error") != "not_in_channel":
                raise
            if channel in self._private or JOIN_SCOPE not in self.scopes():
                raise SlackNotInChannel(not_in_channel(channel)) from None
            self.client.conversations_join(channel=channel)
        return self._post(channel, payload, key)

    def _post(self, channel: str, payload: Mapping[str, Any], key: str) -> str:
        response = self.client.chat_postMessage(
            channel=channel,
            text=str(payload["text"]),
            blocks=list(payload.get("blocks") or []),
            metadata={"event_type": EVENT_TYPE, "event_payload": {"ledger_key": key}},
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])
