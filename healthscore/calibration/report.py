"""The offline HTML report of `healthscore calibrate --html`.

One file someone can attach to an email or open on a plane: the `calibration.html`
template (`healthscore.pages`: autoescape, the basic plotly.js bundle inlined, no CDN).
Every text that comes from the playbook or the CRM (playbook, status, group and rule
names, the outcome) is escaped by the template in the page, and by `chart_text` inside
the charts, where plotly.js renders a few tags in labels.
"""

from __future__ import annotations

from typing import Any

from healthscore.calibration.calibrate import Calibration
from healthscore.pages import chart_text, render_page

COLORS = {
    "green": "#2e7d32",
    "yellow": "#f9a825",
    "red": "#c62828",
    "orange": "#ef6c00",
    "blue": "#1565c0",
    "gray": "#757575",
}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_html(report: Calibration) -> str:
    """The whole page as a string."""
    return render_page(
        "calibration.html",
        title=f"Calibration: {report.playbook} against {report.outcome}",
        stylesheet="calibration.css",
        figures={"hs-fig-roc": _roc_figure(report), "hs-fig-status": _status_figure(report)},
        report=report,
        pct=_pct,
        num=_num,
    )


def _roc_figure(report: Calibration) -> dict[str, Any]:
    """The ROC curves as a plotly.js figure: the score, the suggestion, a coin flip."""
    curves: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": report.roc[0],
            "y": report.roc[1],
            "name": chart_text(f"{report.playbook} (AUC {report.auc:.3f})"),
        }
    ]
    if report.suggested is not None and report.suggested_roc is not None:
        s = report.suggested
        curves.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": report.suggested_roc[0],
                "y": report.suggested_roc[1],
                "name": f"suggested (AUC {s.auc:.3f}, {s.folds}-fold CV {s.cv_auc:.3f})",
            }
        )
    curves.append(
        {
            "type": "scatter",
            "mode": "lines",
            "x": [0, 1],
            "y": [0, 1],
            "name": "coin flip",
            "line": {"dash": "dot", "color": "#999"},
        }
    )
    layout = {
        "title": {"text": "ROC: flagging accounts from the lowest score up"},
        "xaxis": {"title": {"text": "share of retained accounts flagged (false positive rate)"}},
        "yaxis": {"title": {"text": "share of churned accounts caught (recall)"}},
        "width": 640,
        "height": 520,
        "legend": {"x": 0.45, "y": 0.08},
    }
    return {"data": curves, "layout": layout}


def _status_figure(report: Calibration) -> dict[str, Any]:
    """Churn rate per status as bars, with the overall rate as a dotted line."""
    rows = report.by_status
    bars = {
        "type": "bar",
        "x": [chart_text(r.status) for r in rows],
        "y": [r.churn_rate or 0.0 for r in rows],
        "marker": {"color": [COLORS.get(r.color, "#757575") for r in rows]},
        "text": [f"{_pct(r.churn_rate)} of {r.accounts}" for r in rows],
        "textposition": "outside",
    }
    overall = report.churn_rate
    layout = {
        "title": {"text": "Churn rate by status"},
        "xaxis": {"type": "category"},
        "yaxis": {"tickformat": ".0%"},
        "width": 560,
        "height": 520,
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": overall,
                "y1": overall,
                "line": {"dash": "dot"},
            }
        ],
        "annotations": [
            {
                "xref": "paper",
                "x": 1,
                "y": overall,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"overall {overall:.1%}",
            }
        ],
    }
    return {"data": [bars], "layout": layout}
