"""Task: run the playbook's actions (Slack, Jira, lists). A no-op hook for now.

The flow already calls it at the right place (after the write-back, before the
report) with everything the actions need, so filling it in changes no flow code.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from healthscore.crm import CrmSnapshot
from healthscore.playbook import Playbook
from healthscore.trends import Comparison


def act(
    playbook: Playbook,
    comparisons: list[Comparison],
    snapshot: CrmSnapshot,
    run_id: int | None,
    dry_run: bool,
) -> int:
    """Fire the actions whose triggers hold; returns how many were sent (none yet)."""
    del comparisons, snapshot, run_id, dry_run
    return 0


@task(name="act", cache_policy=NO_CACHE)
def run_actions(
    playbook: Playbook,
    comparisons: list[Comparison],
    snapshot: CrmSnapshot,
    run_id: int | None,
    dry_run: bool,
) -> int:
    sent = act(playbook, comparisons, snapshot, run_id, dry_run)
    get_run_logger().info("actions: %d sent (%d defined)", sent, len(playbook.actions))
    return sent
