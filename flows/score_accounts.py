"""The scheduled flow: pull -> score -> compare -> store -> write back -> act -> report.

`score_accounts` pulls once for all its playbooks (`run -p a.yaml -p b.yaml`: the
union of what they read, one pull per scored object), then runs `score_playbook`
for each, a subflow with its own history, ledger, write-back and report: one
playbook's failure does not stop the others (`tasks.playbooks`).

Each step is a thin task around an engine call (`tasks/`); the flows only say
in which order they run and what happens on failure. Comparing comes before
storing because the stored snapshot carries its trend and delta, and the whole
run is written in one transaction; a dry run takes the very same path and
simply skips the store and the write-back.

Large values (the snapshot, the scores) are passed with `quote()` (`big()`), so Prefect
does not walk every record looking for futures.
"""

from __future__ import annotations

import ctypes
import gc
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from healthscore.actions.plan import ActionPlan
from healthscore.core.playbook import Playbook
from healthscore.core.values import parse_as_of
from healthscore.history import RUN_FAILED, RUN_SUCCEEDED, RunInfo
from healthscore.integrations.hubspot.writeback import WritebackError, WritebackResult
from healthscore.reports.run_summary import summarize
from healthscore.sources.cached import FULL_PULL_EVERY_DAYS, PulledCrm, is_api_source
from tasks.actions import plan_due_actions, run_actions
from tasks.enrich import enrich_accounts
from tasks.flow_runs import claim_and_mark_crashed
from tasks.playbooks import (
    ACTIONS_FAILED_STATE,
    check_before_pull,
    finish_many,
    playbook_paths,
    pull_for,
    read_playbooks,
)
from tasks.report import publish_dashboard, publish_report
from tasks.scoring import compare_with_history
from tasks.scoring import score_accounts as score
from tasks.store import finish_run, store_run
from tasks.writeback import write_back_scores

T = TypeVar("T")
FLOW_NAME = "score-accounts"
__all__ = ["ACTIONS_FAILED_STATE", "FLOW_NAME", "score_accounts", "score_playbook"]


def release_memory() -> None:
    """Collect, then hand the freed heap back to the operating system between steps.

    glibc keeps what a step freed (a pull's pages, a write-back's batches) mapped in
    its arenas, one per thread that allocated, so the next step's peak stacks on the
    last one's; `malloc_trim(0)` returns it. Elsewhere (macOS, musl) only collects.
    """
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def big(value: T) -> T:
    """`quote()` with the value's own type: Prefect passes it through without walking it."""
    return cast(T, quote(value))


@flow(name=FLOW_NAME, log_prints=False)
def score_accounts(
    playbook_path: str | list[str],
    source: str = "sandbox",
    as_of: str | None = None,
    dry_run: bool = False,
    db_url: str | None = None,
    dashboard: str | None = None,
    full: bool = False,
    full_pull_every_days: float = FULL_PULL_EVERY_DAYS,
    backfill: bool = False,
    enroll_existing: bool = False,
) -> Any:
    """Score every account of a playbook, keep the history, write back, act, report.

    playbook_path: the playbook YAML, or a list of them: one pull of the union of what
    they need, then each playbook scored, stored, written back and acted on by its own
    `score_playbook`; a failure of one does not stop the others. source: `sandbox`,
    `hubspot`, `file:PATH.json` or `csv:PATH`. as_of: ISO 8601 instant (default now,
    UTC). dry_run: score, compare and report, but store nothing and write nothing to
    HubSpot. db_url: the history database (default `HEALTHSCORE_DB_URL` or SQLite in
    the data folder).
    dashboard: where the HTML dashboard goes, a folder or a `.html` file (default
    `HEALTHSCORE_DASHBOARD_DIR`, else next to the SQLite file); not written on a dry run.
    With several playbooks a `.html` file becomes one per playbook (`board-<name>.html`).
    full: pull every record instead of the changes since the cached pull (`run --full`).
    full_pull_every_days: the safety net of incremental pulls, which give exactly the
    scores of a full pull: a full pull anyway once the last one is this many days old.
    enroll_existing: send actions on the playbook's first run too (by default it is a
    baseline that holds them, `healthscore.actions.plan.is_baseline`).

    backfill: store scores for a past as-of, with no action and no write-back; an as-of
    before the newest stored run is refused without it (`AsOfInThePast`).
    db_url holds no password (Prefect records parameters): a URL with a user and no
    password takes it from `HEALTHSCORE_DB_PASSWORD` inside the flow.

    Returns the summary (JSON), a list of them for a list of playbooks; the final state
    is Completed, named `ActionsFailed` when actions failed or were given up on, and
    Failed when a playbook of a list failed (after the others ran).
    """
    moment = parse_as_of(as_of)
    logger = get_run_logger()
    try:  # a flow run killed earlier is Crashed in Prefect, as in the history
        for crashed in claim_and_mark_crashed(FLOW_NAME):
            logger.warning("flow run %s: its process is gone; set Crashed", crashed)
    except Exception as exc:  # bookkeeping of earlier runs never stops this one
        logger.warning("could not check for crashed flow runs: %s", exc)
    paths = playbook_paths(playbook_path)
    playbooks = read_playbooks(paths, one=isinstance(playbook_path, str))
    check_before_pull(playbooks, source, db_url, moment, dry_run=dry_run, backfill=backfill)
    pulls = pull_for(playbooks, source, db_url, dry_run, full, full_pull_every_days)
    release_memory()
    for playbook in playbooks.ready:
        with playbooks.running(playbook) as outcome:
            pulled = pulls.pop(playbook.name)
            outcome.summary = score_playbook(
                playbook,
                pulled,
                last=all(other is not pulled for other in pulls.values()),
                source=source,
                as_of=moment,
                dry_run=dry_run,
                db_url=db_url,
                dashboard=dashboard,
                backfill=backfill,
                enroll_existing=enroll_existing,
                shared=len(playbooks.outcomes) > 1,
            )
    return finish_many(playbooks)


