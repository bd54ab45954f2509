"""Tasks: read the weekly digest from the history store, post it to Slack."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.actions.config import SLACK_TOKEN_ENV
from healthscore.errors import ConfigError
from healthscore.history import open_store
from healthscore.integrations.slack.messages import slack_client as make_slack_client
from healthscore.reports.digest import Digest, digest_message, load_digest
from tasks.actions import settings_for
from tasks.retry import RETRIES, RETRY_DELAYS, retry_transient


class SlackConfigError(ConfigError):
    """No Slack token for a real workspace."""


def slack_client(source: str) -> Any:
    """The same Slack client and settings as the playbook's actions (retries on 429/5xx).

    `sandbox`: the local Slack sandbox (`HEALTHSCORE_SANDBOX_URL`); `slack` (or `hubspot`,
    as the scoring flow names a real install): Slack at `SLACK_API_URL` with
    `SLACK_BOT_TOKEN` or the Prefect Secret block `slack-bot-token` (scope chat:write).
    """
    if source not in ("sandbox", "slack", "hubspot"):
        raise SlackConfigError(f"source {source!r}: use sandbox, or slack for a real workspace")
    settings = settings_for("sandbox" if source == "sandbox" else "hubspot")
    if not settings.slack_token:
        raise SlackConfigError(
            f"no Slack token: set {SLACK_TOKEN_ENV} to a bot token with chat:write, or store "
            "it in the Prefect Secret block `slack-bot-token`"
        )
    return make_slack_client(settings.slack_url, settings.slack_token)


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
