"""Tasks: read the weekly digest from the history store, post it to Slack."""

from __future__ import annotations

import os
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.digest import Digest, digest_message, load_digest
from healthscore.history import open_store
from healthscore.hubspot_client import SANDBOX_URL, SANDBOX_URL_ENV
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient

SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"
SLACK_SECRET_BLOCK = "slack-bot-token"


class SlackConfigError(ValueError):
    """No Slack token for a real workspace."""


def slack_client(source: str) -> Any:
    """`sandbox`: the local Slack sandbox (`HEALTHSCORE_SANDBOX_URL`); `slack` (or `hubspot`,
    as the scoring flow names a real install): Slack with `SLACK_BOT_TOKEN` or the Prefect
    Secret block `slack-bot-token` (scope chat:write)."""
    from slack_sdk import WebClient

    if source not in ("sandbox", "slack", "hubspot"):
        raise SlackConfigError(f"source {source!r}: use sandbox, or slack for a real workspace")
    if source == "sandbox":
        base = os.environ.get(SANDBOX_URL_ENV) or SANDBOX_URL
        return WebClient(token="xoxb-sandbox", base_url=base.rstrip("/") + "/api/")
    token = os.environ.get(SLACK_TOKEN_ENV, "").strip()
    if not token:
        from prefect.blocks.system import Secret

        try:
            token = str(cast(Any, Secret.load(SLACK_SECRET_BLOCK)).get() or "")
        except ValueError:
            token = ""
    if not token:
        raise SlackConfigError(
            f"no Slack token: set {SLACK_TOKEN_ENV} to a bot token with chat:write, or store "
            f"it in the Prefect Secret block `{SLACK_SECRET_BLOCK}`"
        )
    return WebClient(token=token)


@task(
    name="read-digest",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def read_digest(
    db_url: str | None, playbook: str | None, statuses: list[tuple[str, str]] | None
) -> Digest:
    with open_store(db_url) as store:
        digest = load_digest(store, playbook, statuses)
    get_run_logger().info(
        "digest of %r as of %s: %d accounts, %d new %s",
        digest.portfolio.playbook,
        digest.portfolio.run.as_of.isoformat(),
        len(digest.portfolio.accounts),
        len(digest.new_at_risk()),
        digest.portfolio.risk_label,
    )
    return digest


@task(
    name="post-digest",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def post_digest(digest: Digest, channel: str, source: str, hint: str | None) -> str:
    """One `chat.postMessage`; returns the message's `ts`."""
    message = digest_message(digest, hint)
    answer = slack_client(source).chat_postMessage(
        channel=channel, text=message["text"], blocks=message["blocks"], unfurl_links=False
    )
    ts = str(answer.get("ts", ""))
    get_run_logger().info("digest posted to %s (ts %s)", channel, ts)
    return ts