def score_playbook(
    playbook: Playbook,
    pulled: PulledCrm,
    *,
    last: bool = True,
    source: str,
    as_of: datetime,
    dry_run: bool,
    db_url: str | None,
    dashboard: str | None,
    backfill: bool,
    enroll_existing: bool,
    shared: bool = False,
) -> Any:
    """One playbook from a pulled snapshot: enrich, score, compare, store, write back, act,
    report; its tasks run in the calling flow run. The parameters are `score_accounts`'s;
    returns the summary (JSON). A plain function, not a subflow: a subflow's parameters
    (the whole snapshot) would be serialized to the Prefect API. `last`: no other
    playbook scores from `pulled`, so it is released once written back. `shared`: the
    run scores several playbooks (each its own dashboard file, `dashboard_path`)."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    enriched = enrich_accounts(playbook, big(pulled.snapshot))
    snapshot = enriched.snapshot
    scores = score(playbook, big(snapshot), as_of)
    comparisons = compare_with_history(playbook, big(scores), as_of, db_url, dry_run)
    del scores  # the comparisons hold them
    if backfill:
        plan = ActionPlan(playbook.name)  # a backfill records history only
    else:
        plan = plan_due_actions(
            playbook,
            big(comparisons),
            big(snapshot),
            as_of,
            db_url,
            source,
            dry_run,
            enroll_existing,
        )

    run_id: int | None = None
    if not dry_run:
        owners = {o.id: o.display_name for o in snapshot.owners}
        run = RunInfo(playbook.name, playbook.content_hash, as_of, source, started, owners=owners)
        run_id = store_run(db_url, run, big(comparisons), big(pulled.cache), big(plan.due))
        release_memory()

    try:
        summary = summarize(
            playbook,
            comparisons,
            as_of=as_of.isoformat(),
            source=source,
            dry_run=dry_run,
            run_id=run_id,
            enrichment=enriched.counts,
        )
        summary.pull_shared_with = [name for name in pulled.shared_by if name != playbook.name]
        summary.pull_incremental, summary.pull_calls = pulled.incremental, pulled.calls
        summary.pull_reason = pulled.reason
        summary.pull_associations = pulled.associations
        if dry_run:
            summary.writeback_skipped = "dry run"
        elif backfill:
            summary.writeback_skipped = "backfill of a past as-of"
        elif not playbook.writeback:
            summary.writeback_skipped = "writeback: false in the playbook"
        elif not is_api_source(source):
            summary.writeback_skipped = f"{source} is a file, not a CRM"
        else:
            try:
                written = write_back_scores(
                    playbook, source, big(comparisons), big(snapshot), db_url, run_id, big(pulled)
                )
            except WritebackError as exc:  # e.g. a missing scope: the actions still run
                written = WritebackResult(problems=[str(exc)])
            summary.written_records, summary.written_values = written.records, written.values
            summary.writeback_calls, summary.writeback_refused = written.calls, written.refused
            summary.failures += [f"write-back: {line}" for line in written.problems]
        del snapshot, enriched  # what is left reads the comparisons, the plan and the store
        if last:
            pulled.release()
        release_memory()

        if not backfill:
            summary.actions, errors = run_actions(playbook, big(plan), source, db_url, dry_run)
            summary.failures += errors
        for label, held in (
            ("held", sum(plan.held.values())),
            ("unconfigured", sum(plan.skipped.values())),
        ):
            if held:
                summary.actions.extra[label] = held
        summary.action_notes = plan.notes()
        publish_report(playbook, summary, big(comparisons))
        if run_id is not None:
            summary.dashboard = publish_dashboard(playbook, db_url, dashboard, shared) or ""
    except BaseException as exc:
        if run_id is not None:
            finish_run(db_url, run_id, RUN_FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    if run_id is not None:
        finish_run(db_url, run_id, RUN_SUCCEEDED)
    logger.info("run %s done: %s", run_id if run_id is not None else "(dry)", summary.counts)
    return summary.to_json()
