"""Calibration: does the score predict churn, and which points would predict it better?

A health score is a forecast: low scores should be the accounts that leave. This
module measures that against a known outcome (a `Churn=Yes` column, a
`lifecyclestage=churned` property) the way a data scientist would, and reports it
the way a CS ops person can act on it:

- ROC AUC of the score: the chance that a churned account scored lower than a
  retained one (0.5 is a coin, 1.0 perfect), from `sklearn.metrics`. Ties count
  half (the Mann-Whitney U statistic), because integer-point playbooks produce many
  ties and a tie is not a correct ranking.
- Churn rate and lift per status, and precision/recall when a status (and every
  status below it) is used as the alert: what a CSM will see in Slack.
- Per group and per rule: its own AUC, how often it fires, churn when it fires.

With `suggest`, it fits an L2 (or L1) logistic regression on standardised
inputs — each rule's points plus quantile bins and frequent values of the
properties the playbook already reads — and turns the coefficients into a
scorecard with integer points, the format CS ops already edit. The suggestion is
judged by K-fold cross-validation of the *integer-points playbook itself*
(re-scored by the engine on the held-out fold), next to the original playbook's
AUC on the same folds, so the number reported is what the YAML will do, not
what the regression did before rounding.

Pure engine code: no I/O besides what the caller passes in, no Prefect.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.playbook import Band, Condition, Playbook, Rule, parse_playbook
from healthscore.core.scoring import AccountScore, Scorer
from healthscore.core.trends import PastScore
from healthscore.core.values import as_number, as_text, as_timestamp, is_missing
from healthscore.errors import UserError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DEFAULT_FOLDS = 5
DEFAULT_C = 0.1
"""Inverse L2 strength on standardised inputs. Mild shrinkage: it keeps the
overlapping bins of one property (and a rule on the same property) from trading
large opposite coefficients, without flattening real signal; with thousands of
accounts the AUC is flat between C = 0.01 and 10, so a fixed default is enough
and keeps the run fast and deterministic (no inner search)."""
RANDOM_STATE = 0
BINS_GROUP = "Calibrated bins"
SCORE_SPAN = 100.0
"""The suggested points are scaled so the accounts' scores run from about 0 to this."""
MIN_VALUE_SHARE = 0.02
"""A categorical value gets its own candidate points only if this share of accounts has it."""
MAX_CATEGORIES = 30
"""More distinct values than this and a text property is an id or free text: no candidates."""
QUANTILES = (0.25, 0.5, 0.75)


class CalibrationError(UserError):
    """A calibration that cannot run on this input; the message says how to fix it."""


# ---------------------------------------------------------------- outcome


@dataclass(frozen=True)
class Outcome:
    """`PROPERTY=VALUE`: an account is positive (churned) when its property equals
    VALUE the way `eq` compares (trimmed, case-insensitive). A missing value is
    negative: in a CRM, "churned" is usually set on the accounts that left only."""

    property: str
    value: str

    def is_positive(self, props: Mapping[str, Any]) -> bool:
        actual = props.get(self.property)
        return not is_missing(actual) and as_text(actual) == as_text(self.value)

    def __str__(self) -> str:
        return f"{self.property}={self.value}"


def parse_outcome(spec: str, records: Sequence[CrmRecord]) -> Outcome:
    """Parse `--outcome PROPERTY=VALUE` and check the property exists in the source."""
    prop, sep, value = spec.partition("=")
    prop, value = prop.strip(), value.strip()
    if not sep or not prop or not value:
        raise CalibrationError(
            f"--outcome {spec!r}: write PROPERTY=VALUE, e.g. --outcome Churn=Yes "
            "(the accounts whose PROPERTY equals VALUE are the ones that churned)"
        )
    known: set[str] = set()
    for record in records:
        known.update(record.properties)
    if prop not in known:
        close = difflib.get_close_matches(prop, sorted(known), n=3, cutoff=0.5)
        close += [k for k in sorted(known) if k.casefold() == prop.casefold() and k not in close]
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(known)[:40]) + (" ..." if len(known) > 40 else "")
        raise CalibrationError(
            f"--outcome: no property {prop!r} on the scored accounts{hint} Properties: {listing}"
        )
    return Outcome(prop, value)


def outcome_labels(outcome: Outcome, scores: Sequence[AccountScore]) -> BoolArray:
    """Positive/negative per scored account; an error when either class is empty,
    since no ranking can be measured against a single class."""
    labels = np.array([outcome.is_positive(s.properties) for s in scores], dtype=bool)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        seen = Counter(
            "(empty)" if is_missing(v := s.properties.get(outcome.property)) else str(v).strip()
            for s in scores
        )
        values = ", ".join(f"{v!r} ({n})" for v, n in seen.most_common(8))
        which = "no account" if positives == 0 else "every account"
        raise CalibrationError(
            f"--outcome {outcome}: {which} of the {len(labels)} scored accounts matches, "
            f"so there is nothing to compare; values of {outcome.property}: {values}"
        )
    return labels


