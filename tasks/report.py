"""Task: the run report, as Prefect artifacts (a table and a markdown summary)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from healthscore.playbook import Playbook
from healthscore.run_report import RunSummary, markdown_report, table_rows
from healthscore.trends import Comparison
from healthscore.writeback import slug


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
    create_table_artifact(
        table_rows(comparisons), key=f"{key}-scores", description=f"{playbook.name}: scores"
    )
    counts = ", ".join(f"{label}: {n}" for label, n in summary.counts.items())
    get_run_logger().info(
        "%d accounts — %s; %d status changes", summary.accounts, counts, len(summary.changes)
    )
    return summary
