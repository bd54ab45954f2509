"""Run the score-accounts flow, and SIGKILL this very process after the Nth delivery.

The crash test (test_actions_flow.py) needs a real process to die at the worst
moment: after a vendor accepted an action and before its ledger row is marked
sent. `Dispatcher(after_send=...)` is that moment; production code has no hook
for it, so this driver builds the flow's dispatchers with a callback that kills
the process (the flow, its tasks and the vendors are the real ones).

    python tests/kill_after_sends.py PLAYBOOK DB_URL AS_OF N
"""

from __future__ import annotations

import functools
import os
import signal
import sys

import tasks.actions
from flows.score_accounts import score_accounts
from healthscore.actions.dispatch import Dispatcher
from healthscore.history.ledger import LedgerEntry


def main(playbook: str, db_url: str, as_of: str, kill_after: int) -> None:
    delivered: list[str] = []

    def die_after_n(entry: LedgerEntry) -> None:
        delivered.append(entry.key)
        if len(delivered) >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    tasks.actions.Dispatcher = functools.partial(Dispatcher, after_send=die_after_n)  # type: ignore[misc]
    score_accounts(playbook_path=playbook, source="sandbox", as_of=as_of, db_url=db_url)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