# ---------------------------------------------------------------- measures


def roc_auc(predictor: Sequence[float] | FloatArray, labels: Sequence[bool] | BoolArray) -> float:
    """P(predictor of a random positive > that of a random negative), ties counting
    half: `sklearn.metrics.roc_auc_score`, the trapezoidal area under the ROC curve,
    which equals the Mann-Whitney U statistic divided by n_pos * n_neg.

    Raises ValueError when `labels` hold a single class (no pair to compare).
    """
    from sklearn import metrics  # imported here: seconds that only calibrate pays

    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("AUC needs at least one positive and one negative")
    return float(metrics.roc_auc_score(y, np.asarray(predictor, dtype=float)))


def health_auc(points: Sequence[float] | FloatArray, labels: Sequence[bool] | BoolArray) -> float:
    """AUC of a health measure, where *low* should mean churn: AUC of -points."""
    return roc_auc(-np.asarray(points, dtype=float), labels)


def roc_curve(
    points: Sequence[float] | FloatArray, labels: Sequence[bool] | BoolArray
) -> tuple[list[float], list[float]]:
    """(false positive rates, true positive rates) flagging accounts from the lowest
    score up, from (0, 0) to (1, 1): `sklearn.metrics.roc_curve` of -points. A tie
    moves diagonally; points on a straight stretch are left out (the chart is the same)."""
    from sklearn import metrics

    y = np.asarray(labels, dtype=bool)
    fpr, tpr, _ = metrics.roc_curve(y, -np.asarray(points, dtype=float))
    return fpr.tolist(), tpr.tolist()


def _rate(positives: int, accounts: int) -> float | None:
    return positives / accounts if accounts else None


@dataclass
class StatusRow:
    status: str
    color: str
    accounts: int
    positives: int
    churn_rate: float | None
    lift: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "accounts": self.accounts,
            "positives": self.positives,
            "churn_rate": self.churn_rate,
            "lift": self.lift,
        }


@dataclass
class AlertRow:
    """Alerting on `statuses` (the lowest status and those just above it)."""

    statuses: list[str]
    flagged: int
    caught: int  # flagged accounts that churned
    precision: float | None
    recall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "statuses": self.statuses,
            "flagged": self.flagged,
            "caught": self.caught,
            "precision": self.precision,
            "recall": self.recall,
        }


@dataclass
class SignalStats:
    """How one group or rule, on its own, relates to the outcome."""

    auc: float
    fires: float  # share of accounts where points != 0
    fired: int
    churn_rate_fires: float | None
    churn_rate_otherwise: float | None
    mean_points: float

    def to_json(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "fires": self.fires,
            "fired": self.fired,
            "churn_rate_fires": self.churn_rate_fires,
            "churn_rate_otherwise": self.churn_rate_otherwise,
            "mean_points": self.mean_points,
        }


def signal_stats(points: FloatArray, labels: BoolArray) -> SignalStats:
    fired = points != 0
    n_fired = int(fired.sum())
    return SignalStats(
        auc=health_auc(points, labels),
        fires=n_fired / len(points),
        fired=n_fired,
        churn_rate_fires=_rate(int(labels[fired].sum()), n_fired),
        churn_rate_otherwise=_rate(int(labels[~fired].sum()), len(points) - n_fired),
        mean_points=float(points.mean()),
    )


def status_table(
    playbook: Playbook, statuses: Sequence[str], labels: BoolArray
) -> tuple[list[StatusRow], list[AlertRow]]:
    """Churn per status (highest first) and the alert table (lowest status first,
    then cumulatively up to all but the highest)."""
    overall = float(labels.mean())
    status_array = np.array(statuses, dtype=object)
    rows: list[StatusRow] = []
    for threshold in playbook.thresholds:
        mine = status_array == threshold.label
        accounts, positives = int(mine.sum()), int(labels[mine].sum())
        rate = _rate(positives, accounts)
        rows.append(
            StatusRow(
                threshold.label,
                threshold.color,
                accounts,
                positives,
                rate,
                rate / overall if rate is not None and overall else None,
            )
        )
    alerts: list[AlertRow] = []
    total_pos = int(labels.sum())
    flagged = caught = 0
    included: list[str] = []
    for row in reversed(rows[1:]):
        included.append(row.status)
        flagged += row.accounts
        caught += row.positives
        alerts.append(
            AlertRow(list(included), flagged, caught, _rate(caught, flagged), caught / total_pos)
        )
    return rows, alerts


