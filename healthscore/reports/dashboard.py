"""The executive dashboard: one self-contained HTML file, readable offline.

Why a file and not a web app: executives open what they are sent, a CS ops person can
mail it or drop it in a shared drive, and it needs no server, no login and no
internet (Plotly's JavaScript is inlined once, the table's few lines of JavaScript are
inline too). The file is rendered from a `Portfolio`, the same numbers as the Prefect
artifacts and the Slack digest.

Escaping, because CRM text is user input: account, owner and playbook names reach the
page only as (a) HTML-escaped text in the static parts, (b) JSON inside
`<script type="application/json">` with `<`, `>` and `&` written as `\\u003c`-style
escapes (so `</script>` cannot end the block), read with `JSON.parse` and put in the
page with `textContent`, and (c) Plotly labels, HTML-escaped because Plotly renders a
few tags in labels.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from healthscore.core.symbols import STATUS_CHIPS, TREND_ARROWS, chip
from healthscore.reports.portfolio import Portfolio

PALETTE = {"green": "#2f9e5b", "yellow": "#e6b000", "red": "#d64545", "": "#8a94a6"}
MOVERS = 10
DASHBOARD_DIR_ENV = "HEALTHSCORE_DASHBOARD_DIR"
FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


def css_color(color: str) -> str:
    """The status color as CSS: our palette, a plain CSS name or #hex, else grey."""
    if color in PALETTE:
        return PALETTE[color]
    if re.fullmatch(r"[a-zA-Z]{3,20}|#[0-9a-fA-F]{3,8}", color):
        return color
    return PALETTE[""]


def render_dashboard(portfolio: Portfolio, generated: datetime | None = None) -> str:
    """The whole dashboard as one HTML document (about 5 MB: Plotly is inside)."""
    p = portfolio
    figures = [
        _figure_statuses(p),
        _figure_timeline(p),
        _figure_owners(p),
        _figure_distribution(p),
        _figure_movers(p),
    ]
    divs = [
        fig.to_html(
            full_html=False,
            include_plotlyjs=(i == 0),  # Plotly's JavaScript inlined once, for the whole page
            config=FIGURE_CONFIG,
            div_id=f"hs-fig-{name}",
        )
        for i, (name, fig) in enumerate(figures)
    ]
    fig = dict(zip([name for name, _ in figures], divs, strict=True))
    title = f"{p.playbook} — health dashboard"
    previous = f" · previous run {_day(p.previous_run.as_of)}" if p.previous_run is not None else ""
    stamp = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z")
    return _PAGE.format(
        title=_e(title),
        style=_asset("dashboard.css"),
        script=_asset("dashboard.js"),
        heading=_e(title),
        subtitle=_e(
            f"{len(p.accounts)} accounts as of {_day(p.run.as_of)} · run {p.run.id}{previous}"
        ),
        cards=_cards(p),
        fig_statuses=fig["statuses"],
        fig_timeline=fig["timeline"],
        fig_owners=fig["owners"],
        owner_table=_owner_table(p),
        fig_distribution=fig["distribution"],
        fig_movers=fig["movers"],
        status_options="".join(
            f'<option value="{_e(s.label)}">{chip(s.color)} {_e(s.label)}</option>'
            for s in p.statuses
        ),
        owner_options="".join(
            f'<option value="{_e(o.name)}">{_e(o.name)}</option>'
            for o in sorted(p.owners(), key=lambda o: o.name.casefold())
        ),
        data=embed_json(_data(p)),
        generated=_e(stamp),
    )


def write_dashboard(portfolio: Portfolio, path: Path) -> Path:
    """Write atomically (temp file + rename): a reader never sees half a dashboard."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_dashboard(portfolio)
    fd, temp = tempfile.mkstemp(prefix=".dashboard-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def dashboard_path(playbook: str, db_url: str | None = None, target: str | None = None) -> Path:
    """Where a run writes its dashboard.

    `target` (or `$HEALTHSCORE_DASHBOARD_DIR`): a `.html` file, or a folder that gets
    `dashboard-<playbook>.html`. Default folder: next to the SQLite history file (the
    user already knows where that is), else the data folder for a database server.
    """
    from healthscore.history import data_dir, default_db_url
    from healthscore.integrations.hubspot.writeback import slug

    chosen = target or os.environ.get(DASHBOARD_DIR_ENV, "").strip() or None
    if chosen and chosen.lower().endswith((".html", ".htm")):
        return Path(chosen).expanduser()
    if chosen:
        folder = Path(chosen).expanduser()
    else:
        url = sa.make_url(db_url or default_db_url())
        database = url.database or ""
        sqlite_file = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
        folder = Path(database).expanduser().parent if sqlite_file else data_dir()
    return folder / f"dashboard-{slug(playbook).replace('_', '-')}.html"


def embed_json(value: Any) -> str:
    """JSON that is safe inside `<script type="application/json">`: no `<`, `>` or `&`."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


