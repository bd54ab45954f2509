"""`healthscore dashboard` and `healthscore demo`: what executives read, and the tour.

Registered on the shared typer app by importing this module (`healthscore/cli/__init__.py`).
Prefect is imported inside `demo` only, after its environment is set, so
`healthscore --help` and `healthscore dashboard` never start it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from healthscore.actions import load_playbook
from healthscore.cli._util import DbOption, app, err, fail, out, run_errors
from healthscore.cli.runs import STARTUP_TIMEOUT_ENV
from healthscore.core.playbook import PlaybookError
from healthscore.core.symbols import chip
from healthscore.playbooks import DEFAULT_PLAYBOOK

PlaybookNameOption = Annotated[
    str | None,
    typer.Option(
        "--playbook",
        "-p",
        help="Playbook name as stored, or its YAML file (its thresholds then order the "
        "statuses); default: the playbook of the newest run.",
        show_default=False,
    ),
]


@app.command()
def dashboard(
    output: Annotated[
        Path,
        typer.Option("--out", "-o", help="The HTML file to write.", show_default=False),
    ],
    db: DbOption = None,
    playbook: PlaybookNameOption = None,
) -> None:
    """Write the executive dashboard: one self-contained HTML file that works offline."""
    from healthscore.history import default_db_url, open_store, store_exists
    from healthscore.reports.dashboard import write_dashboard
    from healthscore.reports.portfolio import NoHistoryError, load_portfolio

    url = db or default_db_url()
    if not store_exists(url):
        fail(f"no history database at {url}; `healthscore run` or `healthscore demo` creates one")
    name, statuses = _playbook(playbook)
    with run_errors(), open_store(url) as store:
        try:
            portfolio = load_portfolio(store, name, statuses)
        except NoHistoryError as exc:
            fail(str(exc))
    try:
        path = write_dashboard(portfolio, output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    counts = ", ".join(f"{chip(s.color)} {s.label}: {s.count}" for s in portfolio.status_counts())
    out.print(
        f"{portfolio.playbook}: {len(portfolio.accounts)} accounts as of "
        f"{portfolio.run.as_of:%Y-%m-%d} — {counts}",
        markup=False,
    )
    out.print(f"wrote {path}", markup=False)


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for history.db and dashboard.html.")
    ] = Path("demo-output"),
    accounts: Annotated[
        int, typer.Option("--accounts", "-n", min=10, max=20_000, help="Companies in the CRM.")
    ] = 600,
    weeks: Annotated[
        int, typer.Option("--weeks", "-w", min=1, max=52, help="Simulated weekly runs.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample CRM.")] = 7,
) -> None:
    """The whole product on your laptop: sample CRM, sandboxes, weekly runs, dashboard.

    Generates a CRM, serves it (with Slack and Jira) from local sandboxes, runs the
    real scoring flow for WEEKS simulated Mondays while the CRM drifts, posts the
    leadership digest and writes the dashboard. Needs no account and no server.
    """
    _prepare_prefect(output)
    from healthscore.demo.run import run_demo
    from healthscore.history import open_store
    from healthscore.reports.portfolio import load_portfolio

    score_accounts, weekly_digest = _flows()
    statuses = [(t.label, t.color) for t in load_playbook(DEFAULT_PLAYBOOK).thresholds]
    dashboard_file = (output / "dashboard.html").resolve()

    def run_week(as_of: str, db_url: str) -> dict[str, Any]:
        result: dict[str, Any] = score_accounts(
            playbook_path=str(DEFAULT_PLAYBOOK),
            source="sandbox",
            as_of=as_of,
            db_url=db_url,
            dashboard=str(dashboard_file),
        )
        return result

    def post_digest(db_url: str) -> None:
        weekly_digest(db_url=db_url, playbook=str(DEFAULT_PLAYBOOK), source="sandbox")

    def write(db_url: str, path: Path) -> None:
        from healthscore.reports.dashboard import write_dashboard

        with open_store(db_url) as store:
            write_dashboard(load_portfolio(store, None, statuses), path)

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    bar = progress.add_task("starting", total=weeks + 2)

    def report(what: str, done: int, total: int) -> None:
        progress.update(bar, description=what, completed=done, total=total)

    with run_errors(), progress:
        result = run_demo(
            output,
            run_week,
            accounts=accounts,
            weeks=weeks,
            seed=seed,
            post_digest=post_digest,
            write_dashboard=write,
            progress=report,
        )
    _print_report(result, output, dict(statuses))


def _print_report(result: Any, output: Path, colors: dict[str, str]) -> None:
    first, last = result.dates[0], result.dates[-1]
    out.print(
        f"[bold]healthscore demo[/] — {result.accounts} companies, {result.scored} customers "
        f"scored every Monday from {first:%d %b} to {last:%d %b %Y} "
        f"({result.weeks} runs, {result.seconds:.0f} s)"
    )
    counts = "   ".join(
        f"{chip(colors.get(label, ''))} {label} {n}" for label, n in result.counts.items()
    )
    out.print(f"  now:            {counts}", markup=False)
    out.print(
        f"  CRM drift:      {result.crm_updates} records updated, {result.crm_creates} "
        "activities logged through the HubSpot API",
        markup=False,
    )
    out.print(
        f"  Slack:          {result.slack_alerts} alerts ({result.slack_direct} to the CSM, "
        f"{result.slack_alerts - result.slack_direct} to team channels)"
        + (", 1 weekly digest to #cs-leadership" if result.digest_posted else ""),
        markup=False,
    )
    out.print(f"  Jira:           {result.jira_issues} tickets opened", markup=False)
    lists = ", ".join(f"{name}: {n} members" for name, n in result.lists.items()) or "none"
    out.print(f"  HubSpot lists:  {lists}", markup=False)
    out.print(f"  dashboard:      {result.dashboard}", markup=False)
    out.print(f"  history:        {result.db_path}", markup=False)
    out.print(f"  CRM snapshot:   {result.crm}", markup=False)
    db = f"sqlite:///{result.db_path}"
    out.print("\nNext:", markup=False)
    nxt = [
        f"open {result.dashboard.as_uri()}   # in your browser",
        f"healthscore history {_example_account(result)} --db {db}",
        f"healthscore explain {_example_account(result)} -p playbooks/default.yaml "
        f"-s file:{result.crm} --as-of {last:%Y-%m-%dT%H:%MZ}",
        "healthscore init my-health   # a starter playbook of your own (--help: templates)",
        "healthscore sandbox   # the HubSpot/Slack/Jira sandboxes, for your own runs",
    ]
    prefect_home = os.environ.get("PREFECT_HOME", "")
    if prefect_home.startswith(str(output.resolve())):
        nxt.append(f"PREFECT_HOME={prefect_home} prefect server start   # the runs in Prefect's UI")
    for line in nxt:
        out.print(f"  {line}", markup=False)


def _example_account(result: Any) -> str:
    """An account worth a look: the last run's biggest mover, else its latest status change."""
    last = result.summaries[-1] if result.summaries else {}
    for key in ("movers", "changes"):
        if last.get(key):
            return str(last[key][0]["id"])
    return "101"  # the sample CRM's first company


def _prepare_prefect(output: Path) -> None:
    """A temporary Prefect server with its own home in the demo folder, quiet consoles.

    With no `PREFECT_API_URL`, Prefect starts a temporary local server for the flow
    runs; its database lives in `<out>/prefect`, so the demo never touches (or locks)
    the user's own Prefect database, and `prefect server start` on that home shows
    the demo's runs afterwards. A user who points at a Prefect server keeps it.
    """
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        home = (output / "prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault(STARTUP_TIMEOUT_ENV, "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Run logs still reach the Prefect API (and its UI); the terminal keeps the progress bar.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _flows() -> tuple[Any, Any]:
    """The scoring and digest flows, imported once Prefect's environment is set."""
    from flows.score_accounts import score_accounts
    from flows.weekly_digest import weekly_digest

    return score_accounts, weekly_digest


def _playbook(value: str | None) -> tuple[str | None, list[tuple[str, str]] | None]:
    """A YAML path gives the playbook's name and thresholds; anything else is a name."""
    if value is None:
        return None, None
    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        try:
            book = load_playbook(path)
        except PlaybookError as exc:
            fail(str(exc))
        return book.name, [(t.label, t.color) for t in book.thresholds]
    return value, None
