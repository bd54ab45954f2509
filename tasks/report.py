"""Tasks: the run report and the portfolio dashboard, as Prefect artifacts and an HTML file."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from healthscore.core.playbook import Playbook
from healthscore.core.trends import Comparison
from healthscore.integrations.hubspot.writeback import slug
from healthscore.reports.run_summary import RunSummary, markdown_report, table_rows


@task(name="report", cache_policy=NO_CACHE)
def publish_report(
    playbook: Playbook, summary: RunSummary, comparisons: list[Comparison]
) -> RunSummary:
    """Artifacts keyed by playbook, so the UI shows each playbook's latest report."""
    key = "health-" + slug(playbook.name).replace("_", "-")
    markdown = markdown_report(playbook, summary)
    create_markdown_artifact(
        markdown, key=f"{key}-summary", description=f"{playbook.name}: run summary"
    )
    rows = table_rows(comparisons)
    create_table_artifact(
        rows,
        key=f"{key}-scores",
        description=f"{playbook.name}: scores{_lowest(len(rows), len(comparisons))}",
    )
    counts = ", ".join(f"{label}: {n}" for label, n in summary.counts.items())
    get_run_logger().info(
        "%d accounts — %s; %d status changes", summary.accounts, counts, len(summary.changes)
    )
    return summary


@task(name="dashboard", cache_policy=NO_CACHE)
def publish_dashboard(
    playbook: Playbook, db_url: str | None, target: str | None = None, shared: bool = False
) -> str | None:
    """Write the dashboard HTML from the stored history and tell its story as artifacts.

    A markdown artifact (headline, by status, by CSM, movers), a table of every
    account and a link to the HTML file. Runs after the store, so it shows this run.
    A dashboard that cannot be written (full disk, no permission) is a warning, not a
    failed run: the scores are stored and the actions are done by then.
    """
    from healthscore.history import open_store
    from healthscore.reports.artifacts import portfolio_markdown, portfolio_table
    from healthscore.reports.dashboard import dashboard_path, write_dashboard
    from healthscore.reports.portfolio import load_portfolio

    logger = get_run_logger()
    key = "health-" + slug(playbook.name).replace("_", "-")
    statuses = [(t.label, t.color) for t in playbook.thresholds]
    with open_store(db_url) as store:
        portfolio = load_portfolio(store, playbook.name, statuses)
    path = dashboard_path(playbook.name, db_url, target, shared=shared)
    uri: str | None = None
    try:
        uri = write_dashboard(portfolio, path).as_uri()
    except OSError as exc:
        logger.warning("could not write the dashboard to %s: %s", path, exc)
    create_markdown_artifact(
        portfolio_markdown(portfolio, uri),
        key=f"{key}-dashboard",
        description=f"{playbook.name}: portfolio health",
    )
    rows = portfolio_table(portfolio)
    create_table_artifact(
        rows,
        key=f"{key}-accounts",
        description=f"{playbook.name}: accounts{_lowest(len(rows), len(portfolio.accounts))}",
    )
    if uri is not None:
        create_link_artifact(
            uri,
            link_text=f"{playbook.name} dashboard (HTML)",
            key=f"{key}-dashboard-file",
            description="The executive dashboard of this run, a self-contained HTML file",
        )
        logger.info("dashboard: %s", path)
    return uri


def _lowest(shown: int, total: int) -> str:
    """What a capped table artifact holds (`TABLE_ARTIFACT_ROWS`), for its description."""
    return f" (the {shown:,} lowest of {total:,}; all in the dashboard)" if shown < total else ""
