"""One folder per vendor (HubSpot, Slack, Jira): its credentials, client, pulls and writes.

Nothing here imports the CLI, Prefect or the history store; callers pass what they need.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from healthscore.errors import Unreachable

__all__ = ["Progress", "describe_error", "ensure_reachable"]

PROBE_SECONDS = 3.0

Progress = Callable[[str, int, int | None], None]
"""progress(what, done, total): called as pages arrive, for the CLI's progress bar."""


def describe_error(exc: Exception) -> str:
    """A failed call in a few words: `HTTP 429 Too Many Requests` for an answer (a client
    exception carrying `status` and `reason`), else the exception's type and message."""
    status = getattr(exc, "status", None)
    if status:
        reason = getattr(exc, "reason", None) or ""
        return f"HTTP {status} {reason}".strip()
    return f"{type(exc).__name__}: {exc}"


def ensure_reachable(
    url: str, hint: str, service: str = "read HubSpot", timeout: float = PROBE_SECONDS
) -> None:
    """Raise `Unreachable` unless a TCP connection to `url`'s host and port opens.

    One connection attempt, no retry: a refused connection or an unknown host
    means nothing listens there, and retrying (urllib3 and slack_sdk retry
    connection errors like 5xx answers) only delays the message by minutes. The
    message is one line: `could not <service> at <url>: <what happened>; <hint>`.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except socket.gaierror:
        what = f"unknown host {host!r}"
    except ConnectionRefusedError:
        what = "connection refused: nothing is listening"
    except TimeoutError:
        what = f"no answer within {timeout:g} s"
    except OSError as exc:  # network unreachable, no route to host
        what = exc.strerror or type(exc).__name__
    raise Unreachable(f"could not {service} at {url}: {what}; {hint}", url=url, hint=hint)
