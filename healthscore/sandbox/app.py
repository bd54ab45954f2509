"""The single ASGI app serving HubSpot, Slack and Jira, plus `/_sandbox/*` inspection.

`SandboxApp` is a gate in front of a Starlette router. For every vendor call it
counts the call, checks authentication in the vendor's way (and, with a tokens
table, HubSpot's scopes), then decides a fault (before any handler runs, so a
faulted write is never applied), then applies HubSpot's rate limits, and only
then routes the request. Faults *after* a write are the one exception: the
handler runs and changes state, then the client gets a drop or a 5xx instead of
the answer (`Limits.set_faults_after_write`). A dropped connection
is made by returning a value from the ASGI callable: uvicorn then closes the
socket without writing a response, which the client sees as the server
hanging up — exactly what a flaky proxy does.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from healthscore.core.crm import SnapshotError

from . import hubspot, hubspot_exports, hubspot_scopes, jira, slack
from .limits import Fault, Limits
from .state import SandboxState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Returned from the ASGI callable to make uvicorn close the socket with no response.
DROPPED = "healthscore-sandbox: dropped connection"
FAULT_RETRY_AFTER = 1


def vendor_of(path: str) -> str | None:
    if path.startswith(("/crm/", "/account-info/", "/oauth/")):
        return "hubspot"
    if path.startswith("/api/"):
        return "slack"
    if path.startswith("/rest/"):
        return "jira"
    return None


def is_write(vendor: str, method: str, path: str) -> bool:
    """Whether a call changes vendor state: the only calls faults-after-write touch.

    HubSpot: every POST/PATCH/PUT/DELETE except searches, batch reads and token
    info; Slack: `chat.postMessage`; Jira: POST/PUT/DELETE except JQL searches.
    """
    path = path.rstrip("/")
    if vendor == "hubspot":
        if method == "POST":
            return not (path.endswith(("/search", "/batch/read")) or path.startswith("/oauth/"))
        return method in ("PATCH", "PUT", "DELETE")
    if vendor == "slack":
        return path == "/api/chat.postMessage"
    return method in ("POST", "PUT", "DELETE") and "/search" not in path


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() in ("bearer", "basic") and credential.strip():
        return credential.strip()
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that keeps the connection open
        return {"type": "http.disconnect"}

    return receive


def _slack_body_token(body: bytes, content_type: str) -> str | None:
    from urllib.parse import parse_qs

    try:
        if "json" in content_type:
            value = json.loads(body or b"{}").get("token")
        else:
            value = parse_qs(body.decode("utf-8")).get("token", [None])[-1]
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


class SandboxApp:
    """ASGI callable: the gate (auth, faults, limits, stats) around the vendor routes."""

    def __init__(
        self,
        state: SandboxState,
        limits: Limits,
        tokens: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.state = state
        self.limits = limits
        # None: any non-empty token has every scope (the default, as before tokens existed).
        self.tokens = hubspot_scopes.normalize_tokens(tokens) if tokens is not None else None
        self.router = Starlette(
            routes=[
                *_inspection_routes(),
                *hubspot.routes(),
                *hubspot_exports.routes(),
                *hubspot_scopes.routes(),
                *slack.routes(),
                *jira.routes(),
            ],
            exception_handlers={
                hubspot.HubSpotError: _hubspot_error,
                jira.JiraApiError: _jira_error,
            },
        )
        self.router.state.sandbox = state
        self.router.state.limits = limits
        self.router.state.tokens = self.tokens

    def endpoint_name(self, scope: Scope) -> str:
        """`METHOD /path-template`, the key of the per-endpoint call counts."""
        found = None
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                found = getattr(route, "path", None)
                break
            if match is Match.PARTIAL and found is None:
                found = getattr(route, "path", None)
        template = re.sub(r"\{(\w+):\w+\}", r"{\1}", found or scope["path"])
        return f"{scope['method']} {template.rstrip('/') or '/'}"

    def _route_of(self, scope: Scope) -> tuple[str, dict[str, str]] | None:
        for route in self.router.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                template = str(getattr(route, "path", scope["path"]))
                return template, dict(child.get("path_params", {}))
        return None

    def hubspot_refusal(self, scope: Scope, token: str) -> Response | None:
        """401 for a token the tokens table does not know, 403 for a missing scope.

        The scopes come from the one table in `hubspot_scopes` (built from the
        `security` entries of HubSpot's OpenAPI collection).
        """
        if self.tokens is None or scope["path"].startswith("/oauth/"):
            return None
        granted = self.tokens.get(token)
        if granted is None:
            return hubspot.unauthorized().response()
        found = self._route_of(scope)
        if found is None:
            return None
        template, params = found
        needed = hubspot_scopes.scopes_for(
            scope["method"], template, params, self.state.hubspot.resolve_type
        )
        if needed is None or hubspot_scopes.granted(needed, granted):
            return None
        return hubspot_scopes.missing_scopes(needed)

    async def _route(self, vendor: str, scope: Scope, receive: Receive, send: Send) -> object:
        """Route; for a write, maybe swap the applied write's answer for a drop or a 5xx."""
        if not is_write(vendor, scope["method"], scope["path"]):
            await self.router(scope, receive, send)
            return None
        fault = self.limits.decide_fault_after_write()
        if fault is None:
            await self.router(scope, receive, send)
            return None
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.router(scope, receive, hold)
        status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
        if status >= 400:  # refused, so nothing was written: the real answer goes out
            for message in held:
                await send(message)
            return None
        self.limits.record_fault_after_write(fault)
        if fault is Fault.DROP:
            return DROPPED
        await _fault_response(vendor, fault)(scope, receive, send)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> object:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return None
        vendor = vendor_of(scope["path"])
        if vendor is None:
            if hubspot_exports.is_file_path(scope["path"]):
                # An export's file link: counted, but like HubSpot's file links it needs
                # no token and spends no API rate limit.
                self.limits.record_call(self.endpoint_name(scope))
            await self.router(scope, receive, send)
            return None
        self.limits.record_call(self.endpoint_name(scope))
        headers = Headers(scope=scope)
        token = _bearer(headers)
        if vendor == "slack" and token is None:
            body = await _read_body(receive)
            receive = _replay(body)
            token = _slack_body_token(body, headers.get("content-type", ""))
        if token is None and not _anonymous(vendor, scope["path"]):
            await _unauthorized(vendor)(scope, receive, send)
            return None
        refusal = self.hubspot_refusal(scope, token or "") if vendor == "hubspot" else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return None
        fault = self.limits.decide_fault(scope["path"])
        if fault is Fault.DROP:
            return DROPPED
        if fault is Fault.CUT:  # the call is answered, but its body stops halfway
            answered = await self._gated(vendor, scope, receive, _Cut(send), token)
            return answered or DROPPED
        if fault is Fault.SLOW:
            await asyncio.sleep(self.limits.slow_seconds)
        elif fault is not None:
            await _fault_response(vendor, fault)(scope, receive, send)
            return None
        return await self._gated(vendor, scope, receive, send, token)

    async def _gated(
        self, vendor: str, scope: Scope, receive: Receive, send: Send, token: str | None
    ) -> object:
        """The call past auth and faults: HubSpot's rate limits (and headers), then the route."""
        if vendor != "hubspot":
            return await self._route(vendor, scope, receive, send)
        is_search = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/search")
        verdict = self.limits.check_hubspot(token or "anonymous", search=is_search)
        if not verdict.allowed:
            await hubspot.rate_limited(verdict.policy or "", verdict.headers()).response()(
                scope, receive, send
            )
            return None
        # HubSpot's search responses do not carry the X-HubSpot-RateLimit-* headers.
        extra = (
            []
            if is_search
            else [(k.lower().encode(), v.encode()) for k, v in verdict.headers().items()]
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self._route(vendor, scope, receive, send_with_headers)


class _Cut:
    """An ASGI `send` that passes an answer's start and the first half of its body,
    with more to come, and nothing after: the connection then closes mid-body (a
    `Fault.CUT`), as a proxy or a load balancer that gives up mid-answer does."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            return
        self.body += message.get("body", b"")
        if not message.get("more_body"):
            await self.send(self.start)
            half = bytes(self.body[: len(self.body) // 2])
            await self.send({"type": "http.response.body", "body": half, "more_body": True})


def _anonymous(vendor: str, path: str) -> bool:
    """Calls that need no credentials: Jira's serverInfo, HubSpot's token introspection."""
    if vendor == "jira":
        return path.endswith("/serverInfo")
    return vendor == "hubspot" and path.startswith("/oauth/")


def _unauthorized(vendor: str) -> Response:
    if vendor == "hubspot":
        return hubspot.unauthorized().response()
    if vendor == "slack":
        return slack.unauthorized()
    return jira.unauthorized()


def _fault_response(vendor: str, fault: Fault) -> Response:
    status = fault.status or 500
    if vendor == "hubspot":
        if fault is Fault.RATE_LIMITED:
            return hubspot.rate_limited(
                "TEN_SECONDLY_ROLLING",
                {"Retry-After": str(FAULT_RETRY_AFTER), "X-HubSpot-RateLimit-Remaining": "0"},
            ).response()
        return hubspot.server_error(status).response()
    if vendor == "slack":
        if fault is Fault.RATE_LIMITED:
            return slack.rate_limited(FAULT_RETRY_AFTER)
        return slack.server_error(status)
    if fault is Fault.RATE_LIMITED:
        return jira.rate_limited(FAULT_RETRY_AFTER)
    return jira.server_error(status)


async def _hubspot_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, hubspot.HubSpotError)
    return exc.response()


async def _jira_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, jira.JiraApiError)
    return exc.response()


# ---------------------------------------------------------------- inspection


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


async def _stats(request: Request) -> Response:
    return JSONResponse(_limits(request).stats.to_json())


async def _clear_stats(request: Request) -> Response:
    _limits(request).clear_stats()
    return JSONResponse({"ok": True})


async def _slack_messages(request: Request) -> Response:
    return JSONResponse({"messages": _state(request).slack.messages})


async def _jira_issues(request: Request) -> Response:
    issues = _state(request).jira.issues.values()
    return JSONResponse({"issues": [jira.issue_json(request, i) for i in issues]})


async def _hubspot_lists(request: Request) -> Response:
    lists = _state(request).hubspot.lists.values()
    return JSONResponse(
        {"lists": [{**lst.to_json(), "members": list(lst.members)} for lst in lists]}
    )


async def _reset(request: Request) -> Response:
    raw = await request.body()
    try:
        seed = json.loads(raw) if raw.strip() else None
        _state(request).reset(seed)
    except (json.JSONDecodeError, SnapshotError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    _limits(request).reset_windows()
    return JSONResponse({"ok": True})


async def _faults(request: Request) -> Response:
    """`{"rate": p, "seed": n, "kinds": ["429", ...], "path": "/account-info/", "limit": 6}`
    (kinds: 429, 500, 502, 503, slow, drop, and cut, drawn only when named):
    faults decided before the handler; `path` and `limit` (optional) scope them to requests
    under a path and to a number of faults."""
    try:
        body = json.loads(await request.body() or b"{}")
        kinds = [Fault(str(k)) for k in body["kinds"]] if body.get("kinds") else None
        limit = body.get("limit")
        _limits(request).set_faults(
            float(body.get("rate", 0.0)),
            int(body.get("seed", 0)),
            kinds,
            path=str(body.get("path") or ""),
            limit=None if limit is None else int(limit),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True, "rate": _limits(request).fault_rate})


async def _faults_after_write(request: Request) -> Response:
    """`{"rate": p, "seed": n, "kinds": ["drop", "500", ...]}`: faults after applied writes."""
    try:
        body = json.loads(await request.body() or b"{}")
        kinds = [Fault(str(k)) for k in body["kinds"]] if body.get("kinds") else None
        _limits(request).set_faults_after_write(
            float(body.get("rate", 0.0)), int(body.get("seed", 0)), kinds
        )
    except (ValueError, TypeError, AttributeError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    limits = _limits(request)
    return JSONResponse(
        {
            "ok": True,
            "rate": limits.after_write_rate,
            "kinds": [k.value for k in limits.after_write_kinds],
        }
    )


def _inspection_routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/stats", _stats, methods=["GET"]),
        Route("/_sandbox/clear-stats", _clear_stats, methods=["POST"]),
        Route("/_sandbox/slack/messages", _slack_messages, methods=["GET"]),
        Route("/_sandbox/jira/issues", _jira_issues, methods=["GET"]),
        Route("/_sandbox/hubspot/lists", _hubspot_lists, methods=["GET"]),
        Route("/_sandbox/reset", _reset, methods=["POST"]),
        Route("/_sandbox/faults", _faults, methods=["POST"]),
        Route("/_sandbox/faults-after-write", _faults_after_write, methods=["POST"]),
    ]


def create_app(
    state: SandboxState | None = None,
    *,
    limits: Limits | None = None,
    rate_limit: int = 190,
    search_rate_per_second: float = 5,
    faults: float = 0.0,
    fault_seed: int = 0,
    slow_seconds: float = 0.5,
    faults_after_write: float = 0.0,
    tokens: Mapping[str, Sequence[str]] | None = None,
) -> SandboxApp:
    """The ASGI app; pass `limits` to share one, or the knobs to build one.

    `tokens` (`{"token": ["scope", ...]}`) turns on HubSpot's scope checks: other
    tokens get 401 and calls missing a scope 403. `faults_after_write` is the
    probability (seeded by `fault_seed`) that an applied write answers with a
    drop or a 5xx.
    """
    if limits is None:
        limits = Limits(
            rate_limit=rate_limit,
            search_rate_per_second=search_rate_per_second,
            faults=faults,
            fault_seed=fault_seed,
            slow_seconds=slow_seconds,
            faults_after_write=faults_after_write,
        )
    return SandboxApp(state or SandboxState.from_seed(None), limits, tokens)
