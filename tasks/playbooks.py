"""Many playbooks in one flow run: read each, pull once per scored object, keep going.

`healthscore run -p a.yaml -p b.yaml` (the flow's `playbook_path` as a list) pulls
the union of what the playbooks read once (`healthscore.sources.cached.pull`'s
`also`), then scores, stores, writes back and acts per playbook, each in its own
`score-playbook` subflow run with its own history and ledger. A playbook that
fails (unreadable, an as-of in the past, its pull or any later step) is reported
and the others go on; the flow run ends Failed when one did, after all ran.

With one playbook given as a string, nothing changes from a single-playbook
run: the first error is raised, as it always was, so `healthscore run` maps it to
its exit code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import get_run_logger
from prefect.states import Completed, Failed, State

from healthscore.core.playbook import Playbook
from healthscore.history.ledger import ActionCounts
from healthscore.sources.cached import PulledCrm, pull_by_object
from tasks.crm import pull_crm
from tasks.preflight import check_setup
from tasks.scoring import read_playbook
from tasks.store import check_as_of

ACTIONS_FAILED_STATE = "ActionsFailed"
"""The flow run's final state name (type Completed) when actions failed or died: the scores
are stored, but someone should look. Alert on it with a Prefect automation."""


@dataclass
class Outcome:
    """One playbook of the run: what was asked, the playbook, and how it ended."""

    path: str
    playbook: Playbook | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    actions_failed: bool = False


@dataclass
class PlaybookRuns:
    """The playbooks of one flow run and their outcomes, in the order given.

    `one`: a single playbook given as a string, whose errors are raised as before.
    """

    one: bool
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ready(self) -> list[Playbook]:
        """The playbooks read and not failed or done yet."""
        return [
            o.playbook
            for o in self.outcomes
            if o.playbook is not None and o.error is None and o.summary is None
        ]

    def outcome(self, playbook: Playbook) -> Outcome:
        return next(o for o in self.outcomes if o.playbook is playbook)

    def failed(self, outcome: Outcome, state: State[Any]) -> None:
        """Record a failed task state; with `one`, raise its exception."""
        if self.one:
            state.result()  # raises the step's own exception (a UserError keeps exit code 2)
        outcome.error = state.message or state.name or "failed"
        get_run_logger().error("playbook %s failed: %s", outcome.path, outcome.error)

    @contextmanager
    def running(self, playbook: Playbook) -> Iterator[Outcome]:
        """Around one playbook's steps: an exception fails this playbook only (with `one`,
        it is raised); a summary whose actions failed marks the outcome."""
        outcome = self.outcome(playbook)
        try:
            yield outcome
        except Exception as exc:
            if self.one:
                raise
            outcome.error = f"{type(exc).__name__}: {exc}"
            get_run_logger().error("playbook %s failed: %s", outcome.path, outcome.error)
            return
        actions = (outcome.summary or {}).get("actions") or {}
        outcome.actions_failed = bool(actions.get("failed") or actions.get("dead"))


def playbook_paths(value: str | list[str]) -> list[str]:
    """The flow's `playbook_path`: one path, or a list of them."""
    return [value] if isinstance(value, str) else [str(p) for p in value]


def read_playbooks(paths: list[str], one: bool) -> PlaybookRuns:
    """Read and validate each playbook; an unreadable one, or a second playbook of the
    same name (their histories would mix), fails alone."""
    runs = PlaybookRuns(one)
    names: dict[str, str] = {}
    for path in paths:
        outcome = Outcome(path)
        runs.outcomes.append(outcome)
        state = read_playbook(path, return_state=True)
        if not state.is_completed():
            runs.failed(outcome, state)
            continue
        playbook: Playbook = state.result()
        if playbook.name in names:
            outcome.error = (
                f"{path}: the playbook name {playbook.name!r} is also {names[playbook.name]}'s; "
                "each playbook keeps its own history by name: rename one"
            )
            continue
        names[playbook.name] = path
        outcome.playbook = playbook
    return runs


def check_before_pull(
    runs: PlaybookRuns,
    source: str,
    db_url: str | None,
    as_of: datetime,
    *,
    dry_run: bool,
    backfill: bool,
) -> None:
    """For each ready playbook, before the pull (it would be wasted): its as-of against
    the history (`tasks.store.check_as_of`, not on a dry run) and its setup
    (`tasks.preflight.check_setup`, not on a dry run or a backfill)."""
    for playbook in runs.ready:
        if not dry_run:
            state = check_as_of(db_url, playbook.name, as_of, backfill, return_state=True)
            if not state.is_completed():
                runs.failed(runs.outcome(playbook), state)
                continue
        if not (dry_run or backfill):
            state = check_setup(playbook, source, return_state=True)
            if not state.is_completed():
                runs.failed(runs.outcome(playbook), state)


def pull_for(
    runs: PlaybookRuns,
    source: str,
    db_url: str | None,
    dry_run: bool,
    full: bool,
    full_pull_every_days: float,
) -> dict[str, PulledCrm]:
    """One pull per scored object for the ready playbooks: playbook name -> its pull."""
    pulls: dict[str, PulledCrm] = {}
    for group in pull_by_object(runs.ready):
        state = pull_crm(
            group[0],
            source,
            db_url,
            use_cache=not dry_run,
            full=full,
            full_pull_every_days=full_pull_every_days,
            also=group[1:],
            return_state=True,
        )
        if not state.is_completed():
            for playbook in group:
                runs.failed(runs.outcome(playbook), state)
            continue
        pulled: PulledCrm = state.result()
        pulls.update(dict.fromkeys((p.name for p in group), pulled))
    return pulls


def finish_many(runs: PlaybookRuns) -> Any:
    """The flow's result: one summary (`one`), else a list with a `{"playbook", "error"}`
    entry for each failed playbook; a Failed state when one failed, Completed named
    `ActionsFailed` when actions failed, the plain result otherwise."""
    results = [
        o.summary if o.summary is not None else {"playbook": o.path, "error": o.error}
        for o in runs.outcomes
    ]
    failed = [o for o in runs.outcomes if o.error is not None]
    data: Any = results[0] if runs.one else results
    if failed:
        lines = "; ".join(f"{o.path}: {o.error}" for o in failed)
        return Failed(
            message=f"{len(failed)} of {len(results)} playbooks failed: {lines}", data=data
        )
    if any(o.actions_failed for o in runs.outcomes):
        problems = []
        for o in runs.outcomes:
            if o.actions_failed and o.summary:
                counts = ActionCounts.from_json(o.summary.get("actions") or {}).describe()
                where = "" if runs.one else f"{o.summary['playbook']}: "
                problems.append(f"{where}actions: {counts}")
        return Completed(name=ACTIONS_FAILED_STATE, message="; ".join(problems), data=data)
    return data
