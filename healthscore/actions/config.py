"""Where Slack and Jira are and how to authenticate: the one place that decides it.

Real services: `SLACK_BOT_TOKEN` and `SLACK_API_URL` (default Slack's own
https://slack.com/api/), `JIRA_URL` with `JIRA_TOKEN` (a Data Center personal
access token) or `JIRA_EMAIL` + `JIRA_API_TOKEN` (Jira Cloud). The Prefect
tasks may pass tokens read from Secret blocks instead (`tasks/actions.py`);
this module never imports Prefect.

`--source sandbox`: Slack, Jira and HubSpot all default to the local sandbox at
`HEALTHSCORE_SANDBOX_URL` (default http://127.0.0.1:8765), with placeholder
tokens, so a demo can never post to a real workspace by accident.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from healthscore.errors import ConfigError
from healthscore.history.ledger import RetryPolicy
from healthscore.integrations.hubspot.client import SANDBOX_URL, SANDBOX_URL_ENV

SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"
SLACK_URL_ENV = "SLACK_API_URL"
SLACK_URL = "https://slack.com/api/"
JIRA_URL_ENV = "JIRA_URL"
JIRA_TOKEN_ENV = "JIRA_TOKEN"
JIRA_EMAIL_ENV = "JIRA_EMAIL"
JIRA_API_TOKEN_ENV = "JIRA_API_TOKEN"
JIRA_RETRIES_ENV = "JIRA_MAX_RETRIES"
PORTAL_ENV = "HUBSPOT_PORTAL_ID"
MAX_ATTEMPTS_ENV = "HEALTHSCORE_ACTION_MAX_ATTEMPTS"
BACKOFF_ENV = "HEALTHSCORE_ACTION_BACKOFF_SECONDS"
SANDBOX_TOKEN = "sandbox-token"


class ActionConfigError(ConfigError):
    """An action needs a service that is not configured (no token, no URL)."""


@dataclass(frozen=True)
class ActionSettings:
    """Addresses and credentials of the action targets for one run."""

    slack_url: str
    slack_token: str | None
    jira_url: str | None
    jira_token: str | None
    jira_email: str | None
    jira_api_token: str | None
    jira_max_retries: int = 3
    portal_id: str | None = None

    def require_slack(self) -> tuple[str, str]:
        if not self.slack_token:
            raise ActionConfigError(
                f"no Slack token: set {SLACK_TOKEN_ENV} (a bot token, scopes chat:write, "
                "users:read.email, im:write, channels:read, channels:history, groups:history) "
                "or the Prefect Secret block `slack-bot-token`"
            )
        return self.slack_url, self.slack_token

    def require_jira(self) -> str:
        if not self.jira_url:
            raise ActionConfigError(f"no Jira address: set {JIRA_URL_ENV}")
        if not (self.jira_token or (self.jira_email and self.jira_api_token)):
            raise ActionConfigError(
                f"no Jira credentials: set {JIRA_TOKEN_ENV}, or {JIRA_EMAIL_ENV} and "
                f"{JIRA_API_TOKEN_ENV}, or the Prefect Secret blocks `jira-token` / "
                "`jira-api-token`"
            )
        return self.jira_url


def sandbox_base_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return (env.get(SANDBOX_URL_ENV) or SANDBOX_URL).rstrip("/")


def action_settings(
    source: str,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | None] | None = None,
) -> ActionSettings:
    """Settings from the environment; `secrets` (tokens by env name) fill what env lacks."""
    env = os.environ if env is None else env
    secrets = secrets or {}

    def value(name: str) -> str | None:
        return (env.get(name) or "").strip() or secrets.get(name) or None

    retries = int(value(JIRA_RETRIES_ENV) or 3)
    portal = value(PORTAL_ENV)
    if source == "sandbox":
        base = sandbox_base_url(env)
        return ActionSettings(
            slack_url=base + "/api/",
            slack_token=SANDBOX_TOKEN,
            jira_url=base,
            jira_token=SANDBOX_TOKEN,
            jira_email=None,
            jira_api_token=None,
            jira_max_retries=retries,
            portal_id=portal,
        )
    slack_url = value(SLACK_URL_ENV) or SLACK_URL
    return ActionSettings(
        slack_url=slack_url if slack_url.endswith("/") else slack_url + "/",
        slack_token=value(SLACK_TOKEN_ENV),
        jira_url=value(JIRA_URL_ENV),
        jira_token=value(JIRA_TOKEN_ENV),
        jira_email=value(JIRA_EMAIL_ENV),
        jira_api_token=value(JIRA_API_TOKEN_ENV),
        jira_max_retries=retries,
        portal_id=portal,
    )


def retry_policy(env: Mapping[str, str] | None = None) -> RetryPolicy:
    """The ledger's retry policy: `HEALTHSCORE_ACTION_MAX_ATTEMPTS` (default 5, then `dead`)
    and `HEALTHSCORE_ACTION_BACKOFF_SECONDS` (default 300, doubled after each failure).

    Raises ActionConfigError for a value that is not a number in range.
    """
    env = os.environ if env is None else env
    default = RetryPolicy()
    attempts_text = (env.get(MAX_ATTEMPTS_ENV) or "").strip()
    backoff_text = (env.get(BACKOFF_ENV) or "").strip()
    try:
        attempts = int(attempts_text) if attempts_text else default.max_attempts
        backoff = float(backoff_text) if backoff_text else default.backoff_seconds
    except ValueError:
        attempts, backoff = 0, -1.0
    if attempts < 1 or backoff < 0:
        raise ActionConfigError(
            f"{MAX_ATTEMPTS_ENV}={attempts_text or '(unset)'} / {BACKOFF_ENV}="
            f"{backoff_text or '(unset)'}: attempts must be a whole number >= 1 and the "
            "backoff a number of seconds >= 0"
        )
    return RetryPolicy(max_attempts=attempts, backoff_seconds=backoff)


HUBSPOT_KINDS = ("hubspot_list", "hubspot_task")


def unconfigured(settings: ActionSettings, api_source: bool) -> dict[str, str]:
    """Action kinds this run cannot deliver, each with what is missing and how to set it.

    Slack without a token, Jira without an address or credentials, HubSpot lists
    and tasks with a `file:`/`csv:` source (no CRM to write to). The plan skips
    these kinds (`healthscore.actions.plan.skip_unconfigured`) instead of recording
    rows that would fail on every run.
    """
    missing: dict[str, str] = {}
    for kind, require in (("slack", settings.require_slack), ("jira", settings.require_jira)):
        try:
            require()
        except ActionConfigError as exc:
            missing[kind] = str(exc)
    if not api_source:
        for kind in HUBSPOT_KINDS:
            missing[kind] = (
                "no CRM to write to: HubSpot lists and tasks need --source hubspot "
                "(HUBSPOT_ACCESS_TOKEN) or --source sandbox"
            )
    return missing
