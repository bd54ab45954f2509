"""One folder per vendor (HubSpot, Slack, Jira): its credentials, client, pulls and writes.

Nothing here imports the CLI, Prefect or the history store; callers pass what they need.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

Progress = Callable[[str, int, int | None], None]
"""progress(what, done, total): called as pages arrive, for the CLI's progress bar."""
