"""Task: join the playbook's `enrich:` entries (warehouse queries, files) onto the accounts."""

from __future__ import annotations

import os
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.core.crm import CrmSnapshot
from healthscore.core.enrich import Enriched
from healthscore.core.playbook import Playbook
from healthscore.sources.enrich import enrich, secret_block_name


def database_url(env: str) -> str | None:
    """An entry's database URL: the environment variable `env`, else the Prefect Secret
    block of the same name in lower case with dashes (`WAREHOUSE_URL` -> `warehouse-url`).

    Resolved here, at the orchestration boundary, as the HubSpot token is
    (`tasks.crm.hubspot_token`); the URL is never a flow parameter.
    """
    value = os.environ.get(env, "").strip()
    if value:
        return value
    from prefect.blocks.system import Secret

    try:
        secret = cast(Any, Secret.load(secret_block_name(env)))
    except ValueError:  # no such block: the source's message names both options
        return None
    found = secret.get()
    return str(found) if found else None


@task(name="enrich", cache_policy=NO_CACHE)
def enrich_accounts(playbook: Playbook, snapshot: CrmSnapshot) -> Enriched:
    """The snapshot with the playbook's `enrich:` columns on its accounts (not retried: a
    query that failed once fails again; the message says why)."""
    enriched = enrich(snapshot, playbook, secret=database_url)
    for counts in enriched.counts:
        get_run_logger().info(
            "%s: %d rows, %d joined onto accounts", counts.origin, counts.rows, counts.matched_rows
        )
    return enriched