# ---------------------------------------------------------------- the report


@dataclass
class Suggestion:
    yaml: str
    auc: float  # the suggested playbook re-scored on every account
    cv_auc: float
    original_cv_auc: float
    fold_aucs: list[float]
    original_fold_aucs: list[float]
    folds: int
    rules: int
    candidates: int  # candidate bins and values offered to the regression
    bins_kept: int
    c: float
    penalty: str
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "auc": self.auc,
            "cv_auc": self.cv_auc,
            "original_cv_auc": self.original_cv_auc,
            "folds": self.folds,
            "fold_aucs": self.fold_aucs,
            "original_fold_aucs": self.original_fold_aucs,
            "rules": self.rules,
            "candidates": self.candidates,
            "bins_kept": self.bins_kept,
            "C": self.c,
            "penalty": self.penalty,
        }


@dataclass
class Calibration:
    playbook: str
    outcome: str
    auc: float
    accounts: int
    positives: int
    by_status: list[StatusRow]
    alerts: list[AlertRow]
    groups: dict[str, SignalStats]
    rules: dict[str, dict[str, SignalStats]]
    roc: tuple[list[float], list[float]]
    suggested: Suggestion | None = None
    suggested_roc: tuple[list[float], list[float]] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def churn_rate(self) -> float:
        return self.positives / self.accounts

    def to_json(self) -> dict[str, Any]:
        """The JSON of `healthscore calibrate --format json`."""
        return {
            "playbook": self.playbook,
            "outcome": self.outcome,
            "auc": self.auc,
            "accounts": self.accounts,
            "positives": self.positives,
            "churn_rate": self.churn_rate,
            "by_status": [r.to_json() for r in self.by_status],
            "alerts": [a.to_json() for a in self.alerts],
            "groups": {name: s.to_json() for name, s in self.groups.items()},
            "rules": {
                group: {name: s.to_json() for name, s in rules.items()}
                for group, rules in self.rules.items()
            },
            "suggested": self.suggested.to_json() if self.suggested else None,
            "warnings": self.warnings,
        }


def calibrate(
    playbook: Playbook,
    snapshot: CrmSnapshot,
    outcome: str | Outcome,
    as_of: datetime,
    *,
    suggest: bool = False,
    folds: int = DEFAULT_FOLDS,
    c: float = DEFAULT_C,
    penalty: str = "l2",
    schema_ref: str = "https://healthscore.dev/schema/playbook.schema.json",
    source_label: str = "the source",
    shares: Mapping[str, float] | None = None,
) -> Calibration:
    """Score every in-segment account and measure the score against `outcome`.

    With `suggest`, also fit and cross-validate a scorecard (see the module doc);
    `shares` ({status: share of accounts}) overrides keeping the original shares.
    """
    scores = Scorer(playbook).score_snapshot(snapshot, as_of)
    if not scores:
        raise CalibrationError(f"no {playbook.object} in {source_label} is in the segment")
    if isinstance(outcome, str):
        outcome = parse_outcome(outcome, snapshot.records(playbook.object))
    labels = outcome_labels(outcome, scores)
    totals = np.array([s.score for s in scores], dtype=float)
    by_status, alerts = status_table(playbook, [s.status for s in scores], labels)
    groups: dict[str, SignalStats] = {}
    rules: dict[str, dict[str, SignalStats]] = {}
    for index, group in enumerate(playbook.groups):
        group_points = np.array([s.groups[index].points for s in scores], dtype=float)
        groups[group.name] = signal_stats(group_points, labels)
        rules[group.name] = {
            rule.name: signal_stats(
                np.array([s.groups[index].rules[j].points for s in scores], dtype=float), labels
            )
            for j, rule in enumerate(group.rules)
        }
    report = Calibration(
        playbook=playbook.name,
        outcome=str(outcome),
        auc=health_auc(totals, labels),
        accounts=len(scores),
        positives=int(labels.sum()),
        by_status=by_status,
        alerts=alerts,
        groups=groups,
        rules=rules,
        roc=roc_curve(totals, labels),
    )
    if outcome.property in _rule_properties(playbook):
        report.warnings.append(
            f"the playbook's rules read the outcome property {outcome.property!r}: "
            "the AUC measures the outcome against itself"
        )
    if suggest:
        fitter = _Fitter(
            playbook,
            scores,
            snapshot.related(playbook.object),
            labels,
            outcome,
            as_of,
            c=c,
            penalty=penalty,
            shares=shares,
            snapshot=snapshot,
        )
        report.suggested, suggested_scores = fitter.run(
            folds, schema_ref=schema_ref, source_label=source_label
        )
        report.suggested_roc = roc_curve(suggested_scores, labels)
    return report


