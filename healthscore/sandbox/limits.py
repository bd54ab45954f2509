"""HubSpot's rate limits and the fault injector, in one place.

The gate in `app.py` asks `Limits.decide_fault()` before any handler runs, so a
faulted write is never applied and a client's retry is safe; then, for HubSpot
paths only, `Limits.check_hubspot()` applies the rolling 10-second burst limit,
the daily limit and (for CRM search) the per-second search limit, per token.
Every decision is counted for `GET /_sandbox/stats`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum


class Fault(Enum):
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    SLOW = "slow"
    DROP = "drop"
    CUT = "cut"  # the answer's head and half its body, then the connection closes

    @classmethod
    def usual(cls) -> list[Fault]:
        """The kinds drawn when a test names none: a cut answer only when asked for."""
        return [kind for kind in cls if kind is not cls.CUT]

    @property
    def status(self) -> int | None:
        return int(self.value) if self.value.isdigit() else None


# What a client may get instead of the answer to a write that was applied.
AFTER_WRITE_KINDS = (Fault.DROP, Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE)


@dataclass(frozen=True)
class RateVerdict:
    """Whether a HubSpot call may proceed, and the header values to report either way."""

    allowed: bool
    policy: str | None
    max: int
    remaining: int
    interval_ms: int
    daily: int
    daily_remaining: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        out = {
            "X-HubSpot-RateLimit-Max": str(self.max),
            "X-HubSpot-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily_remaining, 0)),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    total: int = 0
    rate_limited: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    after_write: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, object]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "total_calls": self.total,
            "rate_limited": self.rate_limited,
            "faults_injected": sum(self.faults.values()),
            "faults_by_kind": dict(self.faults),
            "faults_after_write": sum(self.after_write.values()),
            "faults_after_write_by_kind": dict(self.after_write),
        }


class Limits:
    """Per-token HubSpot limits and seeded, reproducible fault injection."""

    WINDOW_SECONDS = 10.0

    def __init__(
        self,
        *,
        rate_limit: int = 190,
        daily_limit: int = 1_000_000,
        search_rate_per_second: float = 5,
        faults: float = 0.0,
        fault_seed: int = 0,
        slow_seconds: float = 0.5,
        faults_after_write: float = 0.0,
    ) -> None:
        self.rate_limit = rate_limit
        self.daily_limit = daily_limit
        self.search_rate = search_rate_per_second
        self.slow_seconds = slow_seconds
        self.stats = Stats()
        self._lock = threading.Lock()
        self._window: dict[str, deque[float]] = {}
        self._daily: Counter[str] = Counter()
        self._day = time.strftime("%Y-%m-%d", time.gmtime())
        self._search: dict[str, deque[float]] = {}
        self.set_faults(faults, fault_seed)
        self.set_faults_after_write(faults_after_write, fault_seed)

    def set_faults(
        self,
        rate: float,
        seed: int = 0,
        kinds: list[Fault] | None = None,
        path: str = "",
        limit: int | None = None,
    ) -> None:
        """Change the fault rate; `kinds` narrows the draw (tests pin one kind of fault).

        `path`: only requests whose path starts with it are drawn for (e.g.
        `/account-info/`); `limit`: at most this many faults, then none.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a probability between 0 and 1")
        if limit is not None and limit < 0:
            raise ValueError("the fault limit is a count, 0 or more")
        with self._lock:
            self.fault_rate = rate
            self.fault_kinds = list(kinds) if kinds else Fault.usual()
            self.fault_path = path
            self._faults_left = limit
            self._rng = random.Random(seed)

    def decide_fault(self, path: str = "") -> Fault | None:
        """Draw for one request; deterministic for a given seed and order of requests."""
        with self._lock:
            if self.fault_rate <= 0 or self._faults_left == 0:
                return None
            if not path.startswith(self.fault_path):
                return None
            if self._rng.random() >= self.fault_rate:
                return None
            if self._faults_left is not None:
                self._faults_left -= 1
            fault = self._rng.choice(self.fault_kinds)
            self.stats.faults[fault.value] += 1
            if fault is Fault.RATE_LIMITED:
                self.stats.rate_limited += 1
            return fault

    def set_faults_after_write(
        self, rate: float, seed: int = 0, kinds: list[Fault] | None = None
    ) -> None:
        """Change how often an applied write answers with a drop or a 5xx instead.

        The draw has its own seeded generator, so turning it on leaves the
        before-handler faults of a given seed unchanged.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a probability between 0 and 1")
        chosen = list(kinds) if kinds else list(AFTER_WRITE_KINDS)
        if any(k not in AFTER_WRITE_KINDS for k in chosen):
            raise ValueError("after a write only drop, 500, 502 and 503 can be injected")
        with self._lock:
            self.after_write_rate = rate
            self.after_write_kinds = chosen
            self._after_write_rng = random.Random(seed)

    def decide_fault_after_write(self) -> Fault | None:
        """Draw for one write request; counted only when `record_fault_after_write` applies it."""
        with self._lock:
            if self.after_write_rate <= 0:
                return None
            if self._after_write_rng.random() >= self.after_write_rate:
                return None
            return self._after_write_rng.choice(self.after_write_kinds)

    def record_fault_after_write(self, fault: Fault) -> None:
        with self._lock:
            self.stats.after_write[fault.value] += 1

    def check_hubspot(self, token: str, *, search: bool = False) -> RateVerdict:
        """Count one call against the token's windows; refuse it if any limit is spent."""
        now = time.monotonic()
        with self._lock:
            today = time.strftime("%Y-%m-%d", time.gmtime())
            if today != self._day:
                self._day, self._daily = today, Counter()
            window = self._window.setdefault(token, deque())
            while window and now - window[0] >= self.WINDOW_SECONDS:
                window.popleft()
            used_daily = self._daily[token]

            def verdict(allowed: bool, policy: str | None, retry: float = 0) -> RateVerdict:
                return RateVerdict(
                    allowed=allowed,
                    policy=policy,
                    max=self.rate_limit,
                    remaining=self.rate_limit - len(window),
                    interval_ms=int(self.WINDOW_SECONDS * 1000),
                    daily=self.daily_limit,
                    daily_remaining=self.daily_limit - self._daily[token],
                    retry_after=max(1, math.ceil(retry)),
                )

            if used_daily >= self.daily_limit:
                self.stats.rate_limited += 1
                return verdict(False, "DAILY", _seconds_to_midnight())
            if len(window) >= self.rate_limit:
                self.stats.rate_limited += 1
                return verdict(False, "TEN_SECONDLY_ROLLING", window[0] + self.WINDOW_SECONDS - now)
            if search:
                searches = self._search.setdefault(token, deque())
                while searches and now - searches[0] >= 1.0:
                    searches.popleft()
                if len(searches) >= max(1, math.floor(self.search_rate)):
                    self.stats.rate_limited += 1
                    return verdict(False, "SECONDLY", searches[0] + 1.0 - now)
                searches.append(now)
            window.append(now)
            self._daily[token] += 1
            return verdict(True, None)

    def record_call(self, endpoint: str) -> None:
        with self._lock:
            self.stats.calls[endpoint] += 1
            self.stats.total += 1

    def record_rate_limited(self) -> None:
        with self._lock:
            self.stats.rate_limited += 1

    def clear_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    def reset_windows(self) -> None:
        with self._lock:
            self._window.clear()
            self._search.clear()
            self._daily.clear()


def _seconds_to_midnight() -> float:
    now = time.time()
    return 86400 - (now % 86400)
