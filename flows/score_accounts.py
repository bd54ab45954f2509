"""The scheduled flow: pull -> score -> compare -> store -> write back -> act -> report.

Each step is a thin task around an engine call (`tasks/`); the flow only says
in which order they run and what happens on failure. Comparing comes before
storing because the stored snapshot carries its trend and delta, and the whole
run is written in one transaction; a dry run takes the very same path and
simply skips the store and the write-back.

Large values (the snapshot, the scores) are passed with `quote()` (`big()`), so Prefect
does not walk every record looking for futures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger
from prefect.states import Completed, State
from prefect.utilities.annotations import quote

from healthscore.actions.plan import ActionPlan
from healthscore.core.values import parse_as_of
from healthscore.history import RUN_FAILED, RUN_SUCCEEDED, RunInfo
from healthscore.integrations.hubspot.writeback import WritebackError, WritebackResult
from healthscore.reports.run_summary import summarize
from healthscore.sources.cached import FULL_PULL_EVERY_DAYS, is_api_source
from tasks.actions import plan_due_actions, run_actions
from tasks.crm import pull_crm
from tasks.flow_runs import claim_and_mark_crashed
from tasks.preflight import check_setup
from tasks.report import publish_dashboard, publish_report
from tasks.scoring import compare_with_history, read_playbook
from tasks.scoring import score_accounts as score
from tasks.store import check_as_of, finish_run, store_run
from tasks.writeback import write_back_scores

T = TypeVar("T")
FLOW_NAME = "score-accounts"
ACTIONS_FAILED_STATE = "ActionsFailed"
"""The flow run's final state name (type Completed) when actions failed or died: the scores
are stored, but someone should look. Alert on it with a Prefect automation."""


def big(value: T) -> T:
    """`quote()` with the value's own type: Prefect passes it through without walking it."""
    return cast(T, quote(value))


@flow(name=FLOW_NAME, log_prints=False)
def score_accounts(
    playbook_path: str,
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

    playbook_path: the playbook YAML. source: `sandbox`, `hubspot`, `file:PATH.json`
    or `csv:PATH`. as_of: ISO 8601 instant (default now, UTC). dry_run: score,
    compare and report, but store nothing and write nothing to HubSpot. db_url:
    the history database (default `HEALTHSCORE_DB_URL` or SQLite in the data folder).
    dashboard: where the HTML dashboard goes, a folder or a `.html` file (default
    `HEALTHSCORE_DASHBOARD_DIR`, else next to the SQLite file); not written on a dry run.
    full: pull every record instead of the changes since the cached pull (`run --full`).
    full_pull_every_days: the safety net of incremental pulls, which give exactly the
    scores of a full pull: a full pull anyway once the last one is this many days old.
    enroll_existing: send actions on the playbook's first run too (by default it is a
    baseline that holds them, `healthscore.actions.plan.is_baseline`).

    backfill: store scores for a past as-of, with no action and no write-back; an as-of
    before the newest stored run is refused without it (`AsOfInThePast`).
    db_url holds no password (Prefect records parameters): a URL with a user and no
    password takes it from `HEALTHSCORE_DB_PASSWORD` inside the flow.

    Returns the summary (JSON); the final state is Completed, named `ActionsFailed`
    when actions failed or were given up on.
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    moment = parse_as_of(as_of)
    try:  # a flow run killed earlier is Crashed in Prefect, as in the history
        for crashed in claim_and_mark_crashed(FLOW_NAME):
            logger.warning("flow run %s: its process is gone; set Crashed", crashed)
    except Exception as exc:  # bookkeeping of earlier runs never stops this one
        logger.warning("could not check for crashed flow runs: %s", exc)

    playbook = read_playbook(playbook_path)
    if not dry_run:
        check_as_of(db_url, playbook.name, moment, backfill)
    if not (dry_run or backfill):
        check_setup(playbook, source)  # every setup problem, before anything is written
    pulled = pull_crm(
        playbook,
        source,
        db_url,
        use_cache=not dry_run,
        full=full,
        full_pull_every_days=full_pull_every_days,
    )
    scores = score(playbook, big(pulled.snapshot), moment)
    comparisons = compare_with_history(playbook, big(scores), moment, db_url, dry_run)
    if backfill:
        plan = ActionPlan(playbook.name)  # a backfill records history only
    else:
        plan = plan_due_actions(
            playbook,
            big(comparisons),
            big(pulled.snapshot),
            moment,
            db_url,
            source,
            dry_run,
            enroll_existing,
        )

    run_id: int | None = None
    if not dry_run:
        owners = {o.id: o.display_name for o in pulled.snapshot.owners}
        run = RunInfo(playbook.name, playbook.content_hash, moment, source, started, owners=owners)
        run_id = store_run(db_url, run, big(comparisons), big(pulled.cache), big(plan.due))

    try:
        summary = summarize(
            playbook,
            comparisons,
            as_of=moment.isoformat(),
            source=source,
            dry_run=dry_run,
            run_id=run_id,
        )
        summary.pull_incremental, summary.pull_calls = pulled.incremental, pulled.calls
        summary.pull_reason = pulled.reason
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
                    playbook, source, big(comparisons), big(pulled.snapshot), db_url, run_id
                )
            except WritebackError as exc:  # e.g. a missing scope: the actions still run
                written = WritebackResult(problems=[str(exc)])
            summary.written_records, summary.written_values = written.records, written.values
            summary.writeback_calls, summary.writeback_refused = written.calls, written.refused
            summary.failures += [f"write-back: {line}" for line in written.problems]

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
            publish_dashboard(playbook, db_url, dashboard)
    except BaseException as exc:
        if run_id is not None:
            finish_run(db_url, run_id, RUN_FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    if run_id is not None:
        finish_run(db_url, run_id, RUN_SUCCEEDED)
    logger.info("run %s done: %s", run_id if run_id is not None else "(dry)", summary.counts)
    result = summary.to_json()
    if summary.actions.problems:
        state: State[Any] = Completed(
            name=ACTIONS_FAILED_STATE,
            message=f"actions: {summary.actions.describe()}",
            data=result,
        )
        return state
    return result
