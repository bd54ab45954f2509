"""Planning: which actions are due this run, for whom, why, and exactly what they will send.

Pure: the run's comparisons, the CRM snapshot (owners, properties) and the
trigger history in, `PendingAction`s out. Everything a vendor will receive is
rendered here, at plan time, and stored in the ledger row: a retry next week
sends the message of the occurrence it belongs to, not a re-render with next
week's numbers, and a dry run prints exactly what a real run would send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from healthscore.actions.context import record_url
from healthscore.actions.escape import plain
from healthscore.actions.kinds import REGISTRY
from healthscore.actions.kinds.base import ActionRenderError, ListSync, Occurrence
from healthscore.core.conditions import compile_all
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Action, Playbook
from healthscore.core.trends import Comparison
from healthscore.core.triggers import TriggerHistory, fire, holds_now
from healthscore.history.ledger import PendingAction

BASELINE_REASON = (
    "first run of the playbook: a baseline, as HubSpot workflows do not enroll existing "
    "records; `healthscore run --enroll-existing` or `enroll_existing: true` sends them"
)


@dataclass
class ActionPlan:
    """The due actions of a run, the list syncs, and templates that failed to render.

    `held`: firings not sent because this run is the playbook's baseline
    (`is_baseline`), counted per action name; `held_reason` says why.
    """

    playbook: str
    due: list[PendingAction] = field(default_factory=list)
    syncs: list[ListSync] = field(default_factory=list)
    render_errors: list[str] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)
    held_reason: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line for the held actions and one per unconfigured kind, for the run summary."""
        lines = []
        if self.held:
            per_action = ", ".join(f"{name}: {n}" for name, n in self.held.items())
            lines.append(f"held {sum(self.held.values())} ({per_action}): {self.held_reason}")
        for kind, count in self.skipped.items():
            lines.append(f"skipped {count} {kind}: {self.skip_reasons[kind]}")
        return lines

    def keys(self) -> list[tuple[str, str, str]]:
        return [(a.action, a.account_id, a.occurrence) for a in self.due]


def describe(action: PendingAction, state: str | None = None) -> str:
    """One line for a dry run or a log: what, to whom, for which account, and why."""
    kind = REGISTRY.get(action.kind)
    verb = kind.verb if kind else action.kind  # a row of a kind since removed
    name = action.payload.get("account_name", "")
    line = (
        f"[{action.action}] would {verb} {action.target} for {name} ({action.account_id}): "
        f"{action.reason} [occurrence {action.occurrence}]"
    )
    if state == "sent":
        return line + " -- already sent, nothing to do"
    if state is not None:
        return line + f" -- already recorded ({state}), would retry"
    return line


def is_baseline(playbook: Playbook, history: TriggerHistory, enroll_existing: bool) -> bool:
    """Whether this run only records scores: the playbook has no stored score before it.

    HubSpot workflows enroll only records that meet the trigger after the workflow
    is turned on, unless "enroll existing records" is ticked; likewise the first run
    of a playbook (no score of it stored strictly before this as-of) sends no
    transition or level action, so a first run does not alert on every account that
    was already At-risk. `enroll_existing` (`run --enroll-existing`) or the
    playbook's `enroll_existing: true` sends them. Later runs see the baseline as
    the previous state, so they send exactly the transitions that happen after it;
    an account that appears later is enrolled on its first score, as in HubSpot.
    """
    return not history.prior and not (enroll_existing or playbook.enroll_existing)