# ---------------------------------------------------------------- backtest

DEFAULT_OUTCOME_DATE_PROPERTY = "churn_date"
"""HubSpot has no standard churn date on companies; `churn_date` is the custom
property most CS teams add (a date, ISO 8601 or epoch milliseconds). Use
`--outcome-date-property` for another one (e.g. a deal's `closedate`)."""

ScoreLookup = Callable[[datetime], Mapping[str, PastScore]]
"""lookup(moment) -> {account id: its newest stored score at or before moment}."""


def backtest(
    playbook: Playbook,
    snapshot: CrmSnapshot,
    outcome: str | Outcome,
    as_of: datetime,
    lookup: ScoreLookup,
    *,
    lead_days: float,
    date_property: str = DEFAULT_OUTCOME_DATE_PROPERTY,
) -> Calibration:
    """Measure the *stored* scores as forecasts: for a churned account, its score
    `lead_days` before its outcome date; for a retained one, its score `lead_days`
    before `as_of` (the end of the observation window). Re-scoring today's CRM
    would leak what happened since; the history is what the CSMs actually saw.

    Every account of the playbook's object in the source counts (no segment: an
    account that churned has usually left it). Accounts with no stored score early
    enough, and churned ones without a readable outcome date, are left out and
    counted in the warnings. No per-rule figures: the store keeps scores, not rules.
    """
    if lead_days < 0:
        raise CalibrationError("--lead-days must be 0 or more")
    records = snapshot.records(playbook.object)
    if isinstance(outcome, str):
        outcome = parse_outcome(outcome, records)
    lead = timedelta(days=lead_days)
    cutoffs: dict[datetime, list[tuple[str, bool]]] = {}
    undated = 0
    for record in records:
        positive = outcome.is_positive(record.properties)
        if positive:
            moment = as_timestamp(record.properties.get(date_property))
            if moment is None:
                undated += 1
                continue
            cutoff = datetime.fromtimestamp(moment, UTC) - lead
        else:
            cutoff = as_of - lead
        cutoffs.setdefault(cutoff, []).append((record.id, positive))
    found: list[tuple[PastScore, bool]] = []
    missing = 0
    for cutoff in sorted(cutoffs):
        stored = lookup(cutoff)
        for account_id, positive in cutoffs[cutoff]:
            past = stored.get(account_id)
            if past is None:
                missing += 1
            else:
                found.append((past, positive))
    warnings: list[str] = []
    if undated:
        warnings.append(
            f"{undated} churned accounts have no readable {date_property}: left out "
            "(set --outcome-date-property)"
        )
    if missing:
        warnings.append(
            f"{missing} accounts have no stored score {lead_days:g} days before their "
            "outcome date: left out"
        )
    labels = np.array([positive for _, positive in found], dtype=bool)
    if not len(labels) or labels.all() or not labels.any():
        which = "no accounts" if not len(labels) else "only one outcome"
        raise CalibrationError(
            f"--from-history: {which} left with a stored score {lead_days:g} days ahead "
            f"({'; '.join(warnings) or 'nothing stored'}); run the playbook on a schedule "
            "first, or lower --lead-days"
        )
    points = np.array([past.score for past, _ in found], dtype=float)
    by_status, alerts = status_table(playbook, [past.status for past, _ in found], labels)
    return Calibration(
        playbook=playbook.name,
        outcome=f"{outcome} ({lead_days:g} days ahead, stored scores)",
        auc=health_auc(points, labels),
        accounts=len(labels),
        positives=int(labels.sum()),
        by_status=by_status,
        alerts=alerts,
        groups={},
        rules={},
        roc=roc_curve(points, labels),
        warnings=warnings,
    )


# ---------------------------------------------------------------- suggestion


@dataclass(frozen=True)
class Column:
    """One property across accounts, parsed once: numbers (NaN when not a number)
    and comparable text ("" when missing), the two readings the engine uses."""

    numbers: FloatArray
    texts: NDArray[np.object_]
    spelling: dict[str, str]  # comparable text -> first spelling seen, for the YAML

    @classmethod
    def of(cls, prop: str, rows: Sequence[Mapping[str, Any]]) -> Column:
        numbers = np.full(len(rows), np.nan)
        texts = np.full(len(rows), "", dtype=object)
        spelling: dict[str, str] = {}
        for i, row in enumerate(rows):
            value = row.get(prop)
            if is_missing(value):
                continue
            number = as_number(value)
            if number is not None:
                numbers[i] = number
            texts[i] = text = as_text(value)
            spelling.setdefault(text, str(value).strip())
        return cls(numbers, texts, spelling)


