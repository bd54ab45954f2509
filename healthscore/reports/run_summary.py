"""The report of one scoring run: counts by status, biggest movers, status changes.

RevOps read it in the Prefect UI (as artifacts) and in the terminal after
`healthscore run`; both come from the same `RunSummary`, so they never disagree.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from healthscore.core.enrich import EnrichCounts
from healthscore.core.playbook import Playbook
from healthscore.core.symbols import TREND_ARROWS, chip
from healthscore.core.trends import (
    Comparison,
    biggest_movers,
    counts_by_status,
    status_changes,
)
from healthscore.history.ledger import ActionCounts

MOVERS = 10


@dataclass
class Mover:
    id: str
    name: str
    previous: float | None
    score: float
    delta: float | None
    trend: str
    status: str


@dataclass
class StatusChange:
    id: str
    name: str
    before: str
    after: str
    score: float


@dataclass
class EnrichmentSummary:
    """What one `enrich:` entry brought (`run --json`: `enrichment`): rows read, rows
    joined onto an account, rows that matched none (the first few keys, to find the
    mismatch), and scored accounts that got no row (their columns are unknown)."""

    name: str
    origin: str
    rows: int
    matched_rows: int
    unmatched_rows: int
    unmatched_keys: list[str]
    scored_accounts: int
    unmatched_accounts: int

    @classmethod
    def of(cls, counts: EnrichCounts, scored: Iterable[str]) -> EnrichmentSummary:
        ids = set(scored)
        return cls(
            name=counts.name,
            origin=counts.origin,
            rows=counts.rows,
            matched_rows=counts.matched_rows,
            unmatched_rows=counts.unmatched_rows,
            unmatched_keys=list(counts.unmatched_keys),
            scored_accounts=len(ids),
            unmatched_accounts=counts.unmatched_accounts(ids),
        )

    def describe(self) -> str:
        """`enrich:usage (postgresql): 3 rows, 2 joined, 1 unmatched (ghost.org); 1 of 3
        scored accounts without a row`."""
        line = f"{self.origin}: {self.rows} rows, {self.matched_rows} joined"
        if self.unmatched_rows:
            more = ", …" if self.unmatched_rows > len(self.unmatched_keys) else ""
            line += f", {self.unmatched_rows} unmatched ({', '.join(self.unmatched_keys)}{more})"
        return (
            line + f"; {self.unmatched_accounts} of {self.scored_accounts} scored accounts "
            "without a row"
        )


@dataclass
class RunSummary:
    """Everything a person wants to know about a run, JSON-friendly."""

    playbook: str
    as_of: str
    source: str
    dry_run: bool
    run_id: int | None
    accounts: int
    counts: dict[str, int]
    trends: dict[str, int]
    movers: list[Mover] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    new_accounts: int = 0
    pull_incremental: bool = False
    pull_calls: int = 0
    pull_reason: str = ""  # why the pull was full or incremental
    pull_associations: str = ""  # how it read the associations (`PulledCrm.associations`)
    dashboard: str = ""  # the dashboard file's URI, once written (not on a dry run)
    pull_shared_with: list[str] = field(default_factory=list)
    """The other playbooks scored from the same pull (`run -p a.yaml -p b.yaml`)."""
    enrichment: list[EnrichmentSummary] = field(default_factory=list)
    written_records: int = 0
    written_values: int = 0
    writeback_calls: int = 0
    writeback_skipped: str | None = None
    writeback_refused: int = 0
    actions: ActionCounts = field(default_factory=ActionCounts)
    failures: list[str] = field(default_factory=list)
    """One line per vendor refusal (write-back first, then each failed action), in the
    vendor's own words: the summary's "what to fix" list."""
    action_notes: list[str] = field(default_factory=list)
    """Why actions were held or skipped, one line per reason (first run, unconfigured kinds)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = self.actions.to_json()
        return data


