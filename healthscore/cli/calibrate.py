"""`healthscore calibrate`: does the score predict churn, and which points would do better?

Its own module so the command can grow (reports, backtests) without
touching the scoring commands; `healthscore.cli` imports it to register it.
Errors follow `cli/_util.py`: one message on stderr, exit code 2, nothing
written when the input was bad.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healthscore.actions import load_playbook
from healthscore.calibration import calibrate as calibration
from healthscore.cli._util import (
    AsOfOption,
    PlaybookOption,
    SourceOption,
    _progress_printer,
    app,
    as_of_or_fail,
    fail,
    out,
    user_errors,
)
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.symbols import chip
from healthscore.files import atomic_write
from healthscore.playbooks import SCHEMA_FILE
from healthscore.sources import load_snapshot


class CalibrateFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def calibrate(
    playbook: PlaybookOption,
    source: SourceOption,
    outcome: Annotated[
        str,
        typer.Option(
            "--outcome",
            help="PROPERTY=VALUE marking the accounts that churned, e.g. Churn=Yes "
            "(trimmed, case-insensitive; a missing value counts as not churned).",
            show_default=False,
        ),
    ],
    as_of: AsOfOption = None,
    folds: Annotated[
        int, typer.Option("--folds", "-k", min=2, help="Cross-validation folds for --suggest.")
    ] = calibration.DEFAULT_FOLDS,
    suggest: Annotated[
        Path | None,
        typer.Option(
            "--suggest",
            help="Fit better points (logistic regression → integer scorecard) and write "
            "the suggested playbook YAML here.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        CalibrateFormat, typer.Option("--format", "-f", help="table or json.")
    ] = CalibrateFormat.table,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write an offline HTML report (ROC, churn by status).",
            show_default=False,
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="csv: sources: the column holding the account id "
            "(default: id, hs_object_id or customerID, else the first column).",
            show_default=False,
        ),
    ] = None,
    from_history: Annotated[
        bool,
        typer.Option(
            "--from-history",
            help="Backtest the scores stored by `healthscore run` instead of re-scoring: "
            "each account's score --lead-days before its outcome date.",
        ),
    ] = False,
    lead_days: Annotated[
        float | None,
        typer.Option(
            "--lead-days", min=0, help="With --from-history: how far ahead the score should warn."
        ),
    ] = None,
    outcome_date_property: Annotated[
        str,
        typer.Option(
            "--outcome-date-property",
            help="With --from-history: the date the outcome happened (retained accounts use "
            "--as-of).",
        ),
    ] = calibration.DEFAULT_OUTCOME_DATE_PROPERTY,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="With --from-history: the history database URL (default: HEALTHSCORE_DB_URL "
            "or SQLite in the user's data folder).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Measure the score against a known outcome: AUC, churn and lift per status, alert
    precision/recall, every group and rule; with --suggest, better points, cross-validated."""
    moment = as_of_or_fail(as_of)
    with user_errors():
        book = load_playbook(playbook)
        snapshot = load_snapshot(source, book, progress=_progress_printer(), id_column=id_column)
    if from_history:
        if suggest is not None:
            fail("--suggest re-scores the CRM; it cannot be combined with --from-history")
        if lead_days is None:
            fail("--from-history needs --lead-days N (how many days ahead the score should warn)")
        report = _backtest(book, snapshot, outcome, moment, lead_days, outcome_date_property, db)
    else:
        report = _rescore(book, snapshot, outcome, moment, suggest, folds, source)
    if suggest is not None and report.suggested is not None:
        _write(suggest, report.suggested.yaml)
        report.suggested.path = str(suggest)
    if html is not None:
        from healthscore.calibration.report import render_html

        _write(html, render_html(report))
    if output_format is CalibrateFormat.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        print_report(report, book)
        if html is not None:
            out.print(f"wrote {html}", markup=False)


def _rescore(
    book: Playbook,
    snapshot: CrmSnapshot,
    outcome: str,
    moment: datetime,
    suggest: Path | None,
    folds: int,
    source: str,
) -> calibration.Calibration:
    schema_ref = (
        os.path.relpath(SCHEMA_FILE, suggest.resolve().parent) if suggest else str(SCHEMA_FILE)
    )
    try:
        report = calibration.calibrate(
            book,
            snapshot,
            outcome,
            moment,
            suggest=suggest is not None,
            folds=folds,
            schema_ref=schema_ref,
            source_label=source,
        )
    except calibration.CalibrationError as exc:
        fail(str(exc))
    return report


