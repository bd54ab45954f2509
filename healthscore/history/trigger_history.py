"""History questions of the action triggers: set queries, strictly before the run's as-of.

Strictly before, not "at or before" as the trends use: a re-run of the same
as-of must see the same past as the first run did, so it finds the same
firings with the same occurrence keys (see `healthscore.core.triggers`).
One query per question, reduced to one row per account in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from healthscore.core.triggers import Extreme, PriorRun, TriggerHistory, window_start
from healthscore.history.models import SQLModel

SNAPSHOTS = SQLModel.metadata.tables["account_snapshots"]


def _naive(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _ranked(playbook: str, order: Iterable[Any], since: datetime | None, before: datetime) -> Any:
    where = [SNAPSHOTS.c.playbook == playbook, SNAPSHOTS.c.as_of < _naive(before)]
    if since is not None:
        where.append(SNAPSHOTS.c.as_of >= _naive(since))
    return (
        sa.select(
            SNAPSHOTS.c.account_id,
            SNAPSHOTS.c.score,
            SNAPSHOTS.c.status,
            SNAPSHOTS.c.as_of,
            SNAPSHOTS.c.groups,
            sa.func.row_number()
            .over(partition_by=SNAPSHOTS.c.account_id, order_by=tuple(order))
            .label("rn"),
        )
        .where(*where)
        .subquery("ranked")
    )


def _first_rows(engine: Engine, ranked: Any) -> Iterable[Any]:
    query = sa.select(ranked).where(ranked.c.rn == 1)
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=5_000).execute(query)
        yield from result


def prior_runs(engine: Engine, playbook: str, before: datetime) -> dict[str, PriorRun]:
    """Each account's newest stored score with an as-of strictly before `before`."""
    order = (SNAPSHOTS.c.as_of.desc(), SNAPSHOTS.c.run_id.desc())
    return {
        row.account_id: PriorRun(_aware(row.as_of), row.score, row.status, dict(row.groups or {}))
        for row in _first_rows(engine, _ranked(playbook, order, None, before))
    }


def window_extremes(
    engine: Engine,
    playbook: str,
    before: datetime,
    days: float,
    *,
    highest: bool,
    timezone: str = "UTC",
) -> dict[str, Extreme]:
    """Each account's highest (or lowest) score in [window start, before), newest on ties.

    The start counts calendar days in the playbook's `timezone` (`window_start`).
    """
    score = SNAPSHOTS.c.score.desc() if highest else SNAPSHOTS.c.score.asc()
    order = (score, SNAPSHOTS.c.as_of.desc(), SNAPSHOTS.c.run_id.desc())
    since = window_start(_aware(before), days, timezone)
    return {
        row.account_id: Extreme(row.score, _aware(row.as_of))
        for row in _first_rows(engine, _ranked(playbook, order, since, before))
    }


def trigger_history(
    engine: Engine,
    playbook: str,
    as_of: datetime,
    drop_days: Iterable[float],
    rise_days: Iterable[float],
    timezone: str = "UTC",
) -> TriggerHistory:
    """Everything the triggers of a playbook need: 1 + one query per window and direction."""
    return TriggerHistory(
        prior=prior_runs(engine, playbook, as_of),
        highs={
            d: window_extremes(engine, playbook, as_of, d, highest=True, timezone=timezone)
            for d in drop_days
        },
        lows={
            d: window_extremes(engine, playbook, as_of, d, highest=False, timezone=timezone)
            for d in rise_days
        },
    )
