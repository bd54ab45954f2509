"""The executive dashboard: one self-contained HTML file, readable offline.

Why a file and not a web app: executives open what they are sent, a CS ops person can
mail it or drop it in a shared drive, and it needs no server, no login and no
internet (the basic plotly.js bundle and the table's JavaScript are inlined). The file
is rendered from a `Portfolio`, the same numbers as the Prefect artifacts and the Slack
digest, through the `dashboard.html` template (`healthscore.pages`: autoescape, JSON
through `|tojson`, chart labels escaped for plotly.js).

Linear in accounts and CSMs: each chart is one plotly.js figure dict built in one pass
(the per-CSM labels are one list of annotations), with no per-call validation; the
browser lays it out. The account table's data is encoded a chunk of accounts at a time
straight to UTF-8 (`_data`), and each account's rule points stay the stored JSON text
until its row is encoded (`AccountView.rules_json`). `benchmarks/bench_dashboard.py`
(12 runs of history per account): 1.3 s of CPU for 50k accounts and 835 CSMs, 2.7 s
for 100k and 1,000.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from markupsafe import Markup

from healthscore.core.symbols import STATUS_CHIPS, TREND_ARROWS, chip
from healthscore.files import atomic_write
from healthscore.pages import chart_text, render_page
from healthscore.reports.portfolio import OwnerView, Portfolio

PALETTE = {"green": "#2f9e5b", "yellow": "#e6b000", "red": "#d64545", "": "#8a94a6"}
MOVERS = 10
BIN = 5
"""Width of the score distribution's bars, in points: [0, 5), [5, 10), ... [100, 105)."""
DASHBOARD_DIR_ENV = "HEALTHSCORE_DASHBOARD_DIR"
DATA_MARK = "<!--hs-data-->"
"""Where `_data` goes in the rendered page: every CRM text reaches the page escaped
(`<` as `&lt;` or `\\u003c`), so no account, CSM or rule name can contain it."""
DATA_CHUNK = 2_000
"""Accounts encoded to JSON at a time in the page's account data (`_data`)."""
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}


def css_color(color: str) -> str:
    """The status color as CSS: our palette, a plain CSS name or #hex, else grey."""
    if color in PALETTE:
        return PALETTE[color]
    if re.fullmatch(r"[a-zA-Z]{3,20}|#[0-9a-fA-F]{3,8}", color):
        return color
    return PALETTE[""]


def render_dashboard(portfolio: Portfolio, generated: datetime | None = None) -> str:
    """The whole dashboard as one HTML document (about 1.2 MB of it is plotly.js)."""
    return dashboard_bytes(portfolio, generated).decode("utf-8")


def dashboard_bytes(portfolio: Portfolio, generated: datetime | None = None) -> bytes:
    """`render_dashboard` as UTF-8, the account data never a Python string: one emoji
    (the status chips) makes CPython store a whole string at 4 bytes a character, so
    a 35 MB page would take 140 MB as `str`."""
    page, data = _page(portfolio, generated)
    head, mark, tail = page.partition(DATA_MARK)
    if not mark:
        raise AssertionError("dashboard.html has no account data slot")
    return b"".join((head.encode("utf-8"), data, tail.encode("utf-8")))


def _page(portfolio: Portfolio, generated: datetime | None) -> tuple[str, bytes]:
    """The page with `DATA_MARK` where the account data goes, and that data."""
    p = portfolio
    owners = p.owners()
    title = f"{p.playbook} — health dashboard"
    previous = f" · previous run {_day(p.previous_run.as_of)}" if p.previous_run is not None else ""
    stamp = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z")
    return render_page(
        "dashboard.html",
        title=title,
        stylesheet="dashboard.css",
        subtitle=f"{len(p.accounts)} accounts as of {_day(p.run.as_of)} · run {p.run.id}{previous}",
        cards=_cards(p),
        statuses=[{"label": s.label, "chip": chip(s.color)} for s in p.statuses],
        owners=owners,
        owner_names=sorted((o.name for o in owners), key=str.casefold),
        figures={
            "hs-fig-statuses": _figure_statuses(p),
            "hs-fig-timeline": _figure_timeline(p),
            "hs-fig-owners": _figure_owners(p, owners),
            "hs-fig-distribution": _figure_distribution(p),
            "hs-fig-movers": _figure_movers(p),
        },
        data=Markup(DATA_MARK),
        generated=stamp,
    ), _data(p)


