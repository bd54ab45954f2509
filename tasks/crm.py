"""Task: pull the CRM (incremental from the history store's cache when it can)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.core.playbook import Playbook
from healthscore.history import CacheEntry, open_store
from healthscore.integrations.hubspot.client import TOKEN_ENV
from healthscore.sources.cached import FULL_PULL_EVERY_DAYS, PulledCrm, is_api_source, pull
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient

SECRET_BLOCK = "hubspot-access-token"


def hubspot_token(source: str) -> str | None:
    """The HubSpot token: `HUBSPOT_ACCESS_TOKEN`, else the Prefect Secret block.

    Only the `hubspot` source needs one (the sandbox takes any token). Resolved
    here, at the orchestration boundary, and passed into the engine.
    """
    if source != "hubspot":
        return None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    from prefect.blocks.system import Secret

    try:
        secret = cast(Any, Secret.load(SECRET_BLOCK))  # sync call: a block, not a coroutine
    except ValueError:  # no such block: connect() explains both options
        return None
    value = secret.get()
    return str(value) if value else None


@task(
    name="pull-crm",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def pull_crm(
    playbook: Playbook,
    source: str,
    db_url: str | None,
    use_cache: bool,
    full: bool = False,
    full_pull_every_days: float = FULL_PULL_EVERY_DAYS,
    also: list[Playbook] | None = None,
) -> PulledCrm:
    """Pull every record the playbook and its write-back need (`full`: ignore the cache).

    `also`: more playbooks of the same object, scored from this one pull (their union).
    """
    logger = get_run_logger()
    load_cache: Callable[[str], CacheEntry | None] | None = None
    if use_cache and is_api_source(source):

        def load_cache(key: str) -> CacheEntry | None:
            with open_store(db_url) as store:
                return store.load_cache(key)

    pulled = pull(
        source,
        playbook,
        token=hubspot_token(source),
        load_cache=load_cache,
        full=full,
        full_pull_every_days=full_pull_every_days,
        also=also or (),
    )
    logger.info(
        "pulled %d records from %s (%s: %s; %d API calls%s)",
        pulled.records,
        source,
        "incremental" if pulled.incremental else "full",
        pulled.reason,
        pulled.calls,
        f"; {pulled.associations}" if pulled.associations else "",
    )
    return pulled
