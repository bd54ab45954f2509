"""Trigger rules: does an action's `on:` fire for an account in this run, and which occurrence?

Pure functions over the run's score and a `TriggerHistory` read from the store,
so a dry run, a real run and a unit test decide the very same firings.

The history is always the one *strictly before* this run's as-of. That makes a
firing a function of (history before T, scores at T): re-running the same as-of
finds the same firings with the same occurrence keys, and the ledger's UNIQUE
key turns the second run into a no-op instead of a second message.

Readings of docs/playbook.md chosen here:

- `status_changed_to: L` fires when the status is L and the previous run's was
  not (or there was no previous run: the first score is a transition from
  nothing). `status_changed_from: L` needs a previous run in L, so it never
  fires on a first score.
- Level triggers (`score_at_least`, `score_below`, `status_is`) fire once per
  entry into the state: when the state holds now and did not hold in the
  previous run (or there was none). `every_run: true` fires on every run in
  the state; each run is its own occurrence.
- `score_dropped_by: N, within_days: D`: the highest score stored in the
  window, minus the score now, is at least N. The window holds the runs at
  most D calendar days earlier in the playbook's `timezone:` (IANA, default
  UTC), up to but excluding T (`window_start`): a weekly Monday 06:00 schedule
  must see last Monday's run whether the clocks moved an hour in between (7
  days and 1 hour apart) or this run started a few seconds late. The occurrence is the as-of
  of that high: while the drop is measured from the same high it is the same
  occurrence (one alert), a drop from a newer high is a new one.
  `score_rose_by` mirrors it with the lowest score.
- Occurrence keys of transitions and level entries are the run's as-of (ISO).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from healthscore.core.playbook import Trigger
from healthscore.core.scoring import round2


@dataclass(frozen=True)
class PriorRun:
    """An account's newest stored score strictly before this run's as-of."""

    as_of: datetime
    score: float
    status: str
    groups: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Extreme:
    """The highest (or lowest) stored score in a window and when it was reached."""

    score: float
    as_of: datetime


@dataclass
class TriggerHistory:
    """What the triggers need from the store: one query per question, keyed by account.

    `highs[days][account]` / `lows[days][account]`: the extremes of each window
    `[as_of - days, as_of)` used by the playbook's drop/rise triggers.
    """

    prior: Mapping[str, PriorRun] = field(default_factory=dict)
    highs: Mapping[float, Mapping[str, Extreme]] = field(default_factory=dict)
    lows: Mapping[float, Mapping[str, Extreme]] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    """A trigger that fired: the stable occurrence key and a sentence saying why."""

    occurrence: str
    reason: str


def window_start(as_of: datetime, days: float, timezone: str = "UTC") -> datetime:
    """Where a trigger's `within_days` window starts: local midnight, `ceil(days)` dates back.

    `as_of` must be aware; the result is aware, in `timezone`. Calendar days of
    docs/playbook.md ("at most D calendar days earlier in the playbook's
    timezone"): 2026-10-26 06:00 Europe/Berlin with 7 days starts at
    2026-10-19 00:00 CEST, so the run of 2026-10-19 06:00 CEST counts although
    it is 7 days and 1 hour earlier.
    """
    zone = ZoneInfo(timezone)
    first = as_of.astimezone(zone).date() - timedelta(days=math.ceil(days))
    return datetime.combine(first, time(0), tzinfo=zone)


def occurrence_of(as_of: datetime) -> str:
    """The occurrence key of a run: its as-of, ISO 8601 in UTC, to the second."""
    return as_of.isoformat(timespec="seconds")


def _number(value: object) -> float:
    return float(value)  # type: ignore[arg-type]  # validated as a number by the playbook


def level_holds(trigger: Trigger, score: float, status: str) -> bool:
    """Whether a level trigger's state holds for this score and status."""
    if trigger.kind == "score_at_least":
        return round2(score) >= _number(trigger.value)
    if trigger.kind == "score_below":
        return round2(score) < _number(trigger.value)
    if trigger.kind == "status_is":
        return status == trigger.value
    raise ValueError(f"{trigger.kind} is not a level trigger")


def _window(trigger: Trigger) -> float:
    return float(trigger.within_days or 0.0)


def _drop(
    trigger: Trigger, account_id: str, score: float, history: TriggerHistory
) -> Extreme | None:
    """The window high the score dropped from (by at least N), or None."""
    high = history.highs.get(_window(trigger), {}).get(account_id)
    if high is None or round2(high.score - round2(score)) < _number(trigger.value):
        return None
    return high


def _rise(
    trigger: Trigger, account_id: str, score: float, history: TriggerHistory
) -> Extreme | None:
    low = history.lows.get(_window(trigger), {}).get(account_id)
    if low is None or round2(round2(score) - low.score) < _number(trigger.value):
        return None
    return low


def holds_now(
    trigger: Trigger, account_id: str, score: float, status: str, history: TriggerHistory
) -> bool:
    """Whether the account qualifies right now (used by `sync: true` lists to remove members).

    Level triggers: their state. Transitions: being in the state they lead to
    (`status_changed_to: L` -> status is L; `status_changed_from: L` -> it is not).
    Drops and rises: the window condition.
    """
    if trigger.is_level:
        return level_holds(trigger, score, status)
    if trigger.kind == "status_changed_to":
        return status == trigger.value
    if trigger.kind == "status_changed_from":
        return status != trigger.value
    if trigger.kind == "score_dropped_by":
        return _drop(trigger, account_id, score, history) is not None
    if trigger.kind == "score_rose_by":
        return _rise(trigger, account_id, score, history) is not None
    raise ValueError(f"unknown trigger {trigger.kind!r}")


def fire(
    trigger: Trigger,
    *,
    account_id: str,
    score: float,
    status: str,
    as_of: datetime,
    history: TriggerHistory,
) -> Firing | None:
    """The firing of `trigger` for one account in the run at `as_of`, or None."""
    prior = history.prior.get(account_id)
    kind, value = trigger.kind, trigger.value
    if kind == "status_changed_to":
        if status != value or (prior is not None and prior.status == value):
            return None
        before = prior.status if prior is not None else "nothing (first score)"
        return Firing(occurrence_of(as_of), f"status changed from {before} to {status}")
    if kind == "status_changed_from":
        if prior is None or prior.status != value or status == value:
            return None
        return Firing(occurrence_of(as_of), f"status changed from {value} to {status}")
    if trigger.is_level:
        if not level_holds(trigger, score, status):
            return None
        entered = prior is None or not level_holds(trigger, prior.score, prior.status)
        what = _describe_level(trigger)
        if trigger.every_run:
            return Firing(occurrence_of(as_of), f"{what} (every run)")
        if not entered:
            return None
        return Firing(occurrence_of(as_of), f"{what} (entered the state this run)")
    if kind == "score_dropped_by":
        high = _drop(trigger, account_id, score, history)
        if high is None:
            return None
        return Firing(
            f"drop-from:{occurrence_of(high.as_of)}",
            f"score dropped {round2(high.score - round2(score)):g} points "
            f"(from {high.score:g} on {high.as_of.date()} to {round2(score):g}; "
            f"at least {_number(value):g} within {_window(trigger):g} days)",
        )
    if kind == "score_rose_by":
        low = _rise(trigger, account_id, score, history)
        if low is None:
            return None
        return Firing(
            f"rise-from:{occurrence_of(low.as_of)}",
            f"score rose {round2(round2(score) - low.score):g} points "
            f"(from {low.score:g} on {low.as_of.date()} to {round2(score):g}; "
            f"at least {_number(value):g} within {_window(trigger):g} days)",
        )
    raise ValueError(f"unknown trigger {kind!r}")


def _describe_level(trigger: Trigger) -> str:
    if trigger.kind == "score_at_least":
        return f"score is at least {_number(trigger.value):g}"
    if trigger.kind == "score_below":
        return f"score is below {_number(trigger.value):g}"
    return f"status is {trigger.value}"
