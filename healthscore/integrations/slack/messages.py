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
acknowledgement was lost. A message that stands for several ledger rows (a
per-owner digest) lists all their keys in `event_payload.ledger_keys`.

Rate limits (https://api.slack.com/docs/rate-limits): Web API methods are
limited per method per workspace in tiers (Tier 2: 20+/min, Tier 3: 50+/min);
`chat.postMessage` is special, about one message per second per channel. The
sender paces each tiered method it calls with a sliding window of its tier
(`TIER_PER_MINUTE`), and `post_many` sends to many channels at once while
keeping each channel at `channel_rate` messages a second; a 429 is still
honoured (`Retry-After`) by slack_sdk's handler. Owner lookups
(`users.lookupByEmail`, `conversations.open`) can be remembered across runs
through a `LookupCache` (the history store keeps one), so a daily run does not
look up every CSM again.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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
from healthscore.integrations.pacing import RateLimiter

EVENT_TYPE = "healthscore_action"
HISTORY_MARGIN_SECONDS = 300  # clock skew between us and Slack when bounding the history read
CHANNEL_RATE = 1.0
"""chat.postMessage: messages per second per channel ("generally allows posting one message
per second per channel", https://api.slack.com/docs/rate-limits)."""
WORKERS = 16
"""Messages in flight at once across channels (Slack also keeps an unpublished
workspace-wide limit on chat.postMessage; 429s beyond it are honoured)."""
TIER_PER_MINUTE: Mapping[str, int] = {
    "users.lookupByEmail": 50,  # Tier 3
    "conversations.open": 50,  # Tier 3
    "conversations.history": 50,  # Tier 3 (Tier 1 for non-Marketplace apps since 2025-05-29)
    "conversations.join": 50,  # Tier 3
    "conversations.list": 20,  # Tier 2
}
"""The published tier of each paced method: calls a minute, per workspace (method pages)."""
USER = "user"  # LookupCache kinds: email -> Slack user id (None: no such user)
DM = "dm"  # Slack user id -> the bot's DM channel with them
STALE_ERRORS = ("channel_not_found", "user_not_found", "account_inactive", "is_archived")
"""chat.postMessage errors after which a cached DM or user may be out of date."""


class LookupCache(Protocol):
    """Owner lookups kept across runs, per workspace (Slack team id).

    `load` answers every unexpired (kind, key) -> value (value None: looked up, not found);
    `save` stores new answers and drops `forget`'s entries.
    """

    def load(self, workspace: str) -> dict[tuple[str, str], str | None]: ...

    def save(
        self,
        workspace: str,
        found: Mapping[tuple[str, str], str | None],
        forget: Iterable[tuple[str, str]] = (),
    ) -> None: ...


@dataclass(frozen=True)
class Post:
    """One message to send: where, what, and the ledger keys it stands for (metadata:
    `ledger_keys` when `grouped`, else the one `ledger_key`)."""

    channel: str
    text: str
    blocks: Sequence[Mapping[str, Any]]
    keys: tuple[str, ...]
    grouped: bool = False


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
    """One run's Slack side.

    Channel names are read once per run; owner lookups (email -> user, user -> DM)
    come from `cache` when one is given (loaded on first use, new answers written
    by `save_lookups`), else live for the run. `channel_rate` paces `post_many`.
    """

    def __init__(
        self,
        client: WebClient,
        cache: LookupCache | None = None,
        channel_rate: float = CHANNEL_RATE,
        workers: int = WORKERS,
        tiers: Mapping[str, int] = TIER_PER_MINUTE,
    ) -> None:
        self.client = client
        self.cache = cache
        self.channel_rate = channel_rate
        self.workers = workers
        self._limits = {name: RateLimiter(n, 60.0) for name, n in tiers.items()}
        self._lookups: dict[tuple[str, str], str | None] | None = None
        self._new: dict[tuple[str, str], str | None] = {}
        self._forget: set[tuple[str, str]] = set()
        self._channels: dict[str, str] | None = None
        self._private: set[str] = set()
        self._member: set[str] = set()
        self._scopes: frozenset[str] | None = None
        self._team: str | None = None
        self._lock = threading.Lock()
        self.lookups_made = 0
        """users.lookupByEmail and conversations.open calls this run (the cache's misses)."""

    def _paced(self, method: str) -> None:
        limiter = self._limits.get(method)
        if limiter is not None:
            limiter.acquire()

    def _known(self) -> dict[tuple[str, str], str | None]:
        if self._lookups is None:
            self._lookups = {}
            if self.cache is not None:
                self._lookups = self.cache.load(self.workspace())
        return self._lookups

    def workspace(self) -> str:
        """The Slack team id (`auth.test`, once per run): what the lookup cache is keyed by."""
        if self._team is None:
            response = self.client.auth_test()
            if self._scopes is None:
                self._note_scopes(response)
            self._team = str(response.get("team_id") or "")
        return self._team

    def _lookup(self, kind: str, key: str, ask: Callable[[], str | None]) -> str | None:
        known = self._known()
        if (kind, key) not in known:
            value = ask()
            self.lookups_made += 1
            with self._lock:
                known[(kind, key)] = value
                self._new[(kind, key)] = value
        return known[(kind, key)]

    def forget_route(self, payload: Mapping[str, Any]) -> None:
        """Drop the cached lookups behind an owner's DM (after Slack said it is gone)."""
        email = str(payload.get("owner_email") or "").strip().lower()
        known = self._known()
        user = known.get((USER, email)) if email else None
        for key in ((USER, email), (DM, user or "")):
            if key in known:
                with self._lock:
                    known.pop(key, None)
                    self._new.pop(key, None)
                    self._forget.add(key)

    def save_lookups(self) -> None:
        """Write this run's new lookups (and forgotten ones) to the cache; no-op without one."""
        if self.cache is None or (not self._new and not self._forget):
            return
        self.cache.save(self.workspace(), dict(self._new), sorted(self._forget))
        self._new, self._forget = {}, set()

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

        def ask() -> str | None:
            self._paced("users.lookupByEmail")
            try:
                response = self.client.users_lookupByEmail(email=key)
            except SlackApiError as exc:
                if exc.response.get("error") != "users_not_found":
                    raise
                return None
            return str(response["user"]["id"])

        return self._lookup(USER, key, ask)

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
            self._paced("conversations.list")
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
        """The bot's DM channel with a user (`conversations.open`)."""

        def ask() -> str:
            self._paced("conversations.open")
            response = self.client.conversations_open(users=user_id)
            return str(response["channel"]["id"])

        return str(self._lookup(DM, user_id, ask))

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
        return self.find_sent_many(channel, [key], since).get(key)

    def find_sent_many(self, channel: str, keys: Iterable[str], since: datetime) -> dict[str, str]:
        """key -> ts of the messages in `channel` posted after `since` (less a clock margin)
        whose metadata carries the key (`ledger_key`, or one of `ledger_keys`).

        One paged `conversations.history` read for all the keys of a channel.
        """
        wanted = set(keys)
        found: dict[str, str] = {}
        oldest = f"{since.timestamp() - HISTORY_MARGIN_SECONDS:.6f}"
        cursor = None
        while wanted - found.keys():
            self._paced("conversations.history")
            page = self.client.conversations_history(
                channel=channel,
                oldest=oldest,
                limit=200,
                include_all_metadata=True,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") != EVENT_TYPE:
                    continue
                payload = metadata.get("event_payload") or {}
                carried = [payload.get("ledger_key"), *(payload.get("ledger_keys") or [])]
                for key in carried:
                    if key in wanted and key not in found:
                        found[key] = str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return found

    def post(self, channel: str, payload: Mapping[str, Any], key: str | Sequence[str]) -> str:
        """Post the message tagged with its ledger key (or keys); returns its ts.

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
            self._paced("conversations.join")
            self.client.conversations_join(channel=channel)
        return self._post(channel, payload, key)

    def _post(self, channel: str, payload: Mapping[str, Any], key: str | Sequence[str]) -> str:
        event_payload: dict[str, Any] = (
            {"ledger_key": key} if isinstance(key, str) else {"ledger_keys": list(key)}
        )
        response = self.client.chat_postMessage(
            channel=channel,
            text=str(payload["text"]),
            blocks=list(payload.get("blocks") or []),
            metadata={"event_type": EVENT_TYPE, "event_payload": event_payload},
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def post_many(
        self,
        posts: Sequence[Post],
        done: Callable[[Post, str | None, Exception | None], None],
    ) -> None:
        """Send `posts`, concurrently across channels and in order within each channel,
        each channel at most `channel_rate` messages a second; `done(post, ts, error)`
        after each (from a worker thread; `error` None when it was posted).

        A scheduler: channels wait in a heap by the time their next message may
        go; of the channels due, the one with the most messages left goes first
        (so the busiest channel, which bounds the whole, is never kept waiting by
        others), taken by one of `workers` threads. A message that met a 429
        (slack_sdk waited `Retry-After` and sent it again) pushes its channel's
        next message a full interval past its end. Returns when every post is
        done; an exception `done` raised is raised again then (the others still
        went out: they were claimed, and the ledger reconciles them).
        """
        queues: dict[str, deque[Post]] = {}
        for post in posts:
            queues.setdefault(post.channel, deque()).append(post)
        interval = 1.0 / self.channel_rate if self.channel_rate > 0 else 0.0
        waiting: list[tuple[float, str]] = [(0.0, channel) for channel in queues]
        due: list[tuple[int, str]] = []
        heapq.heapify(waiting)
        ready = threading.Condition()
        broken: list[BaseException] = []

        def next_post() -> Post | None:
            with ready:
                while True:
                    now = time.monotonic()
                    while waiting and waiting[0][0] <= now:
                        _, channel = heapq.heappop(waiting)
                        heapq.heappush(due, (-len(queues[channel]), channel))
                    if due:
                        _, channel = heapq.heappop(due)
                        return queues[channel].popleft()
                    if not waiting:
                        return None  # the channels left are in flight: their threads go on
                    ready.wait(waiting[0][0] - now)

        def work() -> None:
            while (post := next_post()) is not None:
                start = time.monotonic()
                try:
                    key: str | tuple[str, ...] = post.keys if post.grouped else post.keys[0]
                    ts: str | None = self.post(
                        post.channel, {"text": post.text, "blocks": post.blocks}, key
                    )
                    error: Exception | None = None
                except Exception as exc:  # reported to the caller, who records it on the row
                    ts, error = None, exc
                end = time.monotonic()
                with ready:
                    if queues[post.channel]:
                        base = start if end - start < interval else end
                        heapq.heappush(waiting, (base + interval, post.channel))
                        ready.notify()
                try:
                    done(post, ts, error)
                except BaseException as exc:  # the caller's own failure (its database): re-raised
                    broken.append(exc)

        threads = [
            threading.Thread(target=work, name=f"slack-post-{i}", daemon=True)
            for i in range(max(1, min(self.workers, len(queues))))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if broken:
            raise broken[0]
