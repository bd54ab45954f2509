"""Dashboard throughput: seconds to write the executive dashboard of a large portfolio.

    .venv/bin/python benchmarks/bench_dashboard.py [--sizes 50000:835,100000:1000] [--repeat 3]

Builds a synthetic `Portfolio` per size (ACCOUNTS:CSMS; seed 7; the default playbook's
groups, rules and statuses; 12 weekly runs of history per account), then times
`write_dashboard` (render the template, every chart, the account data, and the atomic
write to a temporary folder), best of `--repeat`. Prints wall and CPU seconds side by
side (CPU time stays meaningful on a machine shared with other jobs); asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from healthscore.core.playbook import load_playbook
from healthscore.history import RunInfo
from healthscore.reports.dashboard import write_dashboard
from healthscore.reports.portfolio import HISTORY_RUNS, AccountView, Portfolio, StatusLabel

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "default.yaml"
LAST_RUN = datetime(2026, 11, 23, 9, tzinfo=UTC)


def synthetic_portfolio(accounts: int, csms: int, seed: int = 7) -> Portfolio:
    """`accounts` accounts spread over `csms` CSMs, scored by the default playbook's
    groups and rules with random points, each with `HISTORY_RUNS` weekly scores."""
    rng = random.Random(seed)
    book = load_playbook(PLAYBOOK)
    statuses = [StatusLabel(t.label, t.color) for t in book.thresholds]
    moments = [LAST_RUN - timedelta(weeks=w) for w in reversed(range(HISTORY_RUNS))]

    def status_of(score: float) -> StatusLabel:
        for threshold, label in zip(book.thresholds, statuses, strict=True):
            if score >= threshold.min:
                return label
        return statuses[-1]

    views = []
    for i in range(accounts):
        history = [(moment, round(rng.uniform(0, 100), 2)) for moment in moments]
        score = history[-1][1]
        delta = round(score - history[-5][1], 2)
        rules = {
            g.name: {r.name: float(rng.choice((-10, -4, 0, 0, 3, 5, 10))) for r in g.rules}
            for g in book.groups
        }
        owner = rng.randrange(csms)
        views.append(
            AccountView(
                id=str(100 + i),
                name=f"Company {i} GmbH",
                owner_id=str(owner),
                owner=f"CSM {owner:04d}",
                score=score,
                status=status_of(score).label,
                color=status_of(score).color,
                trend="up" if delta > 3 else "down" if delta < -3 else "flat",
                delta=delta,
                previous_status=status_of(history[-2][1]).label,
                since_last_run=round(score - history[-2][1], 2),
                groups_json=orjson.dumps(
                    {g: round(sum(points.values()), 2) for g, points in rules.items()}
                ).decode(),
                rules_json=orjson.dumps(rules).decode(),
                history=history,
            )
        )
    runs = []
    for n, moment in enumerate(moments, start=1):
        counts = {s.label: 0 for s in statuses}
        for view in views:
            counts[status_of(view.history[n - 1][1]).label] += 1
        runs.append(
            RunInfo(
                playbook=book.name,
                content_hash="bench",
                as_of=moment,
                source="bench",
                started_at=moment,
                id=n,
                accounts=accounts,
                counts=counts,
                outcome="succeeded",
            )
        )
    return Portfolio(book.name, runs[-1], runs[-2], statuses, views, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000:835,100000:1000", help="ACCOUNTS:CSMS,...")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            accounts, csms = (int(n) for n in size.split(":"))
            portfolio = synthetic_portfolio(accounts, csms)
            path = Path(folder) / f"dashboard-{accounts}.html"
            wall = cpu = float("inf")
            for _ in range(args.repeat):
                started, started_cpu = time.perf_counter(), time.process_time()
                write_dashboard(portfolio, path)
                wall = min(wall, time.perf_counter() - started)
                cpu = min(cpu, time.process_time() - started_cpu)
            rows.append((accounts, csms, wall, cpu, path.stat().st_size))
    header = f"{'companies':>10} {'CSMs':>6} {'wall s':>7} {'CPU s':>7} {'MB':>6}"
    print(f"{header}  (best of {args.repeat})")
    for accounts, csms, wall, cpu, size in rows:
        print(f"{accounts:>10,} {csms:>6,} {wall:>7.2f} {cpu:>7.2f} {size / 1e6:>6.1f}")


if __name__ == "__main__":
    main()
