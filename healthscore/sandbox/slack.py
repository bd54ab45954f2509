"""Slack Web API methods the product uses, at `/api/{method}` as Slack serves them.

Source: Slack's published OpenAPI spec, slackapi/slack-api-specs
`web-api/slack_web_openapi_v2.json` (each method's `security` scopes and `default`
error enum), and the method pages it links (https://api.slack.com/methods/...).

Slack answers HTTP 200 with `{"ok": false, "error": ...}` for almost every
failure; only rate limiting is an HTTP 429 with `Retry-After`. Bodies may be
form-encoded or JSON (slack_sdk sends JSON for chat.postMessage and forms for
others), and the token may come in the Authorization header or the body. Every
answer to a known token carries `x-oauth-scopes` (the token's scopes) and
`x-accepted-oauth-scopes` (what the method takes), as Slack's do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .limits import Limits
from .state import BOT_USER_ID, SandboxState, SlackState

TEAM_ID = "T0SANDBOX"

# What a token holds when the state has no token mapping: every scope a method here
# checks. `chat:write.public` is left out on purpose: with it a bot posts to public
# channels it is not in, and the default must still show `not_in_channel`.
ALL_SCOPES = (
    "chat:write",
    "users:read",
    "users:read.email",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "im:write",
    "channels:history",
    "groups:history",
    "im:history",
    "channels:join",
)
# conversations.list `types` -> the scope each needs (the method's `security` in the spec).
TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}
MAX_TEXT = 40_000  # chat.postMessage `msg_too_long`
MAX_BLOCKS = 50
TEXT_LIMITS = {"section": 3000, "header": 150}  # Block Kit: a block's text.text


def error(code: str, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code}, status_code=status, headers=headers)


def rate_limited(retry_after: int = 1) -> JSONResponse:
    return error("ratelimited", 429, {"Retry-After": str(retry_after)})


def server_error(status: int) -> JSONResponse:
    return error("fatal_error" if status == 500 else "service_unavailable", status)


def unauthorized() -> JSONResponse:
    return error("not_authed")


async def read_args(request: Request) -> dict[str, Any]:
    """Query string, then form or JSON body, merged as Slack does."""
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return args
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return {**args, "__invalid__": True}
        if isinstance(body, dict):
            args.update(body)
    else:
        for key, values in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items():
            args[key] = values[-1]
    return args


def _slack(request: Request) -> SlackState:
    state: SandboxState = request.app.state.sandbox
    return state.slack


# ---------------------------------------------------------------- tokens and scopes


@dataclass(frozen=True)
class Call:
    """One method call: its arguments, the Slack state and the caller's scopes."""

    args: dict[str, Any]
    slack: SlackState
    scopes: tuple[str, ...]

    def missing_scope(self, *needed: str) -> Response | None:
        """Slack's refusal when any of `needed` is not granted: `needed` and `provided` named."""
        lacking = [s for s in needed if s not in self.scopes]
        if not lacking:
            return None
        return JSONResponse(
            {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(lacking),
                "provided": ",".join(self.scopes),
            }
        )


def _token(request: Request, args: dict[str, Any]) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    return str(args.get("token") or "")


def granted(slack: SlackState, token: str) -> tuple[str, ...] | None:
    """The token's scopes; None for a token Slack does not know (`invalid_auth`)."""
    if slack.tokens is None:
        return ALL_SCOPES if token else None
    return slack.tokens.get(token)


Handler = Callable[[Call, Request], Awaitable[Response]]


