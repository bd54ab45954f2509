"""Flow runs whose process died: set them Crashed in Prefect, as the history marks its runs.

A `healthscore run` killed mid-way (kill -9, an OOM kill, a power cut) cannot
report its end: its Prefect flow run stays `Running` forever, while the
history store marks its run `crashed` on the next run
(`healthscore.history.store.mark_crashed`). So each flow run writes its process
on itself at start, as `infrastructure_pid` = `host:pid` (the form Prefect's
process worker uses), and sets every other `Running` flow run of the same flow
whose process is known to be gone to `Crashed`, with the same rule as the
history: on this host, a pid that no longer exists; anywhere, started more than
`STALE_RUN` ago. A live concurrent run is left alone. Prefect's API for it:
`set_flow_run_state(id, Crashed(...), force=True)` (a client may force any
transition; Prefect's process worker reports a crash of its own runs the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.runtime import flow_run
from prefect.states import Crashed

from healthscore.history.process import claim_gone, this_process
from healthscore.history.store import STALE_RUN

CRASHED_MESSAGE = (
    "the process running it ({pid}) stopped (killed or crashed) before it finished; "
    "marked by flow run {by}"
)
RUNNING_LIMIT = 200


def crashed(run: FlowRun, now: datetime) -> bool:
    """Whether a `Running` flow run's process is known to be gone (see the module)."""
    if claim_gone(run.infrastructure_pid):
        return True
    started = run.start_time
    return started is not None and started < now - STALE_RUN


def claim_and_mark_crashed(flow_name: str) -> list[UUID]:
    """Write this process on the current flow run; set the flow's dead `Running` runs Crashed.

    Returns the ids set Crashed. Outside a flow run it only marks. Errors from
    the Prefect API propagate: the caller logs them and carries on.
    """
    me = flow_run.get_id()
    now = datetime.now(UTC)
    marked: list[UUID] = []
    with get_client(sync_client=True) as client:
        if me is not None:
            current = client.read_flow_run(UUID(me))
            if not current.infrastructure_pid:  # a worker already wrote its own
                client.update_flow_run(UUID(me), infrastructure_pid=this_process())
        running = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            ),
            limit=RUNNING_LIMIT,
        )
        for run in running:
            if str(run.id) == me or not crashed(run, now):
                continue
            message = CRASHED_MESSAGE.format(pid=run.infrastructure_pid or "unknown", by=me)
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            marked.append(run.id)
    return marked
