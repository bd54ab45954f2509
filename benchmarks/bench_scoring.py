"""Scoring throughput: accounts per second with the default playbook.

    .venv/bin/python benchmarks/bench_scoring.py [--accounts 100000] [--repeat 3]

Generates a deterministic CRM (seed 7), builds the snapshot once, then times
only the scoring (association index + every rule of every in-segment account),
best of `--repeat` runs. Prints the figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

from healthscore.actions import load_playbook
from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "default.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    snapshot = CrmSnapshot.from_json(generate_snapshot(args.accounts, seed=7))
    records = sum(len(r) for r in snapshot.objects.values())
    elapsed = time.perf_counter() - started
    print(f"generated {args.accounts:,} companies, {records:,} records in {elapsed:.1f} s")

    scorer = Scorer(load_playbook(PLAYBOOK))
    best = float("inf")
    scored = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        scored = len(scorer.score_snapshot(snapshot, DEFAULT_AS_OF))
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    scorer.score_snapshot(snapshot, DEFAULT_AS_OF)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"scored {scored:,} in-segment accounts in {best:.2f} s (best of {args.repeat})")
    print(f"throughput: {scored / best:,.0f} accounts/s ({args.accounts / best:,.0f} companies/s)")
    print(f"peak memory of one scoring pass: {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