def method(accepted: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: resolve the token's scopes, refuse unknown tokens, stamp the headers."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            args = await read_args(request)
            slack = _slack(request)
            scopes = granted(slack, _token(request, args))
            if scopes is None:
                return error("invalid_auth")
            response = await handler(Call(args, slack, scopes), request)
            response.headers["x-oauth-scopes"] = ",".join(scopes)
            response.headers["x-accepted-oauth-scopes"] = accepted
            return response

        return endpoint

    return wrap


# ---------------------------------------------------------------- shapes


def _user_json(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "team_id": TEAM_ID,
        "name": user["email"].split("@")[0],
        "real_name": user["name"],
        "deleted": False,
        "is_bot": False,
        "tz": "Etc/UTC",
        "profile": {
            "email": user["email"],
            "real_name": user["name"],
            "display_name": user["name"],
        },
    }


def channel_json(slack: SlackState, channel_id: str) -> dict[str, Any]:
    """A conversation object as conversations.list returns it, `is_member` for the bot."""
    return {
        **slack.channels[channel_id],
        "is_member": slack.bot_in(channel_id),
        "num_members": len(slack.members.get(channel_id, ())),
    }


def _im_json(user_id: str, channel_id: str) -> dict[str, Any]:
    return {"id": channel_id, "is_im": True, "user": user_id, "is_user_deleted": False}


def _dm_channel(slack: SlackState, user_id: str) -> str:
    return slack.dms.setdefault(user_id, "D" + user_id.lstrip("UW"))


def _visible(slack: SlackState, channel_id: str) -> bool:
    """Private channels the bot is not in do not exist for it (`channel_not_found`)."""
    channel = slack.channels.get(channel_id)
    return channel is not None and (not channel["is_private"] or slack.bot_in(channel_id))


def _name(slack: SlackState, channel_id: str) -> str | None:
    channel = slack.channels.get(channel_id)
    if channel:
        return str(channel["name"])
    for user_id, dm in slack.dms.items():
        if dm == channel_id:
            return f"@{user_id}"
    return None


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1") if value is not None else False


# ---------------------------------------------------------------- auth and users


@method("")
async def auth_test(call: Call, request: Request) -> Response:
    """`auth.test` (spec: `/auth.test`, scope `none`); its `x-oauth-scopes` tells a doctor
    what the token was granted."""
    return JSONResponse(
        {
            "ok": True,
            "url": str(request.base_url),
            "team": "Healthscore Sandbox",
            "user": "healthscore",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": "B0HEALTHBOT",
            "is_enterprise_install": False,
        }
    )


@method("users:read.email")
async def users_lookup_by_email(call: Call, request: Request) -> Response:
    """`users.lookupByEmail` (spec: `/users.lookupByEmail`, scope `users:read.email`;
    errors `users_not_found`, `invalid_arguments` for no email)."""
    if refused := call.missing_scope("users:read.email"):
        return refused
    email = str(call.args.get("email") or "").lower()
    if not email:
        return error("invalid_arguments")
    for user in call.slack.users:
        if user["email"].lower() == email:
            return JSONResponse({"ok": True, "user": _user_json(user)})
    return error("users_not_found")


# ---------------------------------------------------------------- chat.postMessage


def _resolve_target(slack: SlackState, target: str) -> str | None:
    """A channel id from an id, `#name`/name, a user id (their DM) or a DM id."""
    if target in slack.channels:
        return target if _visible(slack, target) else None
    if target.startswith(("U", "W")) and slack.user_by_id(target):
        return _dm_channel(slack, target)
    if target.startswith("D") and target in slack.dms.values():
        return target
    found = slack.channel_by_name(target)
    return found["id"] if found and _visible(slack, found["id"]) else None


def _where_refusal(call: Call, channel_id: str) -> Response | None:
    """`is_archived`, or `not_in_channel` for a public channel the bot has not joined
    (unless the token holds `chat:write.public`); DMs are always open."""
    channel = call.slack.channels.get(channel_id)
    if channel is None:
        return None
    if channel["is_archived"]:
        return error("is_archived")
    if not call.slack.bot_in(channel_id) and "chat:write.public" not in call.scopes:
        return error("not_in_channel")
    return None


def block_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack's first Block Kit complaint, `message [json-pointer:/blocks/...]`; [] if fine.

    Limits from Block Kit's reference: 50 blocks a message, a section's text 3,000
    characters, a header's 150, neither empty.
    """
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    for i, block in enumerate(blocks):
        limit = TEXT_LIMITS.get(str(block.get("type")))
        if limit is None:
            continue
        text_object = block.get("text")
        if not isinstance(text_object, dict):
            if block.get("type") == "section" and block.get("fields"):
                continue
            return [f"missing required field: text [json-pointer:/blocks/{i}]"]
        text = str(text_object.get("text") or "")
        pointer = f"[json-pointer:/blocks/{i}/text/text]"
        if not text.strip():
            return [f"must be more than 0 characters {pointer}"]
        if len(text) > limit:
            return [f"must be less than {limit + 1} characters {pointer}"]
    return []


def _invalid_blocks(messages: list[str]) -> JSONResponse:
    """`invalid_blocks` with Slack's detail: `errors` and `response_metadata.messages`."""
    return JSONResponse(
        {
            "ok": False,
            "error": "invalid_blocks",
            "errors": messages,
            "response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]},
        }
    )


def _checked_blocks(args: dict[str, Any]) -> Response | list[dict[str, Any]]:
    """The blocks to post, or Slack's refusal of the text and blocks."""
    blocks = args.get("blocks") or []
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            return error("invalid_blocks_format")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        return error("invalid_blocks_format")
    text = str(args.get("text") or "")
    if len(text) > MAX_TEXT:
        return error("msg_too_long")
    if not text and not blocks and not args.get("attachments"):
        return error("no_text")
    problems = block_errors(blocks)
    return _invalid_blocks(problems) if problems else blocks


def _metadata(args: dict[str, Any]) -> Response | dict[str, Any] | None:
    metadata = args.get("metadata")
    if isinstance(metadata, str) and metadata:
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return error("invalid_metadata_format")
    if not metadata:
        return None
    if not isinstance(metadata, dict) or not metadata.get("event_type"):
        return error("invalid_metadata_schema")
    return {
        "event_type": str(metadata["event_type"]),
        "event_payload": dict(metadata.get("event_payload") or {}),
    }


def _slow_down(request: Request, call: Call, channel_id: str) -> Response | None:
    """HTTP 429 `ratelimited` with `Retry-After` (whole seconds, at least 1) when the
    channel's bucket is empty; Slack's chat.postMessage allows ~1 message/s per channel."""
    wait = call.slack.take_send_slot(channel_id)
    if wait <= 0:
        return None
    limits: Limits = request.app.state.limits
    limits.record_rate_limited()
    return rate_limited(max(1, math.ceil(wait)))


@method("chat:write")
async def chat_post_message(call: Call, request: Request) -> Response:
    """`chat.postMessage` (spec: `/chat.postMessage`, scope `chat:write`; errors
    `channel_not_found`, `not_in_channel`, `is_archived`, `msg_too_long`, `no_text`,
    plus `invalid_blocks`/`invalid_blocks_format` from the method page). Attachments
    count as content but are neither checked nor stored."""
    if call.args.get("__invalid__"):
        return error("invalid_json")
    if refused := call.missing_scope("chat:write"):
        return refused
    channel_id = _resolve_target(call.slack, str(call.args.get("channel") or ""))
    if channel_id is None:
        return error("channel_not_found")
    if refused := _where_refusal(call, channel_id):
        return refused
    blocks = _checked_blocks(call.args)
    if isinstance(blocks, Response):
        return blocks
    metadata = _metadata(call.args)
    if isinstance(metadata, Response):
        return metadata
    if refused := _slow_down(request, call, channel_id):
        return refused
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": "B0HEALTHBOT",
        "text": str(call.args.get("text") or ""),
        "ts": call.slack.next_ts(),
        "team": TEAM_ID,
    }
    if blocks:
        message["blocks"] = blocks
    if call.args.get("thread_ts"):
        message["thread_ts"] = str(call.args["thread_ts"])
    if metadata:
        message["metadata"] = metadata
    name = _name(call.slack, channel_id)
    call.slack.messages.append({"channel": channel_id, "channel_name": name, **message})
    return JSONResponse(
        {"ok": True, "channel": channel_id, "ts": message["ts"], "message": message}
    )