def write_dashboard(portfolio: Portfolio, path: Path) -> Path:
    """Write atomically (`healthscore.files.atomic_write`): a reader never sees half a
    dashboard. Returns the absolute path; raises `OSError`."""
    return atomic_write(path.expanduser().resolve(), dashboard_bytes(portfolio))


def dashboard_path(
    playbook: str, db_url: str | None = None, target: str | None = None, *, shared: bool = False
) -> Path:
    """Where a run writes its dashboard.

    `target` (or `$HEALTHSCORE_DASHBOARD_DIR`): a `.html` file, or a folder that gets
    `dashboard-<playbook>.html`. Default folder: next to the SQLite history file (the
    user already knows where that is), else the data folder for a database server.
    `shared`: the run scores several playbooks, so a `.html` file named once becomes
    one file per playbook beside it (`board.html` -> `board-<playbook>.html`), never
    one overwritten by the next.
    """
    from healthscore.history import data_dir, default_db_url
    from healthscore.integrations.hubspot.writeback import slug

    chosen = target or os.environ.get(DASHBOARD_DIR_ENV, "").strip() or None
    if chosen and chosen.lower().endswith((".html", ".htm")):
        path = Path(chosen).expanduser()
        if shared:
            return path.with_name(f"{path.stem}-{slug(playbook).replace('_', '-')}{path.suffix}")
        return path
    if chosen:
        folder = Path(chosen).expanduser()
    else:
        url = sa.make_url(db_url or default_db_url())
        database = url.database or ""
        sqlite_file = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
        folder = Path(database).expanduser().parent if sqlite_file else data_dir()
    return folder / f"dashboard-{slug(playbook).replace('_', '-')}.html"


# ---------------------------------------------------------------- static parts


def _cards(p: Portfolio) -> list[dict[str, str]]:
    """The headline cards: label, value, note and `data-card` key, as text."""
    total_before = p.previous_run.accounts if p.previous_run is not None else None
    cards = [
        {
            "label": "Accounts",
            "value": f"{len(p.accounts)}",
            "note": _change(len(p.accounts) - total_before if total_before is not None else None),
            "key": "accounts",
        }
    ]
    for status in p.status_counts():
        cards.append(
            {
                "label": f"{chip(status.color)} {status.label}",
                "value": f"{p.share(status.label):.0f}%",
                "note": f"{status.count} accounts · {_change(status.change)}",
                "key": f"status-{status.label}",
            }
        )
    before = p.previous_average
    cards.append(
        {
            "label": "Average score",
            "value": f"{p.average:.1f}",
            "note": _change(None if before is None else round(p.average - before, 1)),
            "key": "average",
        }
    )
    return cards


def _change(value: float | None) -> str:
    if value is None:
        return "first run"
    if value == 0:
        return "no change since the previous run"
    return f"{value:+g} since the previous run"


