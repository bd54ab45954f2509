"""Timestamps the way each vendor writes them.

HubSpot writes ISO 8601 in UTC with milliseconds and a `Z`; Jira writes
`2024-01-31T10:00:00.000+0000`; Slack writes `ts` strings of epoch seconds with
six decimals. Parsing accepts what the CRM snapshot may hold (ISO dates, ISO
date-times, epoch milliseconds) so search filters can compare them.

`parse_moment` is the sandbox's own on purpose, not `healthscore.core.values.
as_timestamp`: it models what HubSpot's and Jira's servers accept (fewer than 9
digits are not epoch milliseconds to them, `20260131` is a date), and a fake
that shared the product's parser would hide the product's parsing bugs instead
of exposing them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def hubspot_iso(moment: datetime) -> str:
    """`2026-01-31T10:00:00.123Z`: HubSpot's own format for dates in responses."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def jira_iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_moment(value: object) -> datetime | None:
    """A date-time from an ISO string, an ISO date or epoch milliseconds; None otherwise."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit() and len(text.lstrip("-")) >= 9:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
