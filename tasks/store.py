"""Tasks: record the run in the history store (one transaction), then its outcome."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.core.trends import Comparison
from healthscore.history import CacheEntry, RunInfo, open_store
from healthscore.history.ledger import PendingAction


@task(name="store", cache_policy=NO_CACHE)
def store_run(
    db_url: str | None,
    run: RunInfo,
    comparisons: list[Comparison],
    cache: CacheEntry | None,
    actions: list[PendingAction] | None = None,
) -> int:
    """Write the run, its snapshots, the CRM cache and the due actions atomically.

    Returns the run id. `actions` go to the action ledger as `pending`.

    Not retried: the transaction either committed or left nothing, and a retry
    after a commit whose answer was lost would record the run twice.
    """
    with open_store(db_url) as store:
        run_id = store.record_run(run, comparisons, cache, actions or ())
        get_run_logger().info(
            "stored run %d (%d accounts) in %s", run_id, len(comparisons), store.url
        )
    return run_id


@task(name="finish-run", retries=2, retry_delay_seconds=[2.0, 10.0], cache_policy=NO_CACHE)
def finish_run(db_url: str | None, run_id: int, outcome: str, message: str | None = None) -> None:
    with open_store(db_url) as store:
        store.finish_run(run_id, outcome, message)
