"""The weekly leadership digest: one Slack message (Block Kit) about the whole portfolio.

Why a digest and not more alerts: CSMs get a message per account that turns red;
leadership wants one message on Monday morning that says how the book of business
moved this week, whose accounts are slipping, and which accounts just turned red.

"This week" is measured against each account's newest stored score at or before the
latest run's as-of minus 7 days (one set query), so a digest is right whether the
scoring runs daily or weekly. Everything else comes from the same `Portfolio` as the
dashboard and the Prefect artifacts, so the three never disagree.

CRM text is escaped for Slack mrkdwn (`&`, `<`, `>`, Slack's documented escapes): a
company named `<!channel>` is shown, never pings anyone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from healthscore.core.symbols import chip
from healthscore.core.trends import PastScore
from healthscore.history import HistoryStore
from healthscore.reports.portfolio import AccountView, Portfolio, load_portfolio

WEEK = timedelta(days=7)
MAX_OWNERS = 15
MAX_NEW_AT_RISK = 10
MOVERS = 5


@dataclass(frozen=True)
class WeeklyMove:
    account: AccountView
    before: float
    change: float


@dataclass
class Digest:
    portfolio: Portfolio
    week_ago: Mapping[str, PastScore] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {s.label: s.count for s in self.portfolio.status_counts()}

    @property
    def counts_week_ago(self) -> dict[str, int] | None:
        if not self.week_ago:
            return None
        counts = Counter(past.status for past in self.week_ago.values())
        return {s.label: counts.get(s.label, 0) for s in self.portfolio.statuses}

    def new_at_risk(self) -> list[AccountView]:
        """At risk now and not a week ago (or not scored then), lowest score first."""
        risk = self.portfolio.risk_label
        fresh = [
            a
            for a in self.portfolio.accounts
            if a.status == risk
            and (a.id not in self.week_ago or self.week_ago[a.id].status != risk)
        ]
        return sorted(fresh, key=lambda a: (a.score, a.id))

    def moves(self) -> list[WeeklyMove]:
        """Score change over the week of every account scored both now and a week ago."""
        return [
            WeeklyMove(a, self.week_ago[a.id].score, round(a.score - self.week_ago[a.id].score, 2))
            for a in self.portfolio.accounts
            if a.id in self.week_ago
        ]

    def fallers(self, limit: int = MOVERS) -> list[WeeklyMove]:
        moves = [m for m in self.moves() if m.change < 0]
        return sorted(moves, key=lambda m: (m.change, m.account.id))[:limit]

    def risers(self, limit: int = MOVERS) -> list[WeeklyMove]:
        moves = [m for m in self.moves() if m.change > 0]
        return sorted(moves, key=lambda m: (-m.change, m.account.id))[:limit]


def load_digest(
    store: HistoryStore,
    playbook: str | None = None,
    statuses: list[tuple[str, str]] | None = None,
) -> Digest:
    """The latest run's portfolio and every account's standing a week before it."""
    portfolio = load_portfolio(store, playbook, statuses)
    week_ago = store.latest_per_account(portfolio.playbook, portfolio.run.as_of - WEEK)
    return Digest(portfolio, week_ago)


def slack_escape(text: object) -> str:
    """Slack mrkdwn's documented escapes; newlines folded so a name stays on its line."""
    flat = " ".join(str(text).split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def digest_message(digest: Digest, dashboard_hint: str | None = None) -> dict[str, Any]:
    """`{"text": ..., "blocks": [...]}` for `chat.postMessage`."""
    p = digest.portfolio
    e = slack_escape
    counts, before = digest.counts, digest.counts_week_ago
    new_risk = digest.new_at_risk()
    status_line = ", ".join(f"{e(s.label)} {counts[s.label]}" for s in p.statuses)
    text = (
        f"{e(p.playbook)} weekly digest: {len(p.accounts)} accounts as of "
        f"{p.run.as_of:%Y-%m-%d} ({status_line}); "
        f"{len(new_risk)} new {e(p.risk_label)} this week"
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _plain(f"{p.playbook}: weekly digest")[:150]},
        },
        _context(
            f"{len(p.accounts)} accounts as of {p.run.as_of:%a %d %b %Y}"
            + (
                f" · compared with {p.run.as_of - WEEK:%a %d %b}"
                if before is not None
                else " · no scores a week older yet"
            )
        ),
    ]

    lines = []
    for s in p.statuses:
        share = 100.0 * counts[s.label] / len(p.accounts) if p.accounts else 0.0
        change = "" if before is None else f" ({counts[s.label] - before[s.label]:+d} this week)"
        lines.append(f"{chip(s.color)} *{e(s.label)}*: {counts[s.label]} ({share:.0f}%){change}")
    lines.append(f"Average score: {p.average:.1f}")
    blocks.append(_section("*By status*\n" + "\n".join(lines)))

    owners = p.owners()
    owner_lines = [
        f"• *{e(o.name)}*: {o.accounts} account{'' if o.accounts == 1 else 's'} · "
        f"avg {o.average:.1f} · "
        f"{chip(p.statuses[-1].color)} {o.at_risk} {e(p.risk_label)}"
        for o in owners[:MAX_OWNERS]
    ]
    if len(owners) > MAX_OWNERS:
        owner_lines.append(f"…and {len(owners) - MAX_OWNERS} more CSMs")
    blocks.append(_section("*By CSM* (most at-risk first)\n" + "\n".join(owner_lines)))

    if new_risk:
        risk_lines = [
            f"• {e(a.name)} ({e(a.owner)}): {a.score:g}"
            + (f", was {e(digest.week_ago[a.id].status)}" if a.id in digest.week_ago else ", new")
            for a in new_risk[:MAX_NEW_AT_RISK]
        ]
        if len(new_risk) > MAX_NEW_AT_RISK:
            risk_lines.append(f"…and {len(new_risk) - MAX_NEW_AT_RISK} more")
        body = "\n".join(risk_lines)
    else:
        body = "None."
    blocks.append(_section(f"*New {e(p.risk_label)} this week: {len(new_risk)}*\n{body}"))

    fallers, risers = digest.fallers(), digest.risers()
    if fallers or risers:
        move_lines = [
            f"↘️ {e(m.account.name)}: {m.before:g} → {m.account.score:g} ({m.change:+g})"
            for m in fallers
        ] + [
            f"↗️ {e(m.account.name)}: {m.before:g} → {m.account.score:g} ({m.change:+g})"
            for m in risers
        ]
        blocks.append(_section("*Biggest moves this week*\n" + "\n".join(move_lines)))
    if dashboard_hint:
        blocks.append(_context(e(dashboard_hint)))
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _plain(text: str) -> str:
    return " ".join(text.split())
