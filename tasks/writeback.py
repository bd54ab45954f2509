"""Task: write score, status, trend and group points back to HubSpot."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.trends import Comparison
from healthscore.history import open_store
from healthscore.integrations.hubspot.writeback import OwnWrites, WritebackResult, write_back
from healthscore.sources.cached import PulledCrm, cache_key, connect_source, read_back_writes
from tasks.crm import hubspot_token
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient


@task(
    name="write-back",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def write_back_scores(
    playbook: Playbook,
    source: str,
    comparisons: list[Comparison],
    snapshot: CrmSnapshot,
    db_url: str | None = None,
    run_id: int | None = None,
    pulled: PulledCrm | None = None,
) -> WritebackResult:
    """Only changed values are sent, so a retry after a partial failure resends little.

    With `run_id` (the stored run), the written records are read back (one batch read
    per 100) and kept with the CRM cache that run stored, so the next incremental pull
    does not search for our own writes again (`healthscore.integrations.hubspot.pull`).
    `pulled`: the pull scored (shared by several playbooks, `run -p a -p b`): the writes
    are read back as that pull reads and kept under its cache key, joined with those of
    the playbooks before (`OwnWrites.merge_json`).
    """
    connection = connect_source(source, hubspot_token(source))
    result = write_back(connection, playbook, comparisons, snapshot)
    logger = get_run_logger()
    if run_id is not None and result.written is not None and len(result.written):
        try:
            remembered, calls = read_back_writes(playbook, connection, result.written, pulled)
        except Exception as exc:  # the writes are done; the next pull just searches them
            logger.warning("could not read the written records back: %s", exc)
        else:
            result.calls += calls
            key = cache_key(source, connection, playbook)
            if pulled is not None and pulled.cache is not None:
                key = pulled.cache.source_key
            with open_store(db_url) as store:
                store.remember_writes(key, run_id, remembered.to_json(), OwnWrites.merge_json)
    logger.info(
        "write-back: %d values on %d %s, %d API calls",
        result.values,
        result.records,
        playbook.object,
        result.calls,
    )
    if result.properties_created:
        logger.info("created properties: %s", ", ".join(result.properties_created))
    for problem in result.problems:  # once each: the run summary repeats them
        logger.warning("write-back: %s", problem)
    if result.failed:
        logger.warning("HubSpot refused %d records: %s", len(result.failed), result.failed[:20])
    return result
