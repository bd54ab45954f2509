"""Run the score-accounts flow, and SIGKILL this very process after the Nth delivery.

The crash test (test_actions_flow.py) needs a real process to die at the worst
moment: after a vendor accepted an action and before its ledger row is marked
sent. The flow's `after_send` callback is that moment; production code has no
hook for it.

    python tests/kill_after_sends.py PLAYBOOK DB_URL AS_OF N
"""

from __future__ import annotations

import os
import signal
import sys

from flows.score_accounts import score_accounts
from healthscore.history.ledger import LedgerEntry


def main(playbook: str, db_url: str, as_of: str, kill_after: int) -> None:
    delivered: list[str] = []

    def die_after_n(entry: LedgerEntry) -> None:
        delivered.append(entry.key)
        if len(delivered) >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    score_accounts(
        playbook_path=playbook,
        source="sandbox",
        as_of=as_of,
        db_url=db_url,
        after_send=die_after_n,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