def _data(p: Portfolio) -> bytes:
    """What the account table's JavaScript reads, as the UTF-8 JSON of the page's
    `<script type="application/json">` (escaped as `|tojson` escapes): the names once,
    then one record of numbers per account (the demo's 600 accounts: 0.2 MB instead of
    0.5 MB).

    `groups`: group names; `rules`: [group index, rule name]; `days`: run days. An
    account's `groups` and `rules` are its points in those orders (null where it has
    none), its `history` is day index, score, day index, score... oldest first (one
    flat list: a list per point would be 12 more objects per account to allocate).
    The accounts are encoded `DATA_CHUNK` at a time, so only that many records exist
    as Python objects at once (100k accounts: 35 MB of JSON, not 300 MB of dicts).
    """
    groups: dict[str, int] = {}
    rules: dict[tuple[str, str], int] = {}
    for a in p.accounts:
        for group in a.groups:
            groups.setdefault(group, len(groups))
        for group, points in a.rules.items():
            groups.setdefault(group, len(groups))
            for rule in points:
                rules.setdefault((group, rule), len(rules))
    moments = {moment for a in p.accounts for moment, _ in a.history}  # a dozen runs
    day_of = {moment: _day(moment) for moment in moments}
    every_day = sorted(set(day_of.values()))
    index = {day: i for i, day in enumerate(every_day)}
    days = {moment: index[day] for moment, day in day_of.items()}
    head = {
        "statuses": [{"label": s.label, "color": s.color} for s in p.statuses],
        "chips": STATUS_CHIPS,
        "arrows": TREND_ARROWS,
        "groups": list(groups),
        "rules": [[groups[group], rule] for group, rule in rules],
        "days": every_day,
    }
    parts = [_escaped(orjson.dumps(head)[:-1]), b',"accounts":[']
    for start in range(0, len(p.accounts), DATA_CHUNK):
        if start:
            parts.append(b",")
        records = []
        for a in p.accounts[start : start + DATA_CHUNK]:
            points = a.groups
            detail = a.rules
            records.append(
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
                    "groups": [points.get(group) for group in groups],
                    "rules": [detail.get(group, {}).get(rule) for group, rule in rules],
                    "history": [x for moment, score in a.history for x in (days[moment], score)],
                }
            )
        parts.append(_escaped(orjson.dumps(records)[1:-1]))
    parts.append(b"]}")
    return b"".join(parts)


def _escaped(json: bytes) -> bytes:
    """`|tojson`'s escapes, on UTF-8 bytes (no byte of a multi-byte character is ASCII):
    `<`, `>`, `&` and `'` as `\\u003c`-style escapes, so no text closes the script."""
    return (
        json.replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace(b"&", b"\\u0026")
        .replace(b"'", b"\\u0027")
    )


# ---------------------------------------------------------------- figures
# plotly.js figure dicts ({"data": traces, "layout": ...}); attribute names are those
# of the plotly.js reference (https://plotly.com/javascript/reference/).


def _figure(data: list[dict[str, Any]], height: int, **layout: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        # above the plot: below it, it would cover the x axis title
        "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "traceorder": "normal"},
    }
    for axis in ("xaxis", "yaxis"):  # room for tick labels and titles, as plotly.py does
        base[axis] = {"automargin": True} | layout.pop(axis, {})
    return {"data": data, "layout": base | layout}


def _figure_statuses(p: Portfolio) -> dict[str, Any]:
    counts = p.status_counts()
    donut = {
        "type": "pie",
        "labels": [chart_text(s.label) for s in counts],
        "values": [s.count for s in counts],
        "marker": {"colors": [css_color(s.color) for s in counts]},
        "hole": 0.55,
        "sort": False,
        "direction": "clockwise",
        "textinfo": "label+value",
        "hovertemplate": "%{label}: %{value} accounts (%{percent})<extra></extra>",
    }
    return _figure([donut], 300, showlegend=False)


def _figure_timeline(p: Portfolio) -> dict[str, Any]:
    timeline = p.timeline()
    days = [_day(moment) for moment, _ in timeline]
    bars = [
        {
            "type": "bar",
            "name": chart_text(s.label),
            "x": days,
            "y": [counts.get(s.label, 0) for _, counts in timeline],
            "marker": {"color": css_color(s.color)},
            "hovertemplate": f"{chart_text(s.label)}: %{{y}}<extra>%{{x}}</extra>",
        }
        for s in p.statuses
    ]
    return _figure(bars, 300, barmode="stack", xaxis={"type": "category"})


