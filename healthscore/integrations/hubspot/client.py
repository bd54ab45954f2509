"""The one place that builds HubSpot clients: address, token, retries, rate limits.

The source, the write-back and the actions all call HubSpot through
`HubSpotConnection`, so the retry policy and the in-process rate limiter are
set once. Retries go through urllib3's `Retry` inside `hubspot-api-client`; its
defaults skip POST (search, batch reads), hence `allowed_methods=None` — except
for the POSTs that create a record (`WriteOnceRetry`): HubSpot has no
idempotency key for them, so once such a request may have reached the server
only the action ledger retries it, after looking for the record first.
The rate limiter keeps us under HubSpot's burst and search limits instead of
leaning on 429s (HubSpot counts 429s against the app's reputation).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from hubspot import HubSpot
from urllib3 import PoolManager
from urllib3.exceptions import HTTPError, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from healthscore.errors import ConfigError, VendorError
from healthscore.integrations.hubspot.exports import EXPORT_WAIT
from healthscore.integrations.pacing import RateLimiter

HUBSPOT_URL = "https://api.hubapi.com"
SANDBOX_URL = "http://127.0.0.1:8765"
TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
BASE_URL_ENV = "HUBSPOT_BASE_URL"
SANDBOX_URL_ENV = "HEALTHSCORE_SANDBOX_URL"

ANNOUNCED_SHARE = 0.98  # `fit_limits`: the share of HubSpot's announced burst limit we use
CUT_BODY_ATTEMPTS = 3  # `call_json`: an answer cut off mid-body is asked for again

T = TypeVar("T")


class HubSpotConfigError(ConfigError):
    """HubSpot cannot be called: no token, or a bad address."""


CREATING_POST = re.compile(
    r"^(/crm/v\d+/objects/[^/]+|/crm/v\d+/lists|/crm/v\d+/objects/[^/]+/batch/create)/?$"
)
"""POST paths that create something each time they are applied: never re-sent by the client."""


class WriteOnceRetry(Retry):
    """urllib3 `Retry` that never re-sends a creating POST which may have reached HubSpot.

    Re-sent: a connection that was never established (nothing was sent) and a
    429 (HubSpot refused it before applying it). Not re-sent: a dropped
    answer, a read timeout or a 5xx, after which the record may exist; the
    caller gets the error and the ledger reconciles (task subject and due time)
    before trying again. Every other request keeps the normal retries.
    """

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        path = (url or "").split("?", 1)[0]
        if (method or "").upper() == "POST" and CREATING_POST.match(path):
            safe = (error is not None and self._is_connection_error(error)) or (
                response is not None and getattr(response, "status", None) == 429
            )
            if not safe:
                reason = error or ResponseError(
                    f"HTTP {getattr(response, 'status', '?')} on a creating POST: not re-sent"
                )
                raise MaxRetryError(_pool, url or "", reason)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def no_wait_retry() -> Retry:
    """Retries only for a connection that was never made: for a request whose refusal
    (a 429 of a daily limit, a 5xx) the caller answers by doing without it, not by
    waiting (urllib3 would sleep for whatever `Retry-After` says)."""
    return Retry(total=2, connect=2, read=0, status=0, other=0, raise_on_status=False)


def default_retry() -> Retry:
    return WriteOnceRetry(
        total=8,
        connect=8,
        read=8,
        backoff_factor=0.2,
        backoff_max=10,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # retry POST too: search and batch reads are POSTs
        raise_on_status=False,  # give the client the last answer; it raises ApiException
        respect_retry_after_header=True,
    )


_SHARED: dict[tuple[str, str, int], tuple[RateLimiter, RateLimiter]] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiters(base_url: str, token: str, burst: int = 150) -> tuple[RateLimiter, RateLimiter]:
    """The (burst, search) limiters of one portal and token, one pair per process.

    HubSpot counts its limits per app and portal, not per client object: every
    connection this process opens to the same address with the same token
    (the pull, the write-back, the actions, the portal id) draws on one budget.
    """
    key = (base_url.rstrip("/"), token, burst)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = (RateLimiter(burst, 10.0), RateLimiter(4, 1.0))
        return _SHARED[key]


@dataclass
class HubSpotConnection:
    """A configured client plus the limiters every HubSpot call goes through.

    `connect()` gives every connection to one portal the same limiters
    (`shared_limiters`); a connection built directly has its own.
    """

    base_url: str
    token: str
    burst: RateLimiter = field(default_factory=lambda: RateLimiter(150, 10.0))
    search: RateLimiter = field(default_factory=lambda: RateLimiter(4, 1.0))
    retry: Retry = field(default_factory=lambda: default_retry())
    # How far incremental pulls look back past the last pull, for clock skew between
    # this machine and HubSpot's servers. The sandbox shares our clock: none needed.
    clock_margin: timedelta = timedelta(minutes=5)
    # Results one CRM search query pages through: HubSpot's documented 10,000 ("Search the
    # CRM", Limitations); a smaller one only to match a sandbox started with a smaller cap.
    search_cap: int = 10_000
    # Size the burst limiter to the limit HubSpot announces with each answer (`fit_limits`);
    # `connect()` turns it on, a connection built with its own limiters keeps them.
    fit_to_announced: bool = False
    # How a pull reads every account's associations (`hubspot.exports`): "auto" (one
    # CRM export where it costs fewer calls than the v4 batch read), "export" (an
    # export whenever one can serve), "batch" (the v4 batch read only).
    association_read: Literal["auto", "export", "batch"] = "auto"
    export_wait: float = EXPORT_WAIT  # s an export may take before the pull reads them itself
    client: HubSpot = field(init=False)
    # The same client without waiting retries (`no_wait_retry`): for the export start,
    # which a pull does without when HubSpot refuses it.
    once: HubSpot = field(init=False)
    _files: PoolManager | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        host = self.base_url.rstrip("/")
        self.client = HubSpot(access_token=self.token, host=host, retry=self.retry)
        self.once = HubSpot(access_token=self.token, host=host, retry=no_wait_retry())

    def download(self, url: str) -> bytes:
        """The file at `url` (an export's result link), under the burst limit, with the
        reads' retries. No token is sent: the link is signed, and may be on a file host.
        Raises `VendorError` on an answer outside 2xx."""
        if self._files is None:
            self._files = PoolManager(retries=self.retry)
        self.burst.acquire()
        response = self._files.request("GET", url)
        if not 200 <= response.status < 300:
            raise VendorError(f"HTTP {response.status} reading {url.split('?', 1)[0]}")
        return bytes(response.data)

    def call(
        self, function: Callable[..., T], *args: Any, search: bool = False, **kwargs: Any
    ) -> T:
        """Call one client method under the rate limits (search has its own, lower one)."""
        if search:
            self.search.acquire()
        self.burst.acquire()
        return function(*args, **kwargs)

    def call_json(
        self, function: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any
    ) -> Any:
        """`call`, answered with HubSpot's JSON as dicts and lists instead of client models.

        For the bulk calls (pages and batches of 100 records): the request, its
        authentication, retries and errors (`ApiException` on a status outside 2xx)
        are the client's own; only the answer skips the generated model classes
        (`_preload_content=False`, which every generated method takes). Building
        them costs about 35 ms a page of 100 records, most of the ~53 ms a call
        that HubSpot's 190 requests / 10 s leave, so a pull of a million records
        would wait on its own parsing instead of the rate limit. An answer cut off
        mid-body is asked for again, as urllib3's `Retry` does when it reads the
        body itself: only for calls that may be repeated (reads, and batch updates
        that write the same values again).
        """
        for attempt in range(CUT_BODY_ATTEMPTS):
            response = self.call(function, *args, search=search, _preload_content=False, **kwargs)
            try:
                body = response.data
            except HTTPError:
                if attempt + 1 == CUT_BODY_ATTEMPTS:
                    raise
                continue
            finally:
                response.release_conn()
            if self.fit_to_announced:
                self.fit_limits(response.headers)
            return json.loads(body)
        raise AssertionError("unreachable")

    def fit_limits(self, headers: Mapping[str, str]) -> None:
        """Size the burst limiter to the app's limit as HubSpot announces it.

        Every answer carries `X-HubSpot-RateLimit-Max` and `-Interval-Milliseconds`
        (HubSpot's "API usage guidelines and limits": 100 / 10 s on Free and Starter,
        190 on Professional and Enterprise, more with the API limit increase). The
        limiter keeps `ANNOUNCED_SHARE` of it, at least one call under it, so the
        requests' arrival jitter never makes a 429 (which HubSpot holds against the
        app): a Starter portal is not sent 150 a window, a Professional one is not
        held to 150 when it allows 190.
        """
        try:
            announced = int(headers["X-HubSpot-RateLimit-Max"])
            interval = int(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
        except (KeyError, TypeError, ValueError):
            return
        if announced <= 1 or interval <= 0:
            return
        calls = min(announced - 1, int(announced * ANNOUNCED_SHARE))
        if (calls, interval) != (self.burst.calls, self.burst.seconds):
            self.burst.resize(calls, interval)


def api_url(sandbox: bool) -> str:
    """Where HubSpot calls go: `HEALTHSCORE_SANDBOX_URL` (sandbox) or `HUBSPOT_BASE_URL`."""
    if sandbox:
        return os.environ.get(SANDBOX_URL_ENV) or SANDBOX_URL
    return os.environ.get(BASE_URL_ENV) or HUBSPOT_URL


def unreachable_hint(sandbox: bool) -> str:
    """The fix when nothing answers at `api_url(sandbox)`."""
    if sandbox:
        return (
            "start it with `healthscore sandbox` (another terminal), or set "
            f"{SANDBOX_URL_ENV} to where it listens"
        )
    return f"check the network, or {BASE_URL_ENV} if you set it"


def connect(
    sandbox: bool = False, *, base_url: str | None = None, token: str | None = None
) -> HubSpotConnection:
    """A connection from arguments or the environment.

    HubSpot: `HUBSPOT_ACCESS_TOKEN` (a private app token) and optionally
    `HUBSPOT_BASE_URL`. Sandbox: `HEALTHSCORE_SANDBOX_URL` (default
    http://127.0.0.1:8765, where `healthscore sandbox` listens); any token works.
    """
    url = base_url or api_url(sandbox)
    if sandbox:
        token = token or "sandbox-token"
        burst, search = shared_limiters(url, token, 180)
        return HubSpotConnection(
            url,
            token,
            burst=burst,
            search=search,
            clock_margin=timedelta(0),
            fit_to_announced=True,
        )
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise HubSpotConfigError(
            f"no HubSpot token: set {TOKEN_ENV} to a private app or service key token "
            "(scopes: read for every object the playbook reads, e.g. crm.objects.companies.read, "
            "crm.objects.contacts.read, crm.objects.owners.read, tickets; for write-back "
            "crm.objects.companies.write and crm.schemas.companies.write; lists crm.lists.write; "
            "crm.export to read associations in one export), "
            "or store it in the Prefect Secret block `hubspot-access-token` for flows"
        )
    if not url.startswith(("http://", "https://")):
        raise HubSpotConfigError(f"{BASE_URL_ENV}={url!r} is not an http(s) URL")
    burst, search = shared_limiters(url, token)
    return HubSpotConnection(url, token, burst=burst, search=search, fit_to_announced=True)
