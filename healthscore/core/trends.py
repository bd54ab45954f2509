"""Trend and change detection: pure functions over a run's scores and stored history.

Nothing here touches a database: the history store answers a few set queries
(`Baseline`), and these functions turn a run's scores plus that baseline into
per-account comparisons. Keeping it pure means a dry run, a real run and a
test with a hand-made history all compute the very same numbers.

Readings of docs/playbook.md that the spec leaves open, chosen here:

- Scores are compared as reported, rounded to 2 decimals (`round2`), so a delta
  of exactly `flat_band` counts as a move, never 2.9999999.
- previous = the newest stored score whose as-of is at least `compare_days`
  before this run's as-of; none -> trend `new`.
- The status transition compares with the previous *run* (the newest stored
  score at or before this as-of, whatever its age): a CSM wants "it turned red
  today", not "it is red compared with a month ago". The first score of an
  account is a transition from nothing (the spec: "first score included").
- `score_dropped_by: N, within_days: D`: the highest stored score with an as-of
  in [as_of - D, as_of], minus the score now, is at least N. Symmetrically
  `score_rose_by`: the score now minus the lowest in the window is at least N.
  With no stored score in the window neither fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from healthscore.core.playbook import Playbook
from healthscore.core.scoring import AccountScore, round2
from healthscore.core.symbols import TREND_ARROWS

Trend = Literal["up", "down", "flat", "new"]


@dataclass(frozen=True)
class PastScore:
    """One stored score of an account, as the history store returns it."""

    score: float
    status: str
    as_of: datetime
    run_id: int | None = None


@dataclass(frozen=True)
class WindowRange:
    """Highest and lowest stored score of an account inside a trigger's window."""

    high: float
    low: float


@dataclass
class Baseline:
    """What the history says about each account, fetched with one query per question.

    `previous`: newest score at least `compare_days` old; `last_run`: newest score
    at or before the as-of; `windows`: for each `within_days` of the playbook's
    drop/rise triggers, the range of stored scores in that window.
    """

    previous: Mapping[str, PastScore] = field(default_factory=dict)
    last_run: Mapping[str, PastScore] = field(default_factory=dict)
    windows: Mapping[float, Mapping[str, WindowRange]] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """A status change; `before` is None for an account's first score."""

    before: str | None
    after: str


@dataclass
class Comparison:
    """One account's score now, set against its history."""

    score: AccountScore
    rounded: float
    previous: float | None
    delta: float | None
    trend: Trend
    previous_status: str | None
    transition: Transition | None
    windows: dict[float, WindowRange] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.score.id

    @property
    def status(self) -> str:
        return self.score.status

    @property
    def arrow(self) -> str:
        return TREND_ARROWS[self.trend]

    def dropped_by(self, points: float, within_days: float) -> bool:
        window = self.windows.get(float(within_days))
        return window is not None and dropped_by(self.rounded, window.high, points)

    def rose_by(self, points: float, within_days: float) -> bool:
        window = self.windows.get(float(within_days))
        return window is not None and rose_by(self.rounded, window.low, points)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.score.to_json(),
            "previous": self.previous,
            "delta": self.delta,
            "trend": self.trend,
            "previous_status": self.previous_status,
            "status_changed": self.transition is not None,
        }


# ---------------------------------------------------------------- the rules


def trend_of(score: float, previous: float | None, flat_band: float) -> Trend:
    """up if score - previous >= flat_band, down if previous - score >= flat_band."""
    if previous is None:
        return "new"
    delta = round2(score - previous)
    if delta >= flat_band:
        return "up"
    if -delta >= flat_band:
        return "down"
    return "flat"


def transition_of(previous_status: str | None, status: str) -> Transition | None:
    """A transition when the status differs from the previous run's, or on a first score."""
    if previous_status == status:
        return None
    return Transition(previous_status, status)


def dropped_by(score: float, window_high: float, points: float) -> bool:
    return round2(window_high - score) >= points


def rose_by(score: float, window_low: float, points: float) -> bool:
    return round2(score - window_low) >= points


def trigger_windows(playbook: Playbook) -> list[float]:
    """The distinct `within_days` of the playbook's drop/rise triggers: one query each."""
    days = {
        float(a.trigger.within_days or playbook.trend.compare_days)
        for a in playbook.actions
        if a.trigger.kind in ("score_dropped_by", "score_rose_by")
    }
    return sorted(days)


def compare(
    scores: Iterable[AccountScore], baseline: Baseline, flat_band: float
) -> list[Comparison]:
    """Set every score against the baseline: previous, delta, trend, transition, windows."""
    out: list[Comparison] = []
    for score in scores:
        rounded = round2(score.score)
        past = baseline.previous.get(score.id)
        previous = past.score if past else None
        last = baseline.last_run.get(score.id)
        previous_status = last.status if last else None
        out.append(
            Comparison(
                score=score,
                rounded=rounded,
                previous=previous,
                delta=round2(rounded - previous) if previous is not None else None,
                trend=trend_of(rounded, previous, flat_band),
                previous_status=previous_status,
                transition=transition_of(previous_status, score.status),
                windows={
                    days: ranges[score.id]
                    for days, ranges in baseline.windows.items()
                    if score.id in ranges
                },
            )
        )
    return out


# ---------------------------------------------------------------- summaries


def counts_by_status(playbook: Playbook, comparisons: Sequence[Comparison]) -> dict[str, int]:
    """Accounts per status, in the playbook's threshold order (every label present)."""
    counts = {t.label: 0 for t in playbook.thresholds}
    for c in comparisons:
        counts[c.status] = counts.get(c.status, 0) + 1
    return counts


def biggest_movers(comparisons: Sequence[Comparison], limit: int = 10) -> list[Comparison]:
    """Accounts with the largest |delta|, largest first; ties by id for stable reports."""
    moved = [c for c in comparisons if c.delta]
    moved.sort(key=lambda c: (-abs(c.delta or 0.0), c.id))
    return moved[:limit]


def status_changes(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Accounts whose status changed since the previous run (first scores left out)."""
    return [c for c in comparisons if c.transition and c.transition.before is not None]
