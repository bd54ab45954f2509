"""Tasks: record the run in the history store (one transaction), then its outcome."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.core.trends import Comparison
from healthscore.errors import UserError
from healthscore.history import CacheEntry, RunInfo, open_store, store_exists
from healthscore.history.ledger import PendingAction


class AsOfInThePast(UserError):
    """`--as-of` before the newest stored run of the playbook, without `--backfill`."""


@task(name="check-as-of", cache_policy=NO_CACHE)
def check_as_of(db_url: str | None, playbook: str, as_of: datetime, backfill: bool) -> None:
    """Refuse an as-of older than the newest stored run unless it is a backfill.

    A normal run at a past as-of compares against a history that already holds
    later runs and fires every trigger again (it re-sent every alert); a
    backfill stores the scores and sends nothing. The same as-of again is a
    re-run, not the past: allowed.
    """
    if backfill or not store_exists(db_url):
        return
    with open_store(db_url) as store:
        newest = store.newest_as_of(playbook)
    if newest is not None and as_of < newest:
        raise AsOfInThePast(
            f"--as-of {as_of.isoformat()} is before the newest stored run of {playbook!r} "
            f"({newest.isoformat()}); add --backfill to store past scores without sending "
            "any action, or leave out --as-of"
        )


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
