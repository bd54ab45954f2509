"""`healthscore run` wall time with Prefect's temporary server (before) and the kept one (after).

    .venv/bin/python benchmarks/bench_prefect_server.py [--before main] [--accounts 600] [--runs 3]

Side by side in one script run: a git worktree of `--before` (a commit whose
`run` starts Prefect's temporary server in every process) and this checkout
(the first `run` starts a local server under the data folder, later runs reuse
it; `flows/local_server.py`). Each variant gets its own sandbox seeded with the
same CRM (`--accounts` companies, seed 7), its own empty data folder and history
database, no PREFECT_API_URL, and `--runs` consecutive weekly runs of
`healthscore run -p default -s sandbox`, each a fresh process timed from start
to exit. Prints the wall times; asserts nothing about time. The local server
this checkout started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-02T09:00:00+00:00"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:g} s")


def _variant(code: Path, crm: Path, work: Path, runs: int) -> list[float]:
    """Wall seconds of each `run` of the checkout at `code`, against its own sandbox."""
    from datetime import datetime

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HEALTHSCORE_"))}
    env |= {
        "PYTHONPATH": str(code),
        "XDG_DATA_HOME": str(work / "data"),
        "HEALTHSCORE_SANDBOX_URL": base,
        "PREFECT_HOME": str(work / "prefect"),  # both variants' Prefect database
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "healthscore"]
    sandbox = subprocess.Popen(
        [*cli, "sandbox", "--seed", str(crm), "--port", str(port)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: list[float] = []
    try:
        _wait_for(f"{base}/_sandbox/stats")
        start = datetime.fromisoformat(AS_OF)
        for week in range(runs):
            as_of = (start + timedelta(days=7 * week)).isoformat()
            began = time.monotonic()
            done = subprocess.run(
                [*cli, "run", "-p", "default", "-s", "sandbox", "--as-of", as_of],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
            )
            times.append(time.monotonic() - began)
            if done.returncode not in (0, 1):
                raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.wait(timeout=60)
        pid_file = work / "prefect" / "server.pid"
        if pid_file.is_file():  # the local server this checkout keeps: stop it
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git commit of the 'before' runs")
    parser.add_argument("--accounts", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from healthscore.demo.sample import generate_snapshot

    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        root = Path(tmp)
        crm = root / "crm.json"
        crm.write_text(json.dumps(generate_snapshot(args.accounts, seed=7)), encoding="utf-8")
        before = root / "before-code"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
            check=True,
            capture_output=True,
        )
        try:
            results = {}
            for name, code in (("before", before), ("after", REPO)):
                work = root / name
                work.mkdir()
                results[name] = _variant(code, crm, work, args.runs)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)],
                check=False,
            )
    print(f"`healthscore run -s sandbox`, {args.accounts} companies, wall seconds per run:")
    for name, times in results.items():
        label = f"{name} ({args.before})" if name == "before" else f"{name} (this checkout)"
        cells = "  ".join(f"run {i + 1}: {t:6.1f}" for i, t in enumerate(times))
        print(f"  {label:<28} {cells}")


if __name__ == "__main__":
    main()