@dataclass(frozen=True)
class Candidate:
    """A 0/1 feature on one property: a numeric bin or one frequent value. `mask`
    follows the engine's semantics (`gte`/`lt` on numbers, `points_each` on text),
    so the regression sees what the written playbook will score."""

    property: str
    name: str
    conditions: tuple[Condition, ...] = ()  # numeric bin: gte and/or lt
    value: str | None = None  # categorical value (as written in the CRM)

    def mask(self, column: Column) -> BoolArray:
        if self.value is not None:
            return np.asarray(column.texts == as_text(self.value), dtype=bool)
        keep = ~np.isnan(column.numbers)
        with np.errstate(invalid="ignore"):
            for condition in self.conditions:
                bound = float(condition.value)
                keep &= column.numbers >= bound if condition.op == "gte" else column.numbers < bound
        return keep


def _rule_properties(playbook: Playbook) -> list[str]:
    """Account properties (and derived values) the playbook's rules read, in order."""
    seen: dict[str, None] = {}
    for group in playbook.groups:
        for rule in group.rules:
            if rule.kind not in ("property", "value_map", "scale"):
                continue
            for condition in rule.when:
                seen.setdefault(condition.property)
            if rule.property:
                seen.setdefault(rule.property)
    return list(seen)


def candidates_for(
    properties: Sequence[str], columns: Mapping[str, Column], rows: NDArray[np.intp]
) -> list[Candidate]:
    """Quartile bins of numeric properties, one indicator per frequent value of the
    others, learnt from the accounts `rows`; ids and free text (too many distinct
    values) give none."""
    out: list[Candidate] = []
    for prop in properties:
        column = columns[prop]
        texts = column.texts[rows]
        known = texts != ""
        n_known = int(known.sum())
        if not n_known:
            continue
        numbers = column.numbers[rows]
        numbers = numbers[~np.isnan(numbers)]
        if len(numbers) >= 0.95 * n_known and len(np.unique(numbers)) > 8:
            out.extend(_numeric_bins(prop, numbers))
            continue
        counts = Counter(texts[known].tolist())
        if len(counts) > MAX_CATEGORIES:
            continue
        for text, count in counts.most_common():
            if count < MIN_VALUE_SHARE * len(rows):
                break
            value = column.spelling[text]
            out.append(Candidate(prop, f"{prop} is {value}", value=value))
    return out


def _numeric_bins(prop: str, numbers: FloatArray) -> list[Candidate]:
    edges = sorted({float(e) for e in np.quantile(numbers, QUANTILES, method="lower")})
    edges = [e for e in edges if e > float(numbers.min())]
    if not edges:
        return []
    bins = [Candidate(prop, f"{prop} under {_num(edges[0])}", (Condition(prop, "lt", edges[0]),))]
    for low, high in pairwise(edges):
        bins.append(
            Candidate(
                prop,
                f"{prop} {_num(low)} to under {_num(high)}",
                (Condition(prop, "gte", low), Condition(prop, "lt", high)),
            )
        )
    bins.append(
        Candidate(prop, f"{prop} {_num(edges[-1])} or more", (Condition(prop, "gte", edges[-1]),))
    )
    return bins


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 6)


