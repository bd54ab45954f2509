"""Tasks: plan the playbook's actions (before the store), then dispatch the ledger (after).

Planning comes before the store so the due actions are written `pending` in
the run's own transaction (the outbox). Dispatching sends every ledger row of
the playbook not yet sent, this run's and earlier runs' failures alike. Tokens
come from the environment or Prefect Secret blocks, resolved here: the engine
in healthscore/ never imports Prefect.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.actions.config import (
    JIRA_API_TOKEN_ENV,
    JIRA_TOKEN_ENV,
    SLACK_TOKEN_ENV,
    ActionSettings,
    action_settings,
    retry_policy,
    unconfigured,
)
from healthscore.actions.dispatch import Dispatcher, Vendors
from healthscore.actions.plan import (
    ActionPlan,
    describe,
    plan_actions,
    skip_unconfigured,
    window_days,
)
from healthscore.actions.preflight import jira_sender, slack_sender
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.trends import Comparison
from healthscore.core.triggers import TriggerHistory
from healthscore.history import open_store, store_exists
from healthscore.history.ledger import DEAD, ActionCounts, ActionLedger, LedgerEntry
from healthscore.history.lookups import StoreLookupCache
from healthscore.history.trigger_history import trigger_history
from healthscore.integrations.hubspot.actions import HubSpotActions
from healthscore.integrations.jira.issues import JiraSender
from healthscore.integrations.slack.messages import LookupCache, SlackSender
from healthscore.sources.cached import connect_source, is_api_source
from tasks.crm import hubspot_token
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient

SECRET_BLOCKS = {
    SLACK_TOKEN_ENV: "slack-bot-token",
    JIRA_TOKEN_ENV: "jira-token",
    JIRA_API_TOKEN_ENV: "jira-api-token",
}
UNKNOWN_PORTAL = "0"
AFTER_SEND_HOOKS: list[Callable[[LedgerEntry], None]] = []
"""Called after a vendor accepted a row and before the row is marked sent
(`Dispatcher(after_send=...)`). Empty in production; a crash test's entry script
registers one that kills the process at that worst moment (`tests/crash_points.py`)."""


def _after_send(entry: LedgerEntry) -> None:
    for hook in AFTER_SEND_HOOKS:
        hook(entry)


def _secret(block: str) -> str | None:
    from prefect.blocks.system import Secret

    try:
        secret = cast(Any, Secret.load(block))
    except ValueError:  # no such block
        return None
    value = secret.get()
    return str(value) if value else None


def settings_for(source: str) -> ActionSettings:
    """Environment first; a Prefect Secret block only for a token the environment lacks."""
    secrets: dict[str, str | None] = {}
    if source != "sandbox":
        for env_name, block in SECRET_BLOCKS.items():
            if not os.environ.get(env_name, "").strip():
                secrets[env_name] = _secret(block)
    return action_settings(source, secrets=secrets)


def _portal_id(settings: ActionSettings, source: str) -> str:
    if settings.portal_id:
        return settings.portal_id
    if not is_api_source(source):
        return UNKNOWN_PORTAL
    return HubSpotActions(connect_source(source, hubspot_token(source))).portal_id()


@task(
    name="plan-actions",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def plan_due_actions(
    playbook: Playbook,
    comparisons: list[Comparison],
    snapshot: CrmSnapshot,
    as_of: datetime,
    db_url: str | None,
    source: str,
    dry_run: bool,
    enroll_existing: bool = False,
) -> ActionPlan:
    """Which actions fire this run (read-only); a dry run prints each one and why.

    The playbook's first run is a baseline (`healthscore.actions.plan.is_baseline`):
    its firings are held unless `enroll_existing`.
    """
    logger = get_run_logger()
    if not playbook.actions:
        return ActionPlan(playbook.name)
    drops, rises = window_days(playbook)
    recorded: dict[tuple[str, str, str], str] = {}
    settings = settings_for(source)
    portal = _portal_id(settings, source)
    if dry_run and not store_exists(db_url):
        history = TriggerHistory()
        plan = plan_actions(
            playbook, comparisons, snapshot, history, as_of, portal, enroll_existing=enroll_existing
        )
    else:
        with open_store(db_url) as store:
            history = trigger_history(
                store.engine, playbook.name, as_of, drops, rises, playbook.timezone
            )
            plan = plan_actions(
                playbook,
                comparisons,
                snapshot,
                history,
                as_of,
                portal,
                enroll_existing=enroll_existing,
            )
            if dry_run:
                recorded = ActionLedger(store.engine).recorded(playbook.name, plan.keys())
    skip_unconfigured(plan, unconfigured(settings, is_api_source(source)))
    for problem in plan.render_errors:
        logger.warning("template failed: %s", problem)
    if dry_run:
        for action in plan.due:
            print(
                describe(
                    action, recorded.get((action.action, action.account_id, action.occurrence))
                )
            )
        for sync in plan.syncs:
            print(
                f"[{sync.action}] would remove from list {sync.list_name!r} every member that "
                f"no longer qualifies ({len(sync.qualifying)} qualify now)"
            )
    for note in plan.notes():
        logger.info("actions %s", note)
    logger.info("actions due: %d (%d list syncs)", len(plan.due), len(plan.syncs))
    return plan


def vendors_for(source: str, settings: ActionSettings, cache: LookupCache | None = None) -> Vendors:
    """The run's vendor clients; `cache` keeps Slack owner lookups across runs."""

    def slack() -> SlackSender:
        return slack_sender(settings, cache)

    def jira() -> JiraSender:
        return jira_sender(settings)

    def hubspot() -> HubSpotActions:
        return HubSpotActions(connect_source(source, hubspot_token(source)))

    return Vendors(slack=slack, jira=jira, hubspot=hubspot)


@task(
    name="act",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def run_actions(
    playbook: Playbook, plan: ActionPlan, source: str, db_url: str | None, dry_run: bool
) -> tuple[ActionCounts, list[str]]:
    """Send every ledger row of the playbook due now: what happened, and a line per failure.

    Vendor errors never fail the task: they are recorded on the row, retried
    after a backoff, and `dead` at the attempt cap (`retry_policy()`); the
    counts say so and the flow makes the run's state show it. Only a database
    error fails the task (and is retried here: a row is claimed before it is
    sent, so a retry cannot send it twice).
    """
    logger = get_run_logger()
    if dry_run or not playbook.actions:
        return ActionCounts(), []
    settings = settings_for(source)
    policy = retry_policy()
    with open_store(db_url) as store:
        vendors = vendors_for(source, settings, StoreLookupCache(store.engine))
        dispatcher = Dispatcher(
            ActionLedger(store.engine),
            vendors,
            logger.info,
            after_send=_after_send if AFTER_SEND_HOOKS else None,
            policy=policy,
        )
        counts, errors = dispatcher.run(playbook.name, plan.syncs)
        counts.dead_total = ActionLedger(store.engine).counts(playbook.name)[DEAD]
    for problem in errors[:50]:
        logger.warning("action failed: %s", problem)
    logger.info("actions: %s", counts.describe())
    return counts, errors
