"""Task: the setup checks of `healthscore doctor`, before the run writes anything.

A token without a scope, a typo'd property, a fallback channel the bot cannot
post in or a Jira project that does not exist would otherwise surface after the
scores are stored, as a failed write-back or failed actions on every run. The
checks raise `SetupProblems` (a user error: exit 2, no retry) listing each one.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from healthscore.actions.preflight import SetupCheck
from healthscore.core.playbook import Playbook
from tasks.actions import settings_for
from tasks.crm import hubspot_token
from tasks.enrich import database_url
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient


@task(
    name="check-setup",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def check_setup(playbook: Playbook, source: str) -> None:
    """HubSpot scopes and properties, Slack channels, Jira projects: every problem at once.

    A vendor the playbook's actions need but that is not configured is left to the
    plan, which skips that kind with a note (as without this check); what the
    write-back copes with by itself (`SetupCheck.require`) is logged, not fatal.
    """
    check = _check_for(source)
    logger = get_run_logger()
    for line in check.require(playbook):  # the write-back copes; the summary says what failed
        logger.warning("setup: %s", line)
    logger.info("setup checked: HubSpot, Slack and Jira as the playbook needs")


_CHECKS: dict[tuple[str, str], SetupCheck] = {}


def _check_for(source: str) -> SetupCheck:
    """One `SetupCheck` per flow run and source: the playbooks of one run (`run -p a -p b`)
    share its answers (the token's scopes, each object type's property definitions), so
    checking two playbooks costs what checking one playbook of their union does. Only
    the current flow run's check is kept."""
    key = (str(flow_run.id or ""), source)
    if key not in _CHECKS:
        _CHECKS.clear()
        _CHECKS[key] = SetupCheck(
            source,
            settings_for(source),
            hubspot_token(source),
            strict=False,
            database_url=database_url,
        )
    return _CHECKS[key]