# ---------------------------------------------------------------- static parts


def _cards(p: Portfolio) -> str:
    cards = []
    total_before = p.previous_run.accounts if p.previous_run is not None else None
    cards.append(
        _card(
            "Accounts",
            f"{len(p.accounts)}",
            _change(len(p.accounts) - total_before if total_before is not None else None),
            "accounts",
        )
    )
    for status in p.status_counts():
        cards.append(
            _card(
                f"{chip(status.color)} {status.label}",
                f"{p.share(status.label):.0f}%",
                f"{status.count} accounts · {_change(status.change)}",
                f"status-{status.label}",
            )
        )
    before = p.previous_average
    cards.append(
        _card(
            "Average score",
            f"{p.average:.1f}",
            _change(None if before is None else round(p.average - before, 1)),
            "average",
        )
    )
    return "\n".join(cards)


def _card(label: str, value: str, note: str, key: str) -> str:
    return (
        f'<div class="card" data-card="{_e(key)}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
    )


def _change(value: float | None) -> str:
    if value is None:
        return "first run"
    if value == 0:
        return "no change since the previous run"
    return f"{value:+g} since the previous run"


def _owner_table(p: Portfolio) -> str:
    head = "".join(f"<th>{chip(s.color)} {_e(s.label)}</th>" for s in p.statuses)
    rows = []
    for owner in p.owners():
        cells = "".join(
            f'<td class="num">{owner.by_status.get(s.label, 0)}</td>' for s in p.statuses
        )
        rows.append(
            f'<tr><td>{_e(owner.name)}</td><td class="num">{owner.accounts}</td>'
            f'<td class="num">{owner.average:.1f}</td>{cells}</tr>'
        )
    return (
        '<table class="owners" id="hs-owner-table"><thead><tr><th>CSM</th><th>accounts</th>'
        f"<th>average score</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _data(p: Portfolio) -> dict[str, Any]:
    """What the account table's JavaScript reads: one compact record per account."""
    return {
        "statuses": [{"label": s.label, "color": s.color} for s in p.statuses],
        "chips": STATUS_CHIPS,
        "arrows": TREND_ARROWS,
        "accounts": [
            {
                "id": a.id,
                "name": a.name,
                "owner": a.owner,
                "score": a.score,
                "status": a.status,
                "color": a.color,
                "trend": a.trend,
                "delta": a.delta,
                "since": a.since_last_run,
                "previous_status": a.previous_status,
                "groups": a.groups,
                "rules": a.rules,
                "history": [[_day(moment), score] for moment, score in a.history],
            }
            for a in p.accounts
        ],
    }


# ---------------------------------------------------------------- figures


def _layout(fig: Any, height: int, **extra: Any) -> Any:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        **extra,
    )
    return fig


def _figure_statuses(p: Portfolio) -> tuple[str, Any]:
    import plotly.graph_objects as go

    counts = p.status_counts()
    fig = go.Figure(
        go.Pie(
            labels=[_e(s.label) for s in counts],
            values=[s.count for s in counts],
            marker={"colors": [css_color(s.color) for s in counts]},
            hole=0.55,
            sort=False,
            direction="clockwise",
            textinfo="label+value",
            hovertemplate="%{label}: %{value} accounts (%{percent})<extra></extra>",
        )
    )
    return "statuses", _layout(fig, 300, showlegend=False)


def _figure_timeline(p: Portfolio) -> tuple[str, Any]:
    import plotly.graph_objects as go

    timeline = p.timeline()
    days = [_day(moment) for moment, _ in timeline]
    fig = go.Figure(
        [
            go.Bar(
                name=_e(s.label),
                x=days,
                y=[counts.get(s.label, 0) for _, counts in timeline],
                marker_color=css_color(s.color),
                hovertemplate=f"{_e(s.label)}: %{{y}}<extra>%{{x}}</extra>",
            )
            for s in p.statuses
        ]
    )
    return "timeline", _layout(fig, 300, barmode="stack", xaxis={"type": "category"})


