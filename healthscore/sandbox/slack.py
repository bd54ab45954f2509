"""Slack Web API methods the product uses, at `/api/{method}` as Slack serves them.

Slack answers HTTP 200 with `{"ok": false, "error": ...}` for almost every
failure; only rate limiting is an HTTP 429 with `Retry-After`. Bodies may be
form-encoded or JSON (slack_sdk sends JSON for chat.postMessage and forms for
others), and the token may come in the Authorization header or the body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .state import SandboxState, SlackState

TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0HEALTHBOT"


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


def _dm_channel(slack: SlackState, user_id: str) -> str:
    return slack.dms.setdefault(user_id, "D" + user_id.lstrip("UW"))


async def auth_test(request: Request) -> Response:
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


async def users_lookup_by_email(request: Request) -> Response:
    args = await read_args(request)
    email = str(args.get("email") or "").lower()
    if not email:
        return error("invalid_arguments")
    for user in _slack(request).users:
        if user["email"].lower() == email:
            return JSONResponse({"ok": True, "user": _user_json(user)})
    return error("users_not_found")


async def chat_post_message(request: Request) -> Response:
    args = await read_args(request)
    if args.get("__invalid__"):
        return error("invalid_json")
    slack = _slack(request)
    target = str(args.get("channel") or "")
    if not target:
        return error("channel_not_found")
    channel_id: str | None = None
    if target in slack.channels:
        channel_id = target
    elif target.startswith(("U", "W")) and slack.user_by_id(target):
        channel_id = _dm_channel(slack, target)
    elif target.startswith("D") and target in slack.dms.values():
        channel_id = target
    else:
        found = slack.channel_by_name(target)
        channel_id = found["id"] if found else None
    if channel_id is None:
        return error("channel_not_found")
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            return error("invalid_blocks_format")
    text = args.get("text")
    if not text and not blocks and not args.get("attachments"):
        return error("no_text")
    ts = slack.next_ts()
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": "B0HEALTHBOT",
        "text": text or "",
        "ts": ts,
        "team": TEAM_ID,
    }
    if blocks:
        message["blocks"] = blocks
    if args.get("thread_ts"):
        message["thread_ts"] = str(args["thread_ts"])
    metadata = args.get("metadata")
    if isinstance(metadata, str) and metadata:
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return error("invalid_metadata_format")
    if metadata:
        if not isinstance(metadata, dict) or not metadata.get("event_type"):
            return error("invalid_metadata_schema")
        message["metadata"] = {
            "event_type": str(metadata["event_type"]),
            "event_payload": dict(metadata.get("event_payload") or {}),
        }
    slack.messages.append(
        {"channel": channel_id, "channel_name": _name(slack, channel_id), **message}
    )
    return JSONResponse({"ok": True, "channel": channel_id, "ts": ts, "message": message})


def _name(slack: SlackState, channel_id: str) -> str | None:
    channel = slack.channels.get(channel_id)
    if channel:
        return str(channel["name"])
    for user_id, dm in slack.dms.items():
        if dm == channel_id:
            return f"@{user_id}"
    return None


async def conversations_list(request: Request) -> Response:
    args = await read_args(request)
    slack = _slack(request)
    try:
        limit = min(int(args.get("limit") or 100), 1000)
        start = int(args.get("cursor") or 0)
    except ValueError:
        return error("invalid_cursor")
    exclude_archived = str(args.get("exclude_archived", "false")).lower() in ("true", "1")
    channels = [c for c in slack.channels.values() if not (exclude_archived and c["is_archived"])]
    page = channels[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(channels) else ""
    return JSONResponse(
        {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}
    )


async def conversations_open(request: Request) -> Response:
    args = await read_args(request)
    slack = _slack(request)
    if args.get("channel"):
        channel = str(args["channel"])
        if channel in slack.dms.values():
            return JSONResponse({"ok": True, "channel": {"id": channel}})
        return error("channel_not_found")
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        return error("users_list_not_supplied")
    for user_id in users:
        if slack.user_by_id(user_id) is None:
            return error("user_not_found")
    if len(users) > 1:
        return error("not_supported")  # group DMs are not part of the sandbox
    channel_id = _dm_channel(slack, users[0])
    return JSONResponse({"ok": True, "channel": {"id": channel_id}})


async def conversations_history(request: Request) -> Response:
    """Messages of a channel, newest first, as Slack pages them (cursor, `has_more`).

    `oldest`/`latest` bound the ts (exclusive unless `inclusive`); message
    metadata is only returned with `include_all_metadata`, as Slack does.
    """
    args = await read_args(request)
    slack = _slack(request)
    channel = str(args.get("channel") or "")
    if channel not in slack.channels and channel not in slack.dms.values():
        return error("channel_not_found")
    try:
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or 0) or None
        limit = max(1, min(int(args.get("limit") or 100), 999))
        start = int(args.get("cursor") or 0)
    except ValueError:
        return error("invalid_arguments")
    inclusive = _truthy(args.get("inclusive"))
    with_metadata = _truthy(args.get("include_all_metadata"))

    def within(ts: float) -> bool:
        above = ts >= oldest if inclusive else ts > oldest
        below = latest is None or (ts <= latest if inclusive else ts < latest)
        return above and below

    found = [
        m for m in reversed(slack.messages) if m["channel"] == channel and within(float(m["ts"]))
    ]
    page = found[start : start + limit]
    out = []
    for stored in page:
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


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1") if value is not None else False


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
        Route("/api/{method}", unknown_method, methods=methods),
    ]
