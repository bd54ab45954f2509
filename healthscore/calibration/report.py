"""The offline HTML report of `healthscore calibrate --html`.

One file someone can attach to an email or open on a plane: plotly's JavaScript
is inlined (no CDN), and every text that comes from the playbook or the CRM
(playbook, status, group and rule names, the outcome) is HTML-escaped, both in
the page and inside the charts, where plotly renders labels as HTML.
"""

from __future__ import annotations

from html import escape

from healthscore.calibration.calibrate import Calibration

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
    import plotly.graph_objects as go
    import plotly.io as pio

    roc = go.Figure()
    roc.add_trace(
        go.Scatter(
            x=report.roc[0],
            y=report.roc[1],
            mode="lines",
            name=escape(f"{report.playbook} (AUC {report.auc:.3f})"),
        )
    )
    if report.suggested is not None and report.suggested_roc is not None:
        roc.add_trace(
            go.Scatter(
                x=report.suggested_roc[0],
                y=report.suggested_roc[1],
                mode="lines",
                name=escape(
                    f"suggested (AUC {report.suggested.auc:.3f}, "
                    f"{report.suggested.folds}-fold CV {report.suggested.cv_auc:.3f})"
                ),
            )
        )
    roc.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="coin flip",
            line={"dash": "dot", "color": "#999"},
        )
    )
    roc.update_layout(
        title="ROC: flagging accounts from the lowest score up",
        xaxis_title="share of retained accounts flagged (false positive rate)",
        yaxis_title="share of churned accounts caught (recall)",
        width=640,
        height=520,
        legend={"x": 0.45, "y": 0.08},
    )
    rows = report.by_status
    bars = go.Figure(
        go.Bar(
            x=[escape(r.status) for r in rows],
            y=[r.churn_rate or 0.0 for r in rows],
            marker_color=[COLORS.get(r.color, "#757575") for r in rows],
            text=[f"{_pct(r.churn_rate)} of {r.accounts}" for r in rows],
            textposition="outside",
        )
    )
    bars.add_hline(
        y=report.churn_rate,
        line_dash="dot",
        annotation_text=f"overall {report.churn_rate:.1%}",
    )
    bars.update_layout(
        title="Churn rate by status",
        yaxis_tickformat=".0%",
        width=560,
        height=520,
    )
    roc_html = pio.to_html(roc, include_plotlyjs=True, full_html=False)
    bars_html = pio.to_html(bars, include_plotlyjs=False, full_html=False)
    status_rows = "".join(
        f"<tr><td>{escape(r.status)}</td><td>{r.accounts}</td><td>{r.positives}</td>"
        f"<td>{_pct(r.churn_rate)}</td><td>{_num(r.lift)}</td></tr>"
        for r in rows
    )
    alert_rows = "".join(
        f"<tr><td>{escape(' + '.join(a.statuses))}</td><td>{a.flagged}</td><td>{a.caught}</td>"
        f"<td>{_pct(a.precision)}</td><td>{_pct(a.recall)}</td></tr>"
        for a in report.alerts
    )
    rule_rows = "".join(
        f"<tr><td>{escape(group)}</td><td>{escape(name)}</td><td>{s.auc:.3f}</td>"
        f"<td>{_pct(s.fires)}</td><td>{_pct(s.churn_rate_fires)}</td>"
        f"<td>{_pct(s.churn_rate_otherwise)}</td></tr>"
        for group, rules in report.rules.items()
        for name, s in rules.items()
    )
    suggestion = ""
    if report.suggested is not None:
        s = report.suggested
        where = f" written to <code>{escape(s.path)}</code>" if s.path else ""
        suggestion = (
            f"<h2>Suggested points</h2><p>A scorecard{where}: {s.rules} rules, "
            f"AUC {s.auc:.4f} on these accounts; {s.folds}-fold cross-validated AUC "
            f"<b>{s.cv_auc:.4f}</b> against <b>{s.original_cv_auc:.4f}</b> for the current "
            "playbook on the same folds.</p>"
        )
    warnings = "".join(f"<p class=warn>⚠ {escape(w)}</p>" for w in report.warnings)
    title = escape(f"Calibration: {report.playbook} against {report.outcome}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child, td:nth-child(2) {{ text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.warn {{ color: #b26a00; }}
</style></head><body>
<h1>{title}</h1>
{warnings}
<p>{report.accounts} accounts, {report.positives} positive ({report.churn_rate:.1%}).
ROC AUC of the score: <b>{report.auc:.4f}</b> — the chance that an account that churned
scored lower than one that stayed (0.5 is a coin flip, ties count half).</p>
<div class="charts"><div>{roc_html}</div><div>{bars_html}</div></div>
<h2>By status</h2>
<table><tr><th>status</th><th>accounts</th><th>positive</th><th>churn rate</th><th>lift</th></tr>
{status_rows}</table>
<h2>Using the lowest statuses as the alert</h2>
<table><tr><th>alert on</th><th>flagged</th><th>caught</th><th>precision</th><th>recall</th></tr>
{alert_rows}</table>
<h2>Rules</h2>
<table><tr><th>group</th><th>rule</th><th>AUC</th><th>fires</th><th>churn when it fires</th>
<th>otherwise</th></tr>
{rule_rows}</table>
{suggestion}
</body></html>
"""
