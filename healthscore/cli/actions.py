"""`healthscore actions`: the action ledger, for "did the CSM get the alert, and when?".

Registered on the typer app of `healthscore.cli` by importing this module. Reads
the history database only; it never imports Prefect or the vendor clients.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from healthscore.cli._util import (
    Column,
    DbOption,
    app,
    err,
    fail,
    out,
    playbook_name,
    print_rows,
    run_errors,
    safe_url,
)


class StateChoice(StrEnum):
    pending = "pending"
    attempting = "attempting"
    sent = "sent"
    failed = "failed"
    dead = "dead"


@app.command()
def actions(
    db: DbOption = None,
    playbook: Annotated[
        str | None,
        typer.Option("--playbook", "-p", help="Playbook name (or its YAML file)."),
    ] = None,
    state: Annotated[
        StateChoice | None, typer.Option("--state", help="Only rows in this state.")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's CRM id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """The action ledger, newest first: what fired, for whom, why, and whether it was sent."""
    from healthscore.history import default_db_url, open_store, store_exists
    from healthscore.history.ledger import ActionLedger

    url = db or default_db_url()
    if not store_exists(url):
        fail(f"no history database at {safe_url(url)}; `healthscore run` creates it")
    name = playbook_name(playbook)
    with run_errors(), open_store(url) as store:
        ledger = ActionLedger(store.engine)
        wanted = state.value if state else None
        rows = ledger.entries(name, wanted, account, limit)
        total = ledger.count(name, wanted, account) if len(rows) == limit else len(rows)
    if as_json:
        data = [
            {
                "id": r.id,
                "playbook": r.playbook,
                "action": r.action,
                "kind": r.kind,
                "account_id": r.account_id,
                "occurrence": r.occurrence,
                "as_of": r.as_of.isoformat(),
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
                "reason": r.reason,
                "target": r.target,
                "external_id": r.external_id,
                "last_error": r.last_error,
                "created_at": r.created_at.isoformat(),
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    if not rows:
        out.print(
            "no actions recorded" + (" matching the filters" if (name or state or account) else ""),
            markup=False,
        )
        return
    columns = [Column(c) for c in ("as of", "action", "account", "state")]
    columns += [Column("tries", right=True), Column("target"), Column("sent as / error")]
    print_rows(
        f"action ledger ({safe_url(url)})",
        columns,
        (
            [
                r.as_of.strftime("%Y-%m-%d"),
                f"{r.action} ({r.kind})",
                r.account_id,
                r.state,
                str(r.attempts),
                r.target,
                (r.external_id or "" if r.state == "sent" else (r.last_error or ""))[:80],
            ]
            for r in rows
        ),
    )
    if total > len(rows):
        note = f"showing {len(rows)} of {total} (--limit)"
        (out if out.is_terminal else err).print(note, markup=False)  # TSV on stdout stays clean
