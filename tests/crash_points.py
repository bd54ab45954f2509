"""Run the `healthscore` CLI with a crash point armed: the crash tests' entry script.

The crash tests need a real process to die at the worst moments. Production code
offers two public seams for it, empty unless a caller registers a callback
(nothing is patched and no environment variable is read):

- `tasks.actions.AFTER_SEND_HOOKS`: after a vendor accepted an action, before its
  ledger row is marked sent;
- `healthscore.history.store.MID_WRITE_HOOKS`: inside the run's open store
  transaction, after the first snapshots are inserted.

    python tests/crash_points.py kill-after-sends N -- run --playbook P ...
    python tests/crash_points.py pause-in-store MARKER -- run --playbook P ...

`kill-after-sends N` SIGKILLs this process after the Nth delivery;
`pause-in-store MARKER` writes its pid to the file MARKER and then sleeps inside
the transaction, for the test to kill it there.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from healthscore.cli import app
from healthscore.history.ledger import LedgerEntry
from healthscore.history.store import MID_WRITE_HOOKS
from tasks.actions import AFTER_SEND_HOOKS


def kill_after_sends(count: int) -> None:
    delivered: list[str] = []

    def die_after_n(entry: LedgerEntry) -> None:
        delivered.append(entry.key)
        if len(delivered) >= count:
            os.kill(os.getpid(), signal.SIGKILL)

    AFTER_SEND_HOOKS.append(die_after_n)


def pause_in_store(marker: str) -> None:
    def pause(_run_id: int) -> None:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)

    MID_WRITE_HOOKS.append(pause)


def main(argv: list[str]) -> None:
    point, value, separator, *cli = argv
    if separator != "--":
        raise SystemExit(__doc__)
    if point == "kill-after-sends":
        kill_after_sends(int(value))
    elif point == "pause-in-store":
        pause_in_store(value)
    else:
        raise SystemExit(__doc__)
    app(cli, prog_name="healthscore")


if __name__ == "__main__":
    main(sys.argv[1:])
