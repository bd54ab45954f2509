"""Which failures a task retries: transient ones (network, 429, 5xx), never user errors.

A bad playbook, a missing token or a refused property would fail again on
every retry, so retrying only delays the message; a dropped connection or a
HubSpot 503 usually succeeds a few seconds later.
"""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy.exc
import urllib3.exceptions

RETRIES = 3
RETRY_DELAYS = [2.0, 10.0, 30.0]
TRANSIENT_STATUS = frozenset({0, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException | None) -> bool:
    """Network errors, HTTP 429/5xx answers and dropped database connections."""
    if exc is None:
        return False
    if isinstance(
        exc,
        ConnectionError
        | TimeoutError
        | urllib3.exceptions.HTTPError
        | httpx.TransportError
        | sqlalchemy.exc.OperationalError,
    ):
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and status in TRANSIENT_STATUS


def retry_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry the task only when its error is transient."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return is_transient(data)
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # a result that cannot be read: judge what it raised
        return is_transient(exc)
    return isinstance(result, BaseException) and is_transient(result)
