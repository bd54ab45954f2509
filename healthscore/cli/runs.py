"""`healthscore run` and `healthscore history`: the stored side of the CLI.

Registered on the shared typer app (`cli/_util.py`) by importing this module.
Prefect is imported inside `run` only:
`healthscore --help` must stay fast, and `history` never needs it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthscore.actions import load_playbook
from healthscore.cli._util import (
    PLAYBOOK_HELP,
    AsOfOption,
    Column,
    DbOption,
    SourceOption,
    app,
    as_of_or_fail,
    err,
    fail,
    out,
    playbook_name,
    print_rows,
    run_errors,
    safe_url,
    user_errors,
)
from healthscore.core.symbols import TREND_ARROWS, chip
from healthscore.playbooks import find_bundled
from healthscore.reports.run_summary import EnrichmentSummary

if TYPE_CHECKING:
    import httpx

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
ANALYTICS_ENV = "PREFECT_SERVER_ANALYTICS_ENABLED"


PlaybooksOption = Annotated[
    list[Path],
    typer.Option(
        "--playbook",
        "-p",
        help=PLAYBOOK_HELP + " Repeat it to score several playbooks from one pull.",
        metavar="<path>",
        show_default=False,
        callback=lambda paths: [find_bundled(p) for p in paths],
    ),
]


@app.command()
def run(
    playbooks: PlaybooksOption,
    source: SourceOption,
    db: DbOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Score, compare and report; store and write nothing.")
    ] = False,
    as_of: AsOfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Pull every record instead of the changes since the last run "
            "(a full pull also runs by itself once the last one is 7 days old).",
        ),
    ] = False,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Store scores for a past --as-of (before the newest stored run); "
            "sends no action and writes nothing back.",
        ),
    ] = False,
    allow_action_failures: Annotated[
        bool,
        typer.Option(
            "--allow-action-failures",
            help="Exit 0 even when actions failed or were given up on (default: exit 1).",
        ),
    ] = False,
    enroll_existing: Annotated[
        bool,
        typer.Option(
            "--enroll-existing",
            help="Send actions on the playbook's first run too (default: the first run is "
            "a baseline that stores scores and holds its actions).",
        ),
    ] = False,
) -> None:
    """Run the whole flow once, as a Prefect flow run: pull, score, store, write back, report.

    With several --playbook, one pull reads what they all need, then each
    playbook is scored, stored, written back and acted on in turn, with its own
    history; one that fails does not stop the others (its error is printed, the
    exit code is 1, and --json prints a list of summaries).

    The flow run goes to PREFECT_API_URL when it is set (environment or Prefect
    profile). Otherwise the first run starts a local Prefect server in the
    background, its database and log in <data dir>/prefect, telemetry off, and
    later runs reuse it (no start-up wait); its address is printed, the UI is
    there; `PREFECT_HOME=<data dir>/prefect prefect server stop` stops it.

    The dashboard goes to HEALTHSCORE_DASHBOARD_DIR, else next to the SQLite
    history file (dashboard-<playbook>.html); a dry run writes none.

    Exit codes: 0 done; 1 done, but actions failed or died in this run (see `healthscore
    actions --state failed` / `--state dead`), or one of several playbooks failed; 2 a
    problem to fix first, nothing sent. Rows that died in earlier runs are still counted
    (`dead in the ledger`) but exit 0.
    """
    moment = as_of_or_fail(as_of)
    from healthscore.sources import check_reachable

    with user_errors():
        for path in playbooks:
            load_playbook(path)  # a bad playbook fails here, before Prefect starts
        check_reachable(source)  # so does a CRM that nothing answers for
    from healthscore.history import data_dir, default_db_url

    url = password_to_env(db or default_db_url())
    os.environ.setdefault(ANALYTICS_ENV, "false")  # an offline machine prints no telemetry error
    import httpx

    from flows.local_server import ServerStartError, prefect_api
    from flows.score_accounts import score_accounts

    home = Path(os.environ.get("PREFECT_HOME") or data_dir() / "prefect")
    try:
        with prefect_api(home) as (api_url, started):
            if started:
                err.print(
                    f"started a local Prefect server at {api_url.removesuffix('/api')} "
                    f"(home {home}); later runs reuse it",
                    markup=False,
                )
            with user_errors(), run_errors():
                parameters: dict[str, Any] = dict(
                    source=source,
                    as_of=moment.isoformat(),
                    dry_run=dry_run,
                    db_url=url,
                    full=full,
                    backfill=backfill,
                    enroll_existing=enroll_existing,
                )
                if len(playbooks) == 1:  # its errors are raised: exit 2 for a user's
                    summaries = [score_accounts(playbook_path=str(playbooks[0]), **parameters)]
                else:
                    state: Any = score_accounts(
                        playbook_path=[str(p) for p in playbooks], return_state=True, **parameters
                    )  # Failed when one playbook failed: its data still lists every outcome
                    summaries = state.result(raise_on_failure=False)
    except ServerStartError as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:
        if not _from(exc, api_url):
            raise
        fail(prefect_trouble(api_url, exc))
    failed = [s for s in summaries if "error" in s]
    done = [s for s in summaries if "error" not in s]
    if as_json:
        data = summaries[0] if len(playbooks) == 1 else summaries
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        for summary in done:
            print_run_summary(summary, url)
        for summary in failed:
            err.print(f"{summary['playbook']}: failed: {summary['error']}", markup=False)
    if failed:
        raise typer.Exit(1)
    if not allow_action_failures and any(
        s["actions"]["failed"] or s["actions"]["dead"] for s in done
    ):
        raise typer.Exit(1)


def _from(exc: httpx.HTTPError, api_url: str) -> bool:
    try:
        return str(exc.request.url).startswith(api_url.rstrip("/"))
    except RuntimeError:  # an error without its request
        return False


def prefect_trouble(api_url: str, exc: httpx.HTTPError) -> str:
    """One line for a Prefect API that failed a call of the run (after its client's retries).

    Seen with several runs at once on a local Prefect server, whose SQLite
    database answers 503 when it is busy for too long.
    """
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        what = f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return (
        f"the Prefect server at {api_url} failed a call of this run ({what}); it is down or "
        "overloaded (e.g. many runs at once on a local server): run again later, actions "
        "already sent are not sent twice"
    )


def password_to_env(url: str) -> str:
    """The URL without its password, which moves to `HEALTHSCORE_DB_PASSWORD` for this process.

    Prefect stores a flow run's parameters (readable through its API and UI), so
    the password must not travel in `db_url`; the store puts it back when it
    connects (`healthscore.history.store`).
    """
    import sqlalchemy

    from healthscore.history.store import DB_PASSWORD_ENV

    try:
        parsed = sqlalchemy.make_url(url)
    except Exception:  # not a URL: the store reports it
        return url
    if parsed.password is None:
        return url
    os.environ[DB_PASSWORD_ENV] = str(parsed.password)
    # URL.set(password=None) keeps the password (None means "unchanged"): replace the field
    return parsed._replace(password=None).render_as_string(hide_password=False)


def print_run_summary(summary: dict[str, Any], url: str) -> None:
    counts = ", ".join(f"{label}: {n}" for label, n in summary["counts"].items())
    head = "dry run — " if summary["dry_run"] else ""
    out.print(
        f"{head}{summary['playbook']}: {summary['accounts']} accounts as of "
        f"{summary['as_of']} — {counts}",
        markup=False,
    )
    trends = ", ".join(f"{TREND_ARROWS[k]} {v}" for k, v in summary["trends"].items())
    out.print(f"trends: {trends}", markup=False)
    for change in summary["changes"]:
        out.print(
            f"  {change['name']} ({change['id']}): {change['before']} → {change['after']} "
            f"({change['score']:g})",
            markup=False,
        )
    for mover in summary["movers"][:5]:
        out.print(
            f"  {TREND_ARROWS[mover['trend']]} {mover['name']} ({mover['id']}): "
            f"{mover['previous']:g} → {mover['score']:g} ({mover['delta']:+g})",
            markup=False,
        )
    pull = "incremental" if summary["pull_incremental"] else "full"
    why = f" ({summary['pull_reason']})" if summary.get("pull_reason") else ""
    shared = summary.get("pull_shared_with") or []
    also = f", shared with {', '.join(shared)}" if shared else ""
    out.print(f"pull: {pull}{why}, {summary['pull_calls']} API calls{also}", markup=False)
    if summary.get("pull_associations"):
        out.print(f"  {summary['pull_associations']}", markup=False)
    if summary.get("dashboard"):
        out.print(f"dashboard: {summary['dashboard']}", markup=False)
    for entry in summary.get("enrichment") or []:
        out.print(EnrichmentSummary(**entry).describe(), markup=False)
    if summary["writeback_skipped"]:
        out.print(f"write-back: skipped ({summary['writeback_skipped']})", markup=False)
    else:
        out.print(
            f"write-back: {summary['written_values']} values on "
            f"{summary['written_records']} records"
            + (f", {summary['writeback_refused']} refused" if summary["writeback_refused"] else ""),
            markup=False,
        )
    actions = summary["actions"]
    parts = [f"{actions['sent']} sent"]
    parts += [f"{actions[k]} {label}" for k, label in _ACTION_LABELS if actions.get(k)]
    parts += [f"{n} {k}" for k, n in actions.items() if k not in _ACTION_KEYS and n]
    out.print(f"actions: {', '.join(parts)}", markup=False)
    if actions["failed"] or actions["dead"] or actions.get("dead_total"):
        out.print(
            "  see `healthscore actions --state failed` and `--state dead` for the errors",
            markup=False,
        )
    for line in summary["failures"]:  # markup=False: HubSpot's "[up, down, flat]" stays visible
        out.print(f"  failed: {line}", markup=False)
    for note in summary["action_notes"]:
        out.print(f"actions: {note}", markup=False)
    if summary["run_id"] is not None:
        out.print(f"stored as run {summary['run_id']} in {safe_url(url)}", markup=False)


_ACTION_LABELS = (
    ("reconciled", "already delivered"),
    ("failed", "failed (retried later)"),
    ("dead", "dead (gave up)"),
    ("skipped", "left to another run"),
    ("removed", "removed from lists"),
    ("dead_total", "dead in the ledger"),
)
_ACTION_KEYS = {"sent", *(k for k, _ in _ACTION_LABELS)}


@app.command()
def history(
    account_id: Annotated[str, typer.Argument(help="The account's CRM id.", show_default=False)],
    playbook: Annotated[
        str | None,
        typer.Option(
            "--playbook", "-p", help="Playbook name (or its YAML file); default: every playbook."
        ),
    ] = None,
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N scores.")] = 20,
) -> None:
    """An account's stored scores, newest first, with trend arrows and status chips."""
    from healthscore.history import default_db_url, open_store, store_exists

    url = db or default_db_url()
    name = playbook_name(playbook)
    if not store_exists(url):
        fail(f"no history database at {safe_url(url)}; `healthscore run` creates it")
    with run_errors(), open_store(url) as store:
        entries = store.account_history(account_id, name, limit)
    if not entries:
        which = f" for playbook {name!r}" if name else ""
        fail(f"no stored scores for account {account_id!r}{which} in {safe_url(url)}")
    columns = [Column("as of")] + ([Column("playbook")] if name is None else [])
    columns += [Column("score", right=True), Column("Δ", right=True), Column("trend")]
    columns.append(Column("status"))
    rows = []
    for e in entries:
        status = f"{chip(e.color)} {e.status}"
        if e.previous_status and e.previous_status != e.status:
            status += f" (was {e.previous_status})"
        cells = [e.as_of.strftime("%Y-%m-%d %H:%M")]
        if name is None:
            cells.append(e.playbook)
        cells += [
            f"{e.score:g}",
            "" if e.delta is None else f"{e.delta:+g}",
            f"{TREND_ARROWS.get(e.trend, '')} {e.trend}",
            status,
        ]
        rows.append(cells)
    print_rows(f"{entries[0].name} (id {account_id})", columns, rows)