def _backtest(
    book: Playbook,
    snapshot: CrmSnapshot,
    outcome: str,
    moment: datetime,
    lead_days: float,
    date_property: str,
    db: str | None,
) -> calibration.Calibration:
    from healthscore.history import StoreError, open_store

    try:
        store = open_store(db)
    except StoreError as exc:
        fail(str(exc))
    with store:
        try:
            return calibration.backtest(
                book,
                snapshot,
                outcome,
                moment,
                lambda cutoff: store.latest_per_account(book.name, cutoff),
                lead_days=lead_days,
                date_property=date_property,
            )
        except calibration.CalibrationError as exc:
            fail(str(exc))


def _write(path: Path, text: str) -> None:
    """Write atomically, so a crash never leaves half a playbook; exit 2 when it cannot."""
    try:
        atomic_write(path, text)
    except OSError as exc:
        fail(f"{path}: cannot write ({exc.strerror})")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def print_report(report: calibration.Calibration, book: Playbook) -> None:
    """The terminal view: headline, statuses, alerts, rules, suggestion."""
    colors = {t.label: t.color for t in book.thresholds}
    for warning in report.warnings:
        out.print(f"⚠ {warning}", markup=False)
    out.print(
        f"{report.playbook} against {report.outcome}: {report.accounts} accounts, "
        f"{report.positives} positive ({report.churn_rate:.1%})",
        markup=False,
    )
    out.print(
        f"ROC AUC {report.auc:.4f}  (chance a churned account scored lower than a retained "
        "one; 0.5 = coin flip)",
        markup=False,
    )
    statuses = Table(title="By status", title_justify="left")
    for column in ("status", "accounts", "churned", "churn rate", "lift"):
        statuses.add_column(column, justify="left" if column == "status" else "right")
    for row in report.by_status:
        statuses.add_row(
            f"{chip(colors.get(row.status, 'gray'))} {row.status}",
            str(row.accounts),
            str(row.positives),
            _pct(row.churn_rate),
            "—" if row.lift is None else f"{row.lift:.2f}×",
        )
    out.print(statuses)
    alerts = Table(title="Alerting on the lowest statuses", title_justify="left")
    for column in ("alert on", "flagged", "caught", "precision", "recall"):
        alerts.add_column(column, justify="left" if column == "alert on" else "right")
    for alert in report.alerts:
        alerts.add_row(
            " + ".join(alert.statuses),
            str(alert.flagged),
            str(alert.caught),
            _pct(alert.precision),
            _pct(alert.recall),
        )
    out.print(alerts)
    rules = Table(title="Groups and rules on their own", title_justify="left")
    for column in ("group / rule", "AUC", "fires", "churn when fires", "otherwise"):
        rules.add_column(column, justify="left" if column == "group / rule" else "right")
    for group, stats in report.groups.items():
        rules.add_row(
            f"[bold]{_escape(group)}[/]",
            f"{stats.auc:.3f}",
            _pct(stats.fires),
            _pct(stats.churn_rate_fires),
            _pct(stats.churn_rate_otherwise),
        )
        for name, rule in report.rules[group].items():
            rules.add_row(
                "  " + _escape(name),
                f"{rule.auc:.3f}",
                _pct(rule.fires),
                _pct(rule.churn_rate_fires),
                _pct(rule.churn_rate_otherwise),
            )
    if report.groups:
        out.print(rules)
    if report.suggested is not None:
        s = report.suggested
        out.print(
            f"Suggested: {s.path} — {s.rules} rules ({s.bins_kept} of {s.candidates} candidate "
            f"bins kept), AUC {s.auc:.4f}; {s.folds}-fold CV AUC {s.cv_auc:.4f} "
            f"vs {s.original_cv_auc:.4f} for the current playbook on the same folds.",
            markup=False,
        )


def _escape(text: str) -> str:
    """Playbook text shown inside rich markup: `[...]` must not be read as a tag."""
    from rich.markup import escape

    return escape(text)