# ---------------------------------------------------------------- conversations


def _listed(slack: SlackState, types: list[str]) -> list[dict[str, Any]]:
    """Public channels, the private ones the bot is in, and DMs, as `types` asks."""
    out: list[dict[str, Any]] = []
    for channel_id, channel in slack.channels.items():
        kind = "private_channel" if channel["is_private"] else "public_channel"
        if kind in types and _visible(slack, channel_id):
            out.append(channel_json(slack, channel_id))
    if "im" in types:
        out.extend(_im_json(user, dm) for user, dm in slack.dms.items())
    return out


@method("channels:read,groups:read,im:read,mpim:read")
async def conversations_list(call: Call, request: Request) -> Response:
    """`conversations.list` (spec: `/conversations.list`, scopes per type: public_channel
    `channels:read`, private_channel `groups:read`, im `im:read`, mpim `mpim:read`).

    `types` defaults to public_channel; `limit` is at most 1000; `cursor` pages with
    `response_metadata.next_cursor` ("" on the last page).
    """
    types = [t.strip() for t in str(call.args.get("types") or "public_channel").split(",")]
    types = [t for t in types if t in TYPE_SCOPES]
    if refused := call.missing_scope(*dict.fromkeys(TYPE_SCOPES[t] for t in types)):
        return refused
    try:
        limit = min(int(call.args.get("limit") or 100), 1000)
        start = int(call.args.get("cursor") or 0)
    except ValueError:
        return error("invalid_cursor")
    limit = limit if limit > 0 else 100
    channels = _listed(call.slack, types)
    if _truthy(call.args.get("exclude_archived")):
        channels = [c for c in channels if not c.get("is_archived")]
    page = channels[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(channels) else ""
    return JSONResponse(
        {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}
    )


@method("channels:write,groups:write,im:write,mpim:write")
async def conversations_open(call: Call, request: Request) -> Response:
    """`conversations.open` (spec: `/conversations.open`; a 1:1 DM needs `im:write`;
    errors `users_list_not_supplied`, `user_not_found`, `channel_not_found`)."""
    if refused := call.missing_scope("im:write"):
        return refused
    slack = call.slack
    if call.args.get("channel"):
        channel = str(call.args["channel"])
        if channel in slack.dms.values():
            return JSONResponse({"ok": True, "channel": {"id": channel}})
        return error("channel_not_found")
    users = [u.strip() for u in str(call.args.get("users") or "").split(",") if u.strip()]
    if not users:
        return error("users_list_not_supplied")
    for user_id in users:
        if slack.user_by_id(user_id) is None:
            return error("user_not_found")
    if len(users) > 1:
        return error("not_supported")  # group DMs are not part of the sandbox
    return JSONResponse({"ok": True, "channel": {"id": _dm_channel(slack, users[0])}})


def _history_scope(slack: SlackState, channel_id: str) -> str:
    if channel_id in slack.channels:
        return "groups:history" if slack.channels[channel_id]["is_private"] else "channels:history"
    return "im:history"


@method("channels:history,groups:history,im:history,mpim:history")
async def conversations_history(call: Call, request: Request) -> Response:
    """`conversations.history` (spec: `/conversations.history`; scope by the channel's kind:
    `channels:history`, `groups:history`, `im:history`), newest first, paged by cursor
    with `has_more`; `not_in_channel` for a public channel the bot has not joined.

    `oldest`/`latest` bound the ts (exclusive unless `inclusive`); message
    metadata is only returned with `include_all_metadata`, as Slack does.
    """
    slack = call.slack
    channel = str(call.args.get("channel") or "")
    if not _visible(slack, channel) and channel not in slack.dms.values():
        return error("channel_not_found")
    if refused := call.missing_scope(_history_scope(slack, channel)):
        return refused
    if channel in slack.channels and not slack.bot_in(channel):
        return error("not_in_channel")
    try:
        oldest = float(call.args.get("oldest") or 0)
        latest = float(call.args.get("latest") or 0) or None
        limit = max(1, min(int(call.args.get("limit") or 100), 999))
        start = int(call.args.get("cursor") or 0)
    except ValueError:
        return error("invalid_arguments")
    inclusive = _truthy(call.args.get("inclusive"))
    with_metadata = _truthy(call.args.get("include_all_metadata"))

    def within(ts: float) -> bool:
        above = ts >= oldest if inclusive else ts > oldest
        below = latest is None or (ts <= latest if inclusive else ts < latest)
        return above and below

    found = [
        m for m in reversed(slack.messages) if m["channel"] == channel and within(float(m["ts"]))
    ]
    out = []
    for stored in found[start : start + limit]:
        message = {k: v for k, v in stored.items() if k not in ("channel", "channel_name")}
        if not with_metadata:
            message.pop("metadata", None)
        out.append(message)
    more = start + limit < len(found)
    return JSONResponse(
        {
            "ok": True,
            "messages": out,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }
    )


@method("channels:join")
async def conversations_join(call: Call, request: Request) -> Response:
    """`conversations.join` (spec: `/conversations.join`; errors `channel_not_found`,
    `method_not_supported_for_channel_type`, `is_archived`). The spec names the user
    token's `channels:write`; bot tokens need `channels:join` (method page), checked here.

    Public channels only; joining twice succeeds with Slack's `already_in_channel` warning.
    """
    if refused := call.missing_scope("channels:join"):
        return refused
    slack = call.slack
    channel_id = str(call.args.get("channel") or "")
    if channel_id in slack.dms.values():
        return error("method_not_supported_for_channel_type")
    channel = slack.channels.get(channel_id)
    if channel is None:
        return error("channel_not_found")
    if channel["is_private"]:
        return error("method_not_supported_for_channel_type")
    if channel["is_archived"]:
        return error("is_archived")
    body: dict[str, Any] = {"ok": True}
    if slack.bot_in(channel_id):
        body["warning"] = "already_in_channel"
        body["response_metadata"] = {"warnings": ["already_in_channel"]}
    slack.members.setdefault(channel_id, set()).add(BOT_USER_ID)
    body["channel"] = channel_json(slack, channel_id)
    return JSONResponse(body)


async def unknown_method(request: Request) -> Response:
    return error("unknown_method", 404)


def routes() -> list[BaseRoute]:
    methods = ["POST", "GET"]
    return [
        Route("/api/auth.test", auth_test, methods=methods),
        Route("/api/users.lookupByEmail", users_lookup_by_email, methods=methods),
        Route("/api/chat.postMessage", chat_post_message, methods=methods),
        Route("/api/conversations.list", conversations_list, methods=methods),
        Route("/api/conversations.open", conversations_open, methods=methods),
        Route("/api/conversations.history", conversations_history, methods=methods),
        Route("/api/conversations.join", conversations_join, methods=methods),
        Route("/api/{method}", unknown_method, methods=methods),
    ]