def summarize(
    playbook: Playbook,
    comparisons: Sequence[Comparison],
    *,
    as_of: str,
    source: str,
    dry_run: bool,
    run_id: int | None,
    enrichment: Sequence[EnrichCounts] = (),
) -> RunSummary:
    """The summary of a run's comparisons; `enrichment`: the counts of its `enrich:` joins."""
    trends = {name: 0 for name in TREND_ARROWS}
    for c in comparisons:
        trends[c.trend] += 1
    return RunSummary(
        playbook=playbook.name,
        as_of=as_of,
        source=source,
        dry_run=dry_run,
        run_id=run_id,
        accounts=len(comparisons),
        counts=counts_by_status(playbook, comparisons),
        trends=trends,
        movers=[
            Mover(c.id, c.score.name, c.previous, c.rounded, c.delta, c.trend, c.status)
            for c in biggest_movers(comparisons, MOVERS)
        ],
        changes=[
            StatusChange(c.id, c.score.name, c.transition.before or "", c.status, c.rounded)
            for c in status_changes(comparisons)
            if c.transition is not None
        ],
        new_accounts=sum(1 for c in comparisons if c.previous_status is None),
        enrichment=[EnrichmentSummary.of(e, (c.id for c in comparisons)) for e in enrichment],
    )


def markdown_report(playbook: Playbook, summary: RunSummary) -> str:
    """The run as markdown: for the Prefect UI's markdown artifact."""
    colors = {t.label: t.color for t in playbook.thresholds}
    title = f"# {summary.playbook}: {summary.accounts} accounts as of {summary.as_of}"
    lines = [title, ""]
    if summary.dry_run:
        lines += ["_Dry run: nothing stored, nothing written to HubSpot._", ""]
    lines += ["| status | accounts |", "|---|---:|"]
    for label, count in summary.counts.items():
        lines.append(f"| {chip(colors.get(label, ''))} {label} | {count} |")
    trend_text = ", ".join(f"{TREND_ARROWS[k]} {k}: {v}" for k, v in summary.trends.items())
    lines += ["", f"Trends: {trend_text}", ""]
    lines += ["## Status changes", ""]
    if summary.changes:
        lines += ["| account | from | to | score |", "|---|---|---|---:|"]
        lines += [
            f"| {_cell(c.name)} ({c.id}) | {c.before} | {c.after} | {c.score:g} |"
            for c in summary.changes
        ]
    else:
        lines.append("None.")
    lines += ["", "## Biggest movers", ""]
    if summary.movers:
        lines += ["| account | previous | score | delta | trend |", "|---|---:|---:|---:|---|"]
        lines += [
            f"| {_cell(m.name)} ({m.id}) | {_num(m.previous)} | {m.score:g} | "
            f"{_signed(m.delta)} | {TREND_ARROWS[m.trend]} |"
            for m in summary.movers
        ]
    else:
        lines.append("No account moved.")
    lines += [
        "",
        "## Run",
        "",
        f"- source: `{summary.source}` ("
        + ("incremental" if summary.pull_incremental else "full")
        + f" pull, {summary.pull_calls} API calls"
        + (f"; {summary.pull_reason}" if summary.pull_reason else "")
        + (f"; {summary.pull_associations}" if summary.pull_associations else "")
        + (
            f"; shared with {', '.join(summary.pull_shared_with)}"
            if summary.pull_shared_with
            else ""
        )
        + ")",
        *(f"- {_cell(e.describe())}" for e in summary.enrichment),
        f"- write-back: {summary.written_values} values on {summary.written_records} records"
        + (f" ({summary.writeback_skipped})" if summary.writeback_skipped else "")
        + (f", {summary.writeback_refused} refused" if summary.writeback_refused else ""),
        f"- actions: {summary.actions.describe()}",
        *(f"  - {note}" for note in summary.action_notes),
    ]
    if summary.run_id is not None:
        lines.append(f"- history run id: {summary.run_id}")
    if summary.failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {_cell(line)}" for line in summary.failures]
    return "\n".join(lines) + "\n"


TABLE_ARTIFACT_ROWS = 1_000
"""Rows of a Prefect table artifact: the lowest scores. The whole portfolio (100k accounts
would be a 20 MB artifact posted to the Prefect API each run) is in the dashboard."""


def table_rows(
    comparisons: Sequence[Comparison], limit: int = TABLE_ARTIFACT_ROWS
) -> list[dict[str, Any]]:
    """One row per account, lowest score first, at most `limit`: for the Prefect UI's
    table artifact."""
    lowest = heapq.nsmallest(limit, comparisons, key=lambda c: (c.rounded, c.id))
    return [
        {
            "id": c.id,
            "account": c.score.name,
            "score": c.rounded,
            "status": c.status,
            "previous": c.previous,
            "delta": c.delta,
            "trend": f"{c.arrow} {c.trend}",
            "previous_status": c.previous_status or "",
        }
        for c in lowest
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+g}"