class _Fitter:
    """Fits, rounds and cross-validates the suggested scorecard."""

    def __init__(
        self,
        playbook: Playbook,
        scores: Sequence[AccountScore],
        related: Mapping[str, Mapping[str, Sequence[CrmRecord]]],
        labels: BoolArray,
        outcome: Outcome,
        as_of: datetime,
        *,
        c: float,
        penalty: str,
        shares: Mapping[str, float] | None,
        snapshot: CrmSnapshot | None = None,
    ) -> None:
        if penalty not in ("l1", "l2"):
            raise CalibrationError(f"penalty {penalty!r}: use l1 or l2")
        if c <= 0:
            raise CalibrationError("C must be positive")
        self.playbook = playbook
        self.scores = scores
        self.related = related
        self.snapshot = snapshot  # its lists, for list conditions of the copied segment
        self.labels = labels
        self.outcome = outcome
        self.as_of = as_of
        self.c = c
        self.penalty = penalty
        self.shares = shares
        self.rows = [s.properties for s in scores]
        self.rule_refs = [
            (gi, ri, rule)
            for gi, group in enumerate(playbook.groups)
            for ri, rule in enumerate(group.rules)
        ]
        self.rule_matrix = np.array(
            [[s.groups[gi].rules[ri].points for gi, ri, _ in self.rule_refs] for s in scores],
            dtype=float,
        ).reshape(len(scores), len(self.rule_refs))
        self.properties = [p for p in _rule_properties(playbook) if p != outcome.property]
        self.columns = {p: Column.of(p, self.rows) for p in self.properties}
        self.statuses = [s.status for s in scores]
        self.original = np.array([s.score for s in scores], dtype=float)

    def run(
        self, folds: int, *, schema_ref: str, source_label: str
    ) -> tuple[Suggestion, FloatArray]:
        from sklearn.model_selection import StratifiedKFold

        n_pos = int(self.labels.sum())
        n_neg = len(self.labels) - n_pos
        if folds < 2:
            raise CalibrationError("--folds must be at least 2")
        if min(n_pos, n_neg) < folds:
            raise CalibrationError(
                f"{folds}-fold cross-validation needs at least {folds} accounts of each outcome "
                f"({n_pos} positive, {n_neg} negative); lower --folds"
            )
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=RANDOM_STATE)
        fold_aucs: list[float] = []
        original_aucs: list[float] = []
        everyone = np.arange(len(self.labels))
        for train, test in splitter.split(everyone.reshape(-1, 1), self.labels):
            book, _, _ = self.fit(train)
            held_out = self._score(book, test)
            fold_aucs.append(health_auc(held_out, self.labels[test]))
            original_aucs.append(health_auc(self.original[test], self.labels[test]))
        cv_auc = float(np.mean(fold_aucs))
        original_cv = float(np.mean(original_aucs))
        book, kept_bins, candidates = self.fit(everyone)
        # The offset and thresholds only matter for the written playbook, not for an
        # AUC, so the folds above skip them.
        unshifted = self._score(book, everyone)
        offset = -math.floor(float(unshifted.min()))
        book["groups"][0]["start"] = offset
        book["thresholds"] = self._thresholds(everyone, unshifted + offset)
        header = self._header(source_label, folds, cv_auc, original_cv)
        text = self.render_text(book, schema_ref, header)
        # Score the very text that will be written, so the AUC reported is the file's.
        totals = self._score(parse_playbook(text, "<suggested>"), everyone)
        auc = health_auc(totals, self.labels)
        suggestion = Suggestion(
            yaml=text,
            auc=auc,
            cv_auc=cv_auc,
            original_cv_auc=original_cv,
            fold_aucs=fold_aucs,
            original_fold_aucs=original_aucs,
            folds=folds,
            rules=sum(len(g["rules"]) for g in book["groups"]),
            candidates=candidates,
            bins_kept=kept_bins,
            c=self.c,
            penalty=self.penalty,
        )
        return suggestion, totals

    # -- one fit

    def fit(self, train: NDArray[np.intp]) -> tuple[dict[str, Any], int, int]:
        """Fit on the `train` accounts; returns (playbook dict, bins kept, candidates)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        candidates = candidates_for(self.properties, self.columns, train)
        bins = np.array(
            [c.mask(self.columns[c.property])[train] for c in candidates], dtype=float
        ).T.reshape(len(train), len(candidates))
        x = np.hstack([self.rule_matrix[train], bins])
        y = self.labels[train]
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=self.c, max_iter=2000, **_penalty_args(self.penalty))
        model.fit(scaler.transform(x), y)
        # Per unit of each raw feature, and "healthy = more points": minus the churn log-odds.
        health = -model.coef_[0] / scaler.scale_
        raw = x @ health
        spread = float(raw.max() - raw.min())
        scale = SCORE_SPAN / spread if spread > 0 else 1.0
        book, kept_bins = self._playbook_dict(health * scale, candidates)
        return book, kept_bins, len(candidates)

    def _score(self, book: dict[str, Any] | Playbook, which: NDArray[np.intp]) -> FloatArray:
        playbook = book if isinstance(book, Playbook) else self.render(book)
        records = (CrmRecord(self.scores[i].id, dict(self.rows[i])) for i in which)
        scored = [
            s.score
            for s in Scorer(playbook).score_records(
                records, self.related, self.as_of, self.snapshot
            )
        ]
        if len(scored) != len(which):  # the segment is copied, so it cannot differ
            raise AssertionError("the suggested playbook left accounts out of its segment")
        return np.array(scored, dtype=float)

    def _thresholds(self, train: NDArray[np.intp], new_scores: FloatArray) -> list[dict[str, Any]]:
        """Integer minimums that give each status (about) the share of accounts the
        original playbook gave it on the same accounts, or `shares` when given."""
        ascending = list(reversed(self.playbook.thresholds))
        n = len(train)
        if self.shares is not None:
            counts = [round(self.shares.get(t.label, 0.0) * n) for t in ascending]
        else:
            original = Counter(self.statuses[i] for i in train)
            counts = [original.get(t.label, 0) for t in ascending]
        ordered = np.sort(new_scores)
        mins: list[int] = [0]
        below = 0
        for count in counts[:-1]:
            below += count
            value = int(ordered[below]) if below < n else int(ordered[-1]) + 1
            mins.append(max(value, mins[-1] + 1))
        return [
            {"min": m, "label": t.label, "color": t.color}
            for m, t in reversed(list(zip(mins, ascending, strict=True)))
        ]

    # -- the playbook

    def _playbook_dict(
        self, points: FloatArray, candidates: Sequence[Candidate]
    ) -> tuple[dict[str, Any], int]:
        """Groups of the original with their rules re-weighted, then the kept bins;
        also the number of candidate features kept."""
        groups: list[dict[str, Any]] = []
        for gi, group in enumerate(self.playbook.groups):
            kept: list[dict[str, Any]] = []
            for k, (g, _, rule) in enumerate(self.rule_refs):
                if g != gi:
                    continue
                scaled = _scaled_rule(rule, float(points[k]))
                if scaled is not None:
                    kept.append(scaled)
            if kept:
                groups.append({"name": group.name, "rules": kept})
        offset = len(self.rule_refs)
        by_property: dict[str, list[tuple[Candidate, int]]] = {}
        for j, candidate in enumerate(candidates):
            value = round(float(points[offset + j]))
            if value:
                by_property.setdefault(candidate.property, []).append((candidate, value))
        kept_bins = sum(len(items) for items in by_property.values())
        bins: list[dict[str, Any]] = []
        for prop, items in by_property.items():
            if items[0][0].value is not None:
                bins.append(
                    {
                        "name": f"{prop} (calibrated)",
                        "property": prop,
                        "points_each": {c.value: v for c, v in items},
                        "_comment": "one value each; other values get 0",
                    }
                )
            else:
                bins.extend(
                    {"name": c.name, "when": [_condition(x) for x in c.conditions], "points": v}
                    for c, v in items
                )
        if bins:
            names = {g["name"] for g in groups}
            name = BINS_GROUP
            while name in names:
                name += " (2)"
            groups.append({"name": name, "rules": bins})
        if not groups:
            raise CalibrationError(
                "the regression kept nothing: every rule and bin rounds to 0 points; "
                "try a larger C or check the outcome"
            )
        return {"groups": groups, "thresholds": []}, kept_bins

    def render(self, book: dict[str, Any]) -> Playbook:
        thresholds = book["thresholds"] or [{"min": 0, "label": "all", "color": "gray"}]
        return parse_playbook(
            self.render_text({**book, "thresholds": thresholds}, "", []), "<suggested>"
        )

    def render_text(self, book: dict[str, Any], schema_ref: str, header: list[str]) -> str:
        lines: list[str] = []
        if schema_ref:
            lines.append(f"# yaml-language-server: $schema={schema_ref}")
        if header:
            lines.extend(["#", *header])
        lines.append("")
        lines.append(f"name: {_flow(self.playbook.name + ' (calibrated)')}")
        lines.append(f"object: {self.playbook.object}")
        if self.playbook.segment:
            lines.append("segment:")
            lines.extend(f"  - {_flow(_condition(c))}" for c in self.playbook.segment)
        if self.playbook.segments:
            lines.append("segments:")
            lines.extend(
                f"  - {_flow([_condition(c) for c in option])}" for option in self.playbook.segments
            )
        if self.playbook.derived:
            lines.append("derived:")
            lines.extend(f"  {name}: {_flow(e.source)}" for name, e in self.playbook.derived)
        lines.append("combine: sum")
        lines.append("")
        lines.append("groups:")
        for group in book["groups"]:
            lines.append(f"  - name: {_flow(group['name'])}")
            if group.get("start"):
                lines.append(
                    f"    start: {group['start']}  # offset: the lowest account scores about 0"
                )
            lines.append("    rules:")
            for rule in group["rules"]:
                if "_comment" in rule:
                    lines.append(f"      # {rule['_comment']}")
                first = True
                for key, value in rule.items():
                    if key.startswith("_"):
                        continue
                    prefix = "      - " if first else "        "
                    lines.append(f"{prefix}{key}: {_flow(value)}")
                    first = False
        lines.append("")
        lines.append("thresholds:")
        lines.extend(f"  - {_flow(t)}" for t in book["thresholds"])
        lines.append("")
        lines.append(f"writeback: {'true' if self.playbook.writeback else 'false'}")
        return "\n".join(lines) + "\n"

    def _header(
        self, source_label: str, folds: int, cv_auc: float, original_cv: float
    ) -> list[str]:
        origin = self.playbook.path or self.playbook.name
        return [
            f"# Suggested by `healthscore calibrate` from {origin}",
            f"# on {source_label}: {len(self.labels)} accounts, outcome {self.outcome} "
            f"({int(self.labels.sum())} positive), as of {self.as_of.isoformat()}.",
            f"# How: {self.penalty.upper()}-regularised logistic regression (C={self.c:g}, "
            "standardised inputs) on each",
            "# original rule's points plus quartile bins and frequent values of the properties",
            "# the playbook reads; the coefficients became integer points (healthy = more",
            f"# points, about 0..{SCORE_SPAN:g} across the accounts), rules worth 0 were dropped,",
            "# and the thresholds keep each status's share of accounts.",
            f"# {folds}-fold cross-validated AUC of this kind of playbook: {cv_auc:.4f}",
            f"# (the original playbook on the same folds: {original_cv:.4f}).",
            "# Review before adopting: the original's actions are not copied (score-based",
            "# triggers need new numbers), nor its group caps and weights.",
        ]


def _penalty_args(penalty: str) -> dict[str, Any]:
    """scikit-learn 1.8 replaced `penalty` by `l1_ratio`; support both sides."""
    import sklearn

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    solver = "liblinear" if penalty == "l1" else "lbfgs"
    if (major, minor) >= (1, 8):
        return {"l1_ratio": 1.0 if penalty == "l1" else 0.0, "solver": solver}
    return {"penalty": penalty, "solver": solver}


def _scaled_rule(rule: Rule, factor: float) -> dict[str, Any] | None:
    """The rule with every point value multiplied by `factor` and rounded to an
    integer; None when all of them round to 0 (the rule would never count)."""

    def r(value: float | None) -> int:
        return round((value or 0.0) * factor)

    out: dict[str, Any] = {"name": rule.name}
    if rule.description:
        out["description"] = rule.description
    nonzero = False
    if rule.kind == "property":
        out["when"] = [_condition(c) for c in rule.when]
        out["points"] = r(rule.points)
        nonzero = out["points"] != 0
    elif rule.kind == "value_map" or (rule.kind == "associated" and rule.property):
        if rule.kind == "associated":
            out["associated"] = rule.associated
            out["aggregate"] = rule.aggregate
        out["property"] = rule.property
        each = {k: r(v) for k, v in rule.points_each.items()}
        out["points_each"] = {k: v for k, v in each.items() if v}
        nonzero = bool(out["points_each"])
    elif rule.kind == "scale":
        assert rule.scale_from is not None and rule.scale_to is not None
        out["property"] = rule.property
        out["scale"] = {"from": list(rule.scale_from), "to": [r(v) for v in rule.scale_to]}
        nonzero = any(out["scale"]["to"])
    elif rule.kind == "associated":
        out["associated"] = rule.associated
        out["when"] = [_condition(c) for c in rule.when]
        out["points"] = r(rule.points)
        out["aggregate"] = rule.aggregate
        nonzero = out["points"] != 0
    else:  # event
        out["event"] = rule.event
        if rule.where:
            out["where"] = [_condition(c) for c in rule.where]
        if rule.within_days is not None:
            out["within_days"] = rule.within_days
        if rule.timestamp_property:
            out["timestamp_property"] = rule.timestamp_property
        if rule.frequency:
            out["frequency"] = [_band(b, r(b.points)) for b in rule.frequency]
            nonzero = any(b["points"] for b in out["frequency"])
        else:
            out["points"] = r(rule.points)
            nonzero = out["points"] != 0
            if rule.limit is not None:
                out["limit"] = abs(r(rule.limit))
                nonzero = nonzero and out["limit"] != 0
            if rule.decay:
                out["decay"] = {"percent": rule.decay.percent, "every_days": rule.decay.every_days}
    if not nonzero:
        return None
    out["_comment"] = f"original points × {factor:.3g}"
    return out


def _band(band: Band, points: int) -> dict[str, Any]:
    if band.exactly is not None:
        return {"exactly": band.exactly, "points": points}
    if band.between is not None:
        return {"between": list(band.between), "points": points}
    return {"at_least": band.at_least, "points": points}


def _condition(condition: Condition) -> dict[str, Any]:
    if condition.in_list is not None:
        return {"list": condition.in_list, "member": condition.member}
    out: dict[str, Any] = {"property": condition.property, "op": condition.op}
    if condition.value is not None:
        out["value"] = condition.value
    return out


def _flow(value: Any) -> str:
    """A YAML flow value: JSON is valid YAML, and quoting every string keeps CRM
    text ("Yes", "No", "1.0", "on") from turning into booleans or numbers."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(_ints(value), ensure_ascii=False)


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value