def _figure_owners(p: Portfolio) -> tuple[str, Any]:
    import plotly.graph_objects as go

    owners = list(reversed(p.owners()))  # most at-risk on top
    names = [_e(o.name) for o in owners]
    fig = go.Figure(
        [
            go.Bar(
                name=_e(s.label),
                y=names,
                x=[o.by_status.get(s.label, 0) for o in owners],
                orientation="h",
                marker_color=css_color(s.color),
                customdata=[[o.accounts, o.average, o.at_risk] for o in owners],
                hovertemplate=(
                    f"%{{y}} — {_e(s.label)}: %{{x}}<br>%{{customdata[0]}} accounts, "
                    "average %{customdata[1]:.1f}, %{customdata[2]} at risk<extra></extra>"
                ),
            )
            for s in p.statuses
        ]
    )
    longest = max((o.accounts for o in owners), default=0)
    for o, name in zip(owners, names, strict=True):
        fig.add_annotation(
            x=o.accounts,
            y=name,
            text=f"avg {o.average:.0f} · {o.at_risk} at risk",
            showarrow=False,
            xanchor="left",
            xshift=6,
            font={"size": 11, "color": "#4a5568"},
        )
    height = max(260, 26 * len(owners) + 80)
    fig = _layout(fig, height, barmode="stack")
    fig.update_xaxes(range=[0, longest * 1.35 + 1], title_text="accounts")
    fig.update_yaxes(automargin=True)
    return "owners", fig


def _figure_distribution(p: Portfolio) -> tuple[str, Any]:
    import plotly.graph_objects as go

    fig = go.Figure(
        [
            go.Histogram(
                name=_e(s.label),
                x=[a.score for a in p.accounts if a.status == s.label],
                xbins={"size": 5},
                marker_color=css_color(s.color),
                hovertemplate=f"{_e(s.label)}: %{{y}} accounts scored %{{x}}<extra></extra>",
            )
            for s in p.statuses
        ]
    )
    fig = _layout(fig, 300, barmode="stack", bargap=0.05)
    fig.update_xaxes(title_text="score")
    fig.update_yaxes(title_text="accounts")
    return "distribution", fig


def _figure_movers(p: Portfolio) -> tuple[str, Any]:
    import plotly.graph_objects as go

    # Plotly draws the first bar at the bottom: biggest drop at the bottom, biggest rise on top.
    movers = p.fallers(MOVERS // 2) + list(reversed(p.risers(MOVERS // 2)))
    labels = [f"{_e(_short(a.name))} ({_e(a.id)})" for a in movers]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[a.delta for a in movers],
            orientation="h",
            marker_color=[PALETTE["green" if (a.delta or 0) > 0 else "red"] for a in movers],
            customdata=[[a.score, _e(a.status), _e(a.owner)] for a in movers],
            hovertemplate=(
                "%{y}: %{x:+.1f} → %{customdata[0]:.1f} (%{customdata[1]})<br>"
                "CSM: %{customdata[2]}<extra></extra>"
            ),
        )
    )
    if not movers:
        fig.add_annotation(
            text="No account moved yet (trends need a score 30 days old)",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    fig = _layout(fig, 300)
    fig.update_xaxes(title_text="points gained or lost over the trend window", zeroline=True)
    fig.update_yaxes(automargin=True)
    return "movers", fig


# ---------------------------------------------------------------- helpers


def _asset(name: str) -> str:
    return (resources.files("healthscore") / "data" / name).read_text(encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _short(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{style}
</style>
</head>
<body>
<header>
  <h1 id="hs-title">{heading}</h1>
  <p class="subtitle">{subtitle}</p>
</header>
<section id="headline" class="cards">
{cards}
</section>
<section id="statuses" class="grid two">
  <div class="panel"><h2>Accounts by status</h2>{fig_statuses}</div>
  <div class="panel"><h2>Status over time</h2>{fig_timeline}</div>
</section>
<section id="csm" class="panel">
  <h2>Health by CSM</h2>
  <p class="hint">Accounts per CSM, stacked by status; most at-risk accounts first.</p>
  {fig_owners}
  <details open><summary>As a table</summary>{owner_table}</details>
</section>
<section id="distribution" class="grid two">
  <div class="panel"><h2>Score distribution</h2>{fig_distribution}</div>
  <div class="panel"><h2>Biggest movers</h2>{fig_movers}</div>
</section>
<section id="accounts" class="panel">
  <h2>Accounts</h2>
  <div class="filters">
    <input id="hs-filter" type="search" placeholder="Filter by name, CSM, id or status…"
           aria-label="Filter accounts">
    <select id="hs-status" aria-label="Status">
      <option value="">All statuses</option>{status_options}</select>
    <select id="hs-owner" aria-label="CSM">
      <option value="">All CSMs</option>{owner_options}</select>
    <span id="hs-count" class="hint"></span>
  </div>
  <table id="hs-accounts" class="accounts">
    <thead><tr>
      <th data-sort="name">Account</th><th data-sort="owner">CSM</th>
      <th data-sort="score" class="num">Score</th><th data-sort="status">Status</th>
      <th data-sort="delta">Trend</th><th>History</th><th>Groups</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p class="hint">Click a row for every rule's points.</p>
</section>
<footer>Generated {generated} by healthscore · works offline</footer>
<script type="application/json" id="hs-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""
