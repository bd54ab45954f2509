"""Client-side rate limiting shared by the vendor clients (HubSpot's burst and search
limits, Slack's per-method tiers): wait for a free slot instead of leaning on 429s."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """At most `calls` per `seconds` (a sliding window), blocking (sleeping) the caller
    until a slot frees.

    Thread-safe, so Prefect tasks or worker threads sharing a client share the budget.
    `hold_off(seconds)` stops every caller until then: a 429's `Retry-After`.
    """

    def __init__(self, calls: int, seconds: float) -> None:
        self.calls = calls
        self.seconds = seconds
        self._sent: deque[float] = deque()
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def resize(self, calls: int, seconds: float) -> None:
        """Allow `calls` per `seconds` from now on (a vendor announced its limit)."""
        with self._lock:
            self.calls, self.seconds = max(1, calls), max(seconds, 0.001)

    def hold_off(self, seconds: float) -> None:
        """No call through this limiter for `seconds` (a vendor's `Retry-After`, in seconds)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + max(seconds, 0.0))

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                if now < self._resume_at:
                    wait = self._resume_at - now
                elif len(self._sent) < self.calls:
                    self._sent.append(now)
                    return
                else:
                    wait = self.seconds - (now - self._sent[0])
            time.sleep(max(wait, 0.001))
