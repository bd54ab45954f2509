"""Tasks: load the playbook, score the accounts, compare with the stored history."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.actions import load_playbook
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.scoring import AccountScore, Scorer
from healthscore.core.trends import Baseline, Comparison, compare
from healthscore.history import open_store, store_exists
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient


@task(name="load-playbook", cache_policy=NO_CACHE)
def read_playbook(path: str) -> Playbook:
    """Read and validate the playbook; a bad one fails the run at once (no retries)."""
    playbook = load_playbook(path)
    get_run_logger().info("playbook %r (%s)", playbook.name, playbook.content_hash[:12])
    return playbook


@task(name="score", cache_policy=NO_CACHE)
def score_accounts(
    playbook: Playbook, snapshot: CrmSnapshot, as_of: datetime
) -> list[AccountScore]:
    scores = Scorer(playbook).score_snapshot(snapshot, as_of)
    get_run_logger().info("scored %d accounts as of %s", len(scores), as_of.isoformat())
    return scores


@task(
    name="compare",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def compare_with_history(
    playbook: Playbook,
    scores: list[AccountScore],
    as_of: datetime,
    db_url: str | None,
    dry_run: bool,
) -> list[Comparison]:
    """Previous scores, trends and transitions against the history (read only)."""
    if dry_run and not store_exists(db_url):
        baseline = Baseline()  # a dry run creates no database
    else:
        with open_store(db_url) as store:
            baseline = store.baseline(playbook, as_of)
    comparisons = compare(scores, baseline, playbook.trend.flat_band)
    changed = sum(1 for c in comparisons if c.transition and c.transition.before is not None)
    get_run_logger().info(
        "compared with %d stored accounts: %d status changes",
        len(baseline.last_run),
        changed,
    )
    return comparisons
