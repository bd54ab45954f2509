"""Reading CRM property values the way the playbook spec says.

HubSpot sends every property as a string. A value that does not parse is not an
error: it makes the condition false, or the rule give 0 — a CRM full of "n/a"
and "1,200" must never crash a scoring run. Derived properties are floats and
pass through unchanged.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

DAY_SECONDS = 86_400.0
_EPOCH_MS = re.compile(r"-?[0-9]+")  # ASCII digits: "²".isdigit() is true, int("²") fails


def is_missing(value: Any) -> bool:
    """HubSpot treats an empty string like an unset property: both are `unknown`."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def as_number(value: Any) -> float | None:
    """A finite number, or None. Rejects what Python parses but HubSpot would not
    ("1_000", "nan", "inf") as well as what nobody parses ("1,200", "n/a")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text or "_" in text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def as_timestamp(value: Any) -> float | None:
    """Seconds since the epoch (UTC) of a CRM date; None when it is not one.

    The one date parser of the product, and its one epoch rule: a number, or text
    of ASCII digits with an optional sign, is epoch *milliseconds* (how HubSpot
    stores datetime properties), whatever its length; any other text must be ISO
    8601 (`2026-01-31`, `2026-01-31T10:00:00Z`), a time without zone being UTC.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _aware(value).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, int | float):
        try:
            return float(value) / 1000.0 if math.isfinite(value) else None
        except OverflowError:  # an int beyond any float
            return None
    text = str(value).strip()
    if not text:
        return None
    if _EPOCH_MS.fullmatch(text):
        try:
            return int(text) / 1000.0
        except (OverflowError, ValueError):  # beyond a float, or too many digits for int()
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _aware(parsed).timestamp()


def as_text(value: Any) -> str:
    """The comparable form of a value for `eq`/`in`/`points_each`: trimmed, case-folded."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def parse_as_of(value: str | datetime | None) -> datetime:
    """The as-of instant of a run: given, or now, always timezone-aware UTC."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return _aware(value)
    stamp = as_timestamp(value)
    if stamp is None:
        raise ValueError(f"not an ISO 8601 date or time: {value!r}")
    return datetime.fromtimestamp(stamp, UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
