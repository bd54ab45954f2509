"""Which process holds a claim, and whether it still exists: leases and crashed runs.

A claim (a ledger row `attempting`, a run `running`) names its process as
`host` + `pid`. On the same host a claim whose process is gone is void at once
(a `kill -9` leaves no other trace); on another host only time tells, so
claims there also carry an expiry (`lease_until`, or a run's age).
"""

from __future__ import annotations

import os
import socket


def host_name() -> str:
    return socket.gethostname()[:150]


def this_process() -> str:
    """`host:pid` of this process, what `claimed_by` holds."""
    return f"{host_name()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (signal 0 probes, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def gone(host: str | None, pid: int | None) -> bool:
    """True only when the process is known to be gone: same host and no such pid."""
    if host is None or pid is None or host != host_name():
        return False
    return pid != os.getpid() and not pid_alive(pid)


def claim_gone(claimed_by: str | None) -> bool:
    """`gone()` for a `host:pid` claim string; an unparsable claim counts as not gone."""
    if not claimed_by or ":" not in claimed_by:
        return False
    host, _, pid = claimed_by.rpartition(":")
    return pid.isdigit() and gone(host, int(pid))
