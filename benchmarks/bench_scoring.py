"""Scoring cost, old row engine vs columnar engine, side by side, on one core.

    .venv/bin/python benchmarks/bench_scoring.py [--sizes 10000 50000 100000]

For each size a deterministic CRM (seed 7, the default playbook's sample data:
about 20 related records per company, so 2M at 100k) is generated in a fresh
process per engine (POLARS_MAX_THREADS=1), so each peak RSS is that engine's
alone. Printed per engine and size: seconds to build (old: the CrmSnapshot
objects from the JSON; new: the same plus the columns), seconds of the first
scoring pass (the new engine parses each column it reads here, once) and of a
second pass (wall and CPU seconds: on a shared machine the CPU figure is the
one to read), and the process's peak RSS (getrusage) next to its RSS once the
generated JSON alone was held, so the engine's own share is visible. Asserts
nothing about time: the machine may be shared; the load average is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "playbooks" / "default.yaml"


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(engine: str, accounts: int) -> dict[str, float]:
    """One engine at one size, in this process; returns the figures."""
    sys.path.insert(0, str(ROOT / "tests"))
    from oracle_scoring import RowScorer

    from healthscore.actions import load_playbook
    from healthscore.core.crm import CrmSnapshot
    from healthscore.core.frame import CrmFrame
    from healthscore.core.scoring import Scorer
    from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot

    playbook = load_playbook(PLAYBOOK)
    data = generate_snapshot(accounts, seed=7)
    records = sum(len(v) for k, v in data.items() if k not in ("owners", "companies"))
    gc.collect()
    generated_rss = _rss_mib()
    started = time.perf_counter()
    snapshot = CrmSnapshot.from_json(data)
    del data
    if engine == "new":
        frame = CrmFrame.from_snapshot(snapshot)
    build = time.perf_counter() - started
    passes = []
    cpu = []
    scored = 0
    for _ in range(2):
        started = time.perf_counter()
        cpu_started = time.process_time()
        if engine == "new":
            scored = len(Scorer(playbook).score_frame(frame, DEFAULT_AS_OF))
        else:
            scored = len(RowScorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF))
        passes.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "records": records,
        "scored": scored,
        "build_s": build,
        "first_s": passes[0],
        "second_s": passes[1],
        "first_cpu_s": cpu[0],
        "second_cpu_s": cpu[1],
        "generated_rss_mib": generated_rss,
        "peak_rss_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "ACCOUNTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONPATH": str(ROOT)}
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = (
        f"{'accounts':>9} {'related':>9} {'engine':>6} {'build s':>8} {'score s':>8} "
        f"{'again s':>8} {'cpu s':>6} {'again':>6} {'acc/cpu-s':>10} {'peak MiB':>9} "
        f"{'json MiB':>9}"
    )
    print(header)
    for accounts in args.sizes:
        for engine in ("old", "new"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", engine, str(accounts)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            m = json.loads(out.strip().splitlines()[-1])
            print(
                f"{accounts:>9,} {m['records']:>9,} {engine:>6} {m['build_s']:>8.2f} "
                f"{m['first_s']:>8.2f} {m['second_s']:>8.2f} {m['first_cpu_s']:>6.2f} "
                f"{m['second_cpu_s']:>6.2f} {m['scored'] / m['second_cpu_s']:>10,.0f} "
                f"{m['peak_rss_mib']:>9,.0f} "
                f"{m['generated_rss_mib']:>9,.0f}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
