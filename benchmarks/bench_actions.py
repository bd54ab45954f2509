"""Slack dispatch at scale: a first run with `--enroll-existing`, per account and `group: owner`.

    .venv/bin/python benchmarks/bench_actions.py [--companies 10000] [--messages 3600]
        [--channel-rate 1]

A deterministic CRM (seed 7, the default playbook's sample data: 167 CSMs at 10k
companies) is scored with the default playbook, whose actions are replaced by one
Slack action to the owner firing `score_below` the threshold that makes about
`--messages` accounts fire (3,600 at 10k: the first run the issue measured; 0 keeps
the default playbook's "Alert CSM on at-risk", 2,031 at 10k). The actions of an
enrolling first run are planned as the flow plans them and recorded in a fresh
SQLite ledger. Then the real dispatcher sends them with the product's
Slack client to the sandbox, which enforces chat.postMessage's per-channel
limit (`--channel-rate` a second after a burst of 3, HTTP 429 + Retry-After).

Printed, per mode (one message per account; `group: owner`): rows, messages,
channels, the busiest channel's messages, the time that channel alone needs at
the limit (its messages / rate: what one sequential sender per channel could not
beat), the dispatch's wall time and the ratio of the two, the 429s the sandbox
answered, and the transactions the ledger committed. Owner lookups are made
once before the timed dispatch (the cache a daily run finds in the store); their
count is printed with what they cost against Slack's Tier 3 (50 a minute). The
sandbox has no tier limits, so that warm-up is not timed. Asserts nothing about
time: the machine may be shared; the load average is printed.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from healthscore.actions import load_playbook
from healthscore.actions.dispatch import Dispatcher, Vendors
from healthscore.actions.plan import plan_actions
from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, compare
from healthscore.core.triggers import TriggerHistory
from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot
from healthscore.history import RunInfo, open_store
from healthscore.history.ledger import ActionLedger, PendingAction
from healthscore.history.lookups import StoreLookupCache
from healthscore.integrations.slack.messages import SlackSender, slack_client
from healthscore.sandbox import running_sandbox

ROOT = Path(__file__).resolve().parent.parent
ACTION = """actions:
  - name: Alert CSM
    on: {TRIGGER}
    do: slack
    to: owner
    fallback_channel: "#cs-alerts"
    message: "{{ account.name }} is now {{ status }} ({{ score }}, {{ trend_arrow }})"
"""
TIER3_PER_MINUTE = 50


def playbook_file(folder: Path, group: bool, trigger: str) -> Path:
    text = (ROOT / "playbooks" / "default.yaml").read_text(encoding="utf-8")
    head = text[: text.index("\nactions:")]
    action = ACTION.replace("TRIGGER", trigger) + ("    group: owner\n" if group else "")
    path = folder / ("grouped.yaml" if group else "single.yaml")
    path.write_text(f"{head}\n{action}", encoding="utf-8")
    return path


def threshold(snapshot: CrmSnapshot, path: Path, messages: int) -> float:
    """The `score_below` value under which about `messages` accounts score (ties included)."""
    playbook = load_playbook(path)
    scores = Scorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
    rounded = sorted(c.rounded for c in compare(scores, Baseline(), playbook.trend.flat_band))
    return float(rounded[min(messages, len(rounded) - 1)])


def planned(snapshot: CrmSnapshot, path: Path) -> list[PendingAction]:
    playbook = load_playbook(path)
    scores = Scorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
    comparisons = compare(scores, Baseline(), playbook.trend.flat_band)
    plan = plan_actions(
        playbook,
        comparisons,
        snapshot,
        TriggerHistory(),
        DEFAULT_AS_OF,
        "1",
        enroll_existing=True,
    )
    return list(plan.due)


def run_mode(
    label: str, actions: list[PendingAction], seed: dict[str, Any], rate: float, folder: Path
) -> None:
    db = f"sqlite:///{folder / (label + '.db')}"
    with running_sandbox(seed, slack_channel_rate=rate) as urls, open_store(db) as store:
        store.record_run(
            RunInfo(actions[0].playbook, "bench", DEFAULT_AS_OF, "bench", DEFAULT_AS_OF),
            [],
            actions=actions,
        )
        cache = StoreLookupCache(store.engine)
        warm = SlackSender(slack_client(urls.slack_url, "xoxb-bench"), cache=cache, tiers={})
        for payload in {a.payload["owner_email"]: a.payload for a in actions}.values():
            warm.resolve(payload)
        warm.save_lookups()
        commits: list[int] = []
        sa.event.listen(store.engine, "commit", lambda _: commits.append(1))
        sender = SlackSender(slack_client(urls.slack_url, "xoxb-bench"), cache=cache)

        def unused() -> Any:
            raise RuntimeError("only Slack is dispatched")

        dispatcher = Dispatcher(
            ActionLedger(store.engine),
            Vendors(slack=lambda: sender, jira=unused, hubspot=unused),
            log=lambda _: None,
        )
        started = time.perf_counter()
        counts, errors = dispatcher.run(actions[0].playbook)
        wall = time.perf_counter() - started
        stats = httpx.get(f"{urls.base_url}/_sandbox/stats", timeout=30).json()
        per_channel = Counter(m["channel"] for m in urls.state.slack.messages)
    busiest = max(per_channel.values())
    dms = [n for channel, n in per_channel.items() if channel.startswith("D")]
    floor = busiest / rate
    print(
        f"{label:>18}: {len(actions):>6} rows -> {sum(per_channel.values()):>5} messages in "
        f"{len(per_channel)} channels; busiest channel {busiest} messages = {floor:6.1f} s at "
        f"{rate:g}/s; dispatch {wall:6.1f} s = {wall / floor:4.2f}x; sent {counts.sent}, "
        f"failed {counts.failed}, 429s {stats['rate_limited']}, ledger commits {len(commits)}, "
        f"lookups during dispatch {sender.lookups_made}"
    )
    print(
        f"{'':>20}DMs: {len(dms)} CSMs, {min(dms)} to {max(dms)} messages each; the rest "
        f"to the fallback channel (accounts without a CSM in Slack)"
    )
    for problem in errors[:5]:
        print(f"{'':>20}error: {problem}")
    lookups = warm.lookups_made
    print(
        f"{'':>20}owner lookups cached before (first run): {lookups} "
        f"(>= {math.ceil(max(lookups / 2 - TIER3_PER_MINUTE, 0) / TIER3_PER_MINUTE)} min "
        f"at Slack's Tier 3 after its burst; 0 on a daily run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=3600)
    parser.add_argument("--channel-rate", type=float, default=1.0)
    args = parser.parse_args()
    data = generate_snapshot(args.companies, seed=7)
    snapshot = CrmSnapshot.from_json(data)
    seed = {"owners": data["owners"], "companies": []}
    print(
        f"{args.companies} companies, {len(data['owners'])} CSMs; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trigger = "status_changed_to: At-risk"
        if args.messages:
            below = threshold(snapshot, playbook_file(folder, False, trigger), args.messages)
            trigger = f"score_below: {below:g}"
        print(f"trigger: {trigger}")
        for group in (False, True):
            actions = planned(snapshot, playbook_file(folder, group, trigger))
            label = "group: owner" if group else "one per account"
            run_mode(label, actions, seed, args.channel_rate, folder)


if __name__ == "__main__":
    main()