def plan_actions(
    playbook: Playbook,
    comparisons: Sequence[Comparison],
    snapshot: CrmSnapshot,
    history: TriggerHistory,
    as_of: datetime,
    portal_id: str,
    *,
    enroll_existing: bool = False,
) -> ActionPlan:
    """Evaluate every action's trigger and `where` for every account; render the due ones.

    On a baseline run (`is_baseline`) nothing is due and no list is synced: each
    firing is counted in `plan.held` instead.
    """
    plan = ActionPlan(playbook.name)
    baseline = is_baseline(playbook, history, enroll_existing)
    if baseline:
        plan.held_reason = BASELINE_REASON
    owners = snapshot.owner_by_id()
    moment = as_of.timestamp()
    object_type_id = snapshot.frame.type_id(playbook.object)  # a custom object's via its schema
    for action in playbook.actions:
        where = compile_all([c.as_tuple() for c in action.where])
        synced = REGISTRY[action.kind].synced_list(action)
        qualifying: set[str] = set()
        for comparison in comparisons:
            score = comparison.score
            if not where(score.properties, moment):
                continue
            if synced is not None and holds_now(
                action.trigger, score.id, comparison.rounded, score.status, history
            ):
                qualifying.add(score.id)
            firing = fire(
                action.trigger,
                account_id=score.id,
                score=comparison.rounded,
                status=score.status,
                as_of=as_of,
                history=history,
            )
            if firing is None:
                continue
            if baseline:
                plan.held[action.name] = plan.held.get(action.name, 0) + 1
                continue
            owner = owners.get(score.owner_id or "")
            try:
                plan.due.append(
                    _pending(
                        playbook,
                        action,
                        Occurrence(
                            playbook,
                            action,
                            comparison,
                            firing,
                            owner,
                            history,
                            as_of,
                            record_url(portal_id, playbook.object, score.id, object_type_id),
                            object_type_id,
                        ),
                    )
                )
            except ActionRenderError as exc:
                plan.render_errors.append(f"{action.name} / {score.id}: {exc}")
        if synced is not None and not baseline:
            plan.syncs.append(
                ListSync(
                    action.kind,
                    action.name,
                    synced,
                    object_type_id,
                    frozenset(qualifying),
                )
            )
    return plan


def _pending(playbook: Playbook, action: Action, occurrence: Occurrence) -> PendingAction:
    score, firing = occurrence.score, occurrence.firing
    payload, target = REGISTRY[action.kind].render(occurrence)
    return PendingAction(
        playbook=playbook.name,
        action=action.name,
        kind=action.kind,
        account_id=score.id,
        occurrence=firing.occurrence,
        as_of=occurrence.as_of,
        reason=firing.reason,
        target=target,
        payload={"account_name": plain(score.name), "url": occurrence.url, **payload},
    )


def skip_unconfigured(plan: ActionPlan, missing: Mapping[str, str]) -> None:
    """Take the due actions of unconfigured kinds out of the plan, counted per kind.

    `missing`: kind -> what is missing and how to set it
    (`healthscore.actions.config.unconfigured`). A skipped action gets no ledger
    row, so it is neither failed nor retried; once the channel is configured,
    later occurrences are sent, and re-running a past `--as-of` sends that
    run's occurrences (the ask to resend). List syncs are skipped with their kind.
    """
    kept: list[PendingAction] = []
    for action in plan.due:
        if action.kind in missing:
            plan.skipped[action.kind] = plan.skipped.get(action.kind, 0) + 1
            plan.skip_reasons[action.kind] = missing[action.kind]
        else:
            kept.append(action)
    plan.due = kept
    plan.syncs = [sync for sync in plan.syncs if sync.kind not in missing]


def window_days(playbook: Playbook) -> tuple[list[float], list[float]]:
    """The distinct windows of the drop and of the rise triggers: one history query each."""
    drops = sorted(
        {
            float(a.trigger.within_days or 0)
            for a in playbook.actions
            if a.trigger.kind == "score_dropped_by"
        }
    )
    rises = sorted(
        {
            float(a.trigger.within_days or 0)
            for a in playbook.actions
            if a.trigger.kind == "score_rose_by"
        }
    )
    return drops, rises


def recorded_states(
    plan: ActionPlan, recorded: Mapping[tuple[str, str, str], str]
) -> list[tuple[PendingAction, str | None]]:
    """Each due action with the state of its ledger row, if one exists already."""
    return [(a, recorded.get((a.action, a.account_id, a.occurrence))) for a in plan.due]
