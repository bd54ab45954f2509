"""The portfolio as Prefect UI artifacts: a markdown story and an account table.

Why: RevOps watch runs in the Prefect UI, and the run page should tell the same story
as the executive dashboard (headline, by status, by CSM, movers) without opening
anything else. Rendered from the same `Portfolio` as the dashboard and the digest.
CRM text is escaped for markdown: a company called `*<b>|Acme_` stays that string.
"""

from __future__ import annotations

import heapq
import html
import re
from typing import Any

from healthscore.core.symbols import arrow, chip
from healthscore.reports.portfolio import AccountView, Portfolio
from healthscore.reports.run_summary import TABLE_ARTIFACT_ROWS

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|~>])")


def md(text: object) -> str:
    """Text that markdown shows as typed: HTML escaped, markdown punctuation backslashed."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def portfolio_markdown(p: Portfolio, dashboard_uri: str | None = None, movers: int = 5) -> str:
    """Headline, by status, by CSM, movers: the dashboard's story in markdown."""
    lines = [f"# {md(p.playbook)}: {len(p.accounts)} accounts as of {p.run.as_of:%Y-%m-%d}", ""]
    headline = [f"{chip(s.color)} {md(s.label)} {p.share(s.label):.0f}%" for s in p.statuses]
    average = f"average score {p.average:.1f}"
    if p.previous_average is not None:
        average += f" ({p.average - p.previous_average:+.1f} since the previous run)"
    lines += [" · ".join([*headline, average]), ""]
    if dashboard_uri:
        lines += [f"[Open the dashboard]({dashboard_uri})", ""]

    lines += ["## By status", "", "| status | accounts | share | since the previous run |"]
    lines.append("|---|---:|---:|---:|")
    for s in p.status_counts():
        change = "—" if s.change is None else f"{s.change:+d}"
        lines.append(
            f"| {chip(s.color)} {md(s.label)} | {s.count} | {p.share(s.label):.0f}% | {change} |"
        )

    lines += ["", "## By CSM", ""]
    head = " | ".join(f"{chip(s.color)} {md(s.label)}" for s in p.statuses)
    lines += [f"| CSM | accounts | average | {head} |"]
    lines.append("|---|---:|---:|" + "---:|" * len(p.statuses))
    for o in p.owners():
        cells = " | ".join(str(o.by_status.get(s.label, 0)) for s in p.statuses)
        lines.append(f"| {md(o.name)} | {o.accounts} | {o.average:.1f} | {cells} |")

    lines += ["", "## Biggest movers", ""]
    moved = p.fallers(movers) + p.risers(movers)
    if moved:
        lines += ["| account | CSM | score | change | status |", "|---|---|---:|---:|---|"]
        lines += [_mover_line(a) for a in moved]
    else:
        lines.append("No account moved yet: trends need a score older than the trend window.")
    return "\n".join(lines) + "\n"


def portfolio_table(p: Portfolio, limit: int = TABLE_ARTIFACT_ROWS) -> list[dict[str, Any]]:
    """One row per account, lowest score first, at most `limit` (`TABLE_ARTIFACT_ROWS`):
    the Prefect UI's table artifact."""
    return [
        {
            "account": a.name,
            "id": a.id,
            "csm": a.owner,
            "score": a.score,
            "status": f"{chip(a.color)} {a.status}",
            "trend": f"{arrow(a.trend)} {a.trend}",
            "change": a.delta,
            "since_previous_run": a.since_last_run,
        }
        for a in heapq.nsmallest(limit, p.accounts, key=lambda a: (a.score, a.id))
    ]


def _mover_line(a: AccountView) -> str:
    return (
        f"| {md(a.name)} ({md(a.id)}) | {md(a.owner)} | {a.score:g} | "
        f"{arrow(a.trend)} {a.delta or 0:+g} | {chip(a.color)} {md(a.status)} |"
    )
