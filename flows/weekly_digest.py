"""The weekly leadership digest: read the portfolio from the history, post one Slack message.

Scheduled on its own (deployments/prefect.yaml, Monday morning) rather than at the end
of every scoring run: leadership wants one message a week, not one per run, and the
digest reads only the history store, so it never calls HubSpot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from tasks.digest import post_digest, read_digest


@flow(name="weekly-digest", log_prints=False)
def weekly_digest(
    db_url: str | None = None,
    playbook: str | None = None,
    channel: str = "#cs-leadership",
    source: str = "sandbox",
    dashboard_url: str | None = None,
) -> dict[str, Any]:
    """Post the digest of the latest run to a leadership channel.

    db_url: the history database (default `HEALTHSCORE_DB_URL` or SQLite in the data
    folder). playbook: a playbook name, or its YAML file (then its thresholds order
    the statuses); default the playbook of the newest run. channel: Slack channel.
    source: `sandbox` posts to the local Slack sandbox; `slack` posts to Slack with
    `SLACK_BOT_TOKEN` (or the Prefect Secret block `slack-bot-token`).
    dashboard_url: where readers find the dashboard (a shared drive, an intranet page).
    """
    name, statuses = _playbook(playbook)
    digest = read_digest(db_url, name, statuses)
    hint = f"Dashboard: {dashboard_url}" if dashboard_url else None
    ts = post_digest(digest, channel, source, hint)
    return {
        "playbook": digest.portfolio.playbook,
        "as_of": digest.portfolio.run.as_of.isoformat(),
        "channel": channel,
        "ts": ts,
        "counts": digest.counts,
        "new_at_risk": [a.id for a in digest.new_at_risk()],
    }


def _playbook(value: str | None) -> tuple[str | None, list[tuple[str, str]] | None]:
    """A YAML path gives the playbook's name and thresholds; anything else is a name."""
    if value and Path(value).suffix.lower() in (".yaml", ".yml") and Path(value).is_file():
        from healthscore.actions import load_playbook

        book = load_playbook(value)
        return book.name, [(t.label, t.color) for t in book.thresholds]
    return value, None
