"""The status chips and trend arrows every report shows (CLI, Slack, dashboard, artifacts).

Kept free of imports so the CLI's `--help` stays fast.
"""

from __future__ import annotations

STATUS_CHIPS: dict[str, str] = {"green": "🟩", "yellow": "🟨", "red": "🟥"}
TREND_ARROWS: dict[str, str] = {"up": "↗️", "down": "↘️", "flat": "↔️", "new": "🆕"}


def chip(color: str) -> str:
    """The emoji chip of a status color; a plain square for colors without one."""
    return STATUS_CHIPS.get(color, "⬜")


def arrow(trend: str) -> str:
    return TREND_ARROWS.get(trend, "")