def _figure_owners(p: Portfolio, owners: list[OwnerView]) -> dict[str, Any]:
    """Accounts per CSM stacked by status, most at-risk on top, each row labelled with
    its average and at-risk count: one trace per status, one list of annotations."""
    owners = list(reversed(owners))  # plotly.js draws the first row at the bottom
    names = [chart_text(o.name) for o in owners]
    custom = [[o.accounts, o.average, o.at_risk] for o in owners]
    bars = [
        {
            "type": "bar",
            "name": chart_text(s.label),
            "y": names,
            "x": [o.by_status.get(s.label, 0) for o in owners],
            "orientation": "h",
            "marker": {"color": css_color(s.color)},
            "customdata": custom,
            "hovertemplate": (
                f"%{{y}} — {chart_text(s.label)}: %{{x}}<br>%{{customdata[0]}} accounts, "
                "average %{customdata[1]:.1f}, %{customdata[2]} at risk<extra></extra>"
            ),
        }
        for s in p.statuses
    ]
    note = {"size": 11, "color": "#4a5568"}
    annotations = [
        {
            "x": o.accounts,
            "y": name,
            "text": f"avg {o.average:.0f} · {o.at_risk} at risk",
            "showarrow": False,
            "xanchor": "left",
            "xshift": 6,
            "font": note,
        }
        for o, name in zip(owners, names, strict=True)
    ]
    longest = max((o.accounts for o in owners), default=0)
    return _figure(
        bars,
        max(260, 26 * len(owners) + 80),
        barmode="stack",
        annotations=annotations,
        xaxis={"range": [0, longest * 1.35 + 1], "title": {"text": "accounts"}},
        yaxis={"type": "category"},
    )


def _figure_distribution(p: Portfolio) -> dict[str, Any]:
    """A histogram of scores by status, binned here (`BIN` points wide, [low, high))
    and drawn as stacked bars, since the basic plotly.js bundle has no histogram trace."""
    counts = Counter((a.status, int(a.score // BIN)) for a in p.accounts)
    bins = sorted({b for _, b in counts})
    bars = [
        {
            "type": "bar",
            "name": chart_text(s.label),
            "x": [b * BIN + BIN / 2 for b in bins],
            "y": [counts.get((s.label, b), 0) for b in bins],
            "width": BIN * 0.95,
            "customdata": [[b * BIN, (b + 1) * BIN] for b in bins],
            "marker": {"color": css_color(s.color)},
            "hovertemplate": (
                f"{chart_text(s.label)}: %{{y}} accounts scored "
                "%{customdata[0]} to %{customdata[1]}<extra></extra>"
            ),
        }
        for s in p.statuses
    ]
    return _figure(
        bars,
        300,
        barmode="stack",
        xaxis={"title": {"text": "score"}},
        yaxis={"title": {"text": "accounts"}},
    )


def _figure_movers(p: Portfolio) -> dict[str, Any]:
    # plotly.js draws the first bar at the bottom: biggest drop at the bottom, biggest rise on top.
    movers = p.fallers(MOVERS // 2) + list(reversed(p.risers(MOVERS // 2)))
    bars = {
        "type": "bar",
        "y": [f"{chart_text(_short(a.name))} ({chart_text(a.id)})" for a in movers],
        "x": [a.delta for a in movers],
        "orientation": "h",
        "marker": {"color": [PALETTE["green" if (a.delta or 0) > 0 else "red"] for a in movers]},
        "customdata": [[a.score, chart_text(a.status), chart_text(a.owner)] for a in movers],
        "hovertemplate": (
            "%{y}: %{x:+.1f} → %{customdata[0]:.1f} (%{customdata[1]})<br>"
            "CSM: %{customdata[2]}<extra></extra>"
        ),
    }
    empty = {
        "text": "No account moved yet (trends need a score 30 days old)",
        "showarrow": False,
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
    }
    return _figure(
        [bars],
        300,
        annotations=[] if movers else [empty],
        xaxis={"title": {"text": "points gained or lost over the trend window"}, "zeroline": True},
        yaxis={"type": "category"},
    )


# ---------------------------------------------------------------- helpers


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _short(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
