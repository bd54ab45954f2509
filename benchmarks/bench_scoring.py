"""Memory and CPU of a run at scale, against issue 15's targets, on one core.

    .venv/bin/python benchmarks/bench_scoring.py [--sizes 10000 100000] [--whole] [--pull]

Every figure comes from a fresh process (POLARS_MAX_THREADS=1), so each peak RSS
(getrusage) is that process's alone. For each size a deterministic CRM (seed 7,
the default playbook's sample data: about 20 related records per company, so
2M at 100k) is written once with `healthscore sample` into `--data` (kept for
the next call), then:

- `file`: what a run does with `--source file:`: read the snapshot file into
  columns (`sources.load_snapshot`), score every account with the default
  playbook (`Scorer.score_snapshot`), read every account's group and rule points (as
  the store does) and pack the CRM cache (`pack_snapshot`);
- `whole` (with `--whole`): the same, keeping every object type and property of
  the file, read by the playbook or not (the previous figure's upper bound);
- `pull` (with `--pull`): the same with `--source sandbox`: a full pull from the
  HubSpot sandbox (its own process, seeded with the file, limits opened wide so
  the figure is ours, not the rate limiter's), scoring and the cache.

Printed side by side with the targets (peak RSS at most 1 GiB; scoring at most 2 s
on one core, read as CPU seconds because the machine may be shared): seconds to
read, wall and CPU seconds of the first scoring pass (each column is parsed there,
once), the cache's size, and peak RSS once read and for the whole process.
`--engines` adds the old row engine (tests/oracle_scoring.py) next to the columnar
one on data generated in process, as before. Asserts nothing about time; the load
average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "playbooks" / "default.yaml"
PEAK_TARGET_MIB = 1024
SCORE_TARGET_S = 2.0


def _peak_mib() -> float:
    """This process's peak RSS (`VmHWM`; `ru_maxrss` would carry the parent's over fork)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_run(mode: str, path: str) -> dict[str, Any]:
    """One run's read + score + cache in this process (mode `file` or `pull`)."""
    from healthscore.actions import load_playbook
    from healthscore.core.scoring import Scorer
    from healthscore.demo.sample import DEFAULT_AS_OF
    from healthscore.history.cache import pack_snapshot

    playbook = load_playbook(PLAYBOOK)
    started = time.perf_counter()
    if mode == "file":
        from healthscore.sources import load_snapshot

        snapshot = load_snapshot(f"file:{path}", playbook)
        calls = 0
    elif mode == "whole":
        from healthscore.core.crm import CrmSnapshot

        snapshot = CrmSnapshot.load(path)  # every type and property, read or not
        calls = 0
    else:
        from datetime import timedelta

        from healthscore.integrations.hubspot.client import HubSpotConnection, RateLimiter
        from healthscore.sources.cached import pull

        wide = HubSpotConnection(
            path,
            "bench",
            burst=RateLimiter(1_000_000, 10.0),
            search=RateLimiter(1_000_000, 1.0),
            clock_margin=timedelta(0),
        )
        pulled = pull("sandbox", playbook, connection=wide)
        snapshot, calls = pulled.snapshot, pulled.calls
    read = time.perf_counter() - started
    read_peak = _peak_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    scores = Scorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
    score_s, score_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    # what the store step reads of every account: its group and rule points
    breakdowns = sum(len(s.group_points()) + len(s.rule_points()) for s in scores)
    started = time.perf_counter()
    cache = pack_snapshot(snapshot, DEFAULT_AS_OF)
    cache_s = time.perf_counter() - started
    return {
        "records": sum(snapshot.counts().values()),
        "scored": len(scores),
        "breakdowns": breakdowns,
        "calls": calls,
        "read_s": read,
        "read_peak_mib": read_peak,
        "score_s": score_s,
        "score_cpu_s": score_cpu,
        "cache_mib": len(cache) / 2**20,
        "cache_s": cache_s,
        "peak_mib": _peak_mib(),
    }


def measure_engine(engine: str, accounts: int) -> dict[str, Any]:
    """One engine at one size on data generated in this process."""
    sys.path.insert(0, str(ROOT / "tests"))
    from oracle_scoring import RowScorer

    from healthscore.actions import load_playbook
    from healthscore.core.crm import CrmSnapshot
    from healthscore.core.scoring import Scorer
    from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot

    playbook = load_playbook(PLAYBOOK)
    snapshot = CrmSnapshot.from_json(generate_snapshot(accounts, seed=7))
    cpu = []
    for _ in range(2):
        started = time.process_time()
        if engine == "new":
            Scorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
        else:
            RowScorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
        cpu.append(time.process_time() - started)
    return {"first_cpu_s": cpu[0], "second_cpu_s": cpu[1]}


def _child(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _sample(data: Path, accounts: int, env: dict[str, str]) -> Path:
    path = data / f"crm-{accounts}-seed7.json"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        command = ["-m", "healthscore", "sample", "-n", str(accounts), "--out", str(path)]
        subprocess.run([sys.executable, *command], env=env, check=True, capture_output=True)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pull(path: Path, env: dict[str, str]) -> dict[str, Any]:
    port = _free_port()
    command = [sys.executable, "-m", "healthscore", "sandbox", "--seed", str(path)]
    command += ["--port", str(port), "--rate-limit", "100000000/10s"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:  # seeding 2M records takes a while
            if server.poll() is not None:
                raise RuntimeError(server.stderr.read().decode() if server.stderr else "")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        return _child(env, "--run", "pull", url)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--data", type=Path, default=Path("/tmp/healthscore-bench"))
    parser.add_argument("--pull", action="store_true", help="also pull from the sandbox")
    parser.add_argument("--whole", action="store_true", help="also keep every record")
    parser.add_argument("--engines", action="store_true", help="also the old row engine")
    parser.add_argument("--run", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "ACCOUNTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(measure_run(*args.run)))
        return
    if args.one:
        print(json.dumps(measure_engine(args.one[0], int(args.one[1]))))
        return
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONPATH": str(ROOT)}
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{'accounts':>9} {'records':>9} {'source':>6} {'calls':>6} {'read s':>7} "
        f"{'score s':>8} {'cpu s':>6} {'target':>6} {'cache MiB':>9} {'read MiB':>9} "
        f"{'peak MiB':>9} {'target':>7}"
    )
    for accounts in args.sizes:
        path = _sample(args.data, accounts, env)
        runs = [("file", _child(env, "--run", "file", str(path)))]
        if args.whole:
            runs.append(("whole", _child(env, "--run", "whole", str(path))))
        if args.pull:
            runs.append(("pull", _pull(path, env)))
        for mode, m in runs:
            print(
                f"{accounts:>9,} {m['records']:>9,} {mode:>6} {m['calls']:>6,} "
                f"{m['read_s']:>7.1f} {m['score_s']:>8.2f} {m['score_cpu_s']:>6.2f} "
                f"{SCORE_TARGET_S:>6.1f} {m['cache_mib']:>9.1f} {m['read_peak_mib']:>9,.0f} "
                f"{m['peak_mib']:>9,.0f} "
                f"{PEAK_TARGET_MIB:>7,}",
                flush=True,
            )
    if args.engines:
        print(f"{'accounts':>9} {'engine':>6} {'cpu s':>6} {'again':>6}")
        for accounts in args.sizes:
            for engine in ("old", "new"):
                m = _child(env, "--one", engine, str(accounts))
                print(
                    f"{accounts:>9,} {engine:>6} {m['first_cpu_s']:>6.2f} "
                    f"{m['second_cpu_s']:>6.2f}",
                    flush=True,
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
