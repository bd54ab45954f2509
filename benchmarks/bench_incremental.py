"""API calls of a full pull and of an incremental pull with 1 % of companies changed.

    .venv/bin/python benchmarks/bench_incremental.py [--companies 10000 50000] [--limits open]

For each size: a deterministic CRM (seed 7, default playbook) in the sandbox, with
HubSpot Professional's limits (`--limits hubspot`, 190 calls / 10 s and 5
searches / s; our own client stays under them) or opened wide (`open`, for a
quick count: the calls are the same, only the waiting differs). A full pull,
then 1 % of the companies updated through the API, then the incremental pull
that follows. Prints the calls per endpoint, the totals and the incremental
run's share of the full run, and the minimum the batch endpoints allow:

    full:        ceil(O/500) + ceil(A/100) + T*ceil(A/1000) + sum_t ceil(R_t/100)
    incremental: ceil(O/500) + (1+T) searches + 1 archived page
                 + T*ceil(A/1000) association batches (re-read every run)

(A accounts, T related types, R_t linked records of type t, O owners). Asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import timedelta
from pathlib import Path

import httpx
from hubspot import HubSpot
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput

from healthscore.core.playbook import load_playbook
from healthscore.demo.sample import generate_snapshot
from healthscore.integrations.hubspot.client import HubSpotConnection, RateLimiter, connect
from healthscore.integrations.hubspot.pull import pull
from healthscore.sandbox import running_sandbox

PLAYBOOK = load_playbook(Path(__file__).resolve().parent.parent / "playbooks" / "default.yaml")


def _connection(url: str, limits: str) -> HubSpotConnection:
    if limits == "hubspot":
        return connect(sandbox=True, base_url=url)
    return HubSpotConnection(
        url,
        "bench",
        burst=RateLimiter(1_000_000, 10.0),
        search=RateLimiter(1_000_000, 1.0),
        clock_margin=timedelta(0),
    )


def bench(companies: int, limits: str) -> None:
    seed = generate_snapshot(companies, seed=7)
    related = sorted(k for k in PLAYBOOK.required_properties() if k != "companies")
    open_limits = {"rate_limit": 10_000_000, "search_rate_per_second": 1_000_000}
    with running_sandbox(seed, **({} if limits == "hubspot" else open_limits)) as urls:
        connection = _connection(urls.hubspot_url, limits)
        started = time.perf_counter()
        first = pull(PLAYBOOK, connection)
        full_seconds = time.perf_counter() - started
        full_calls = httpx.get(f"{urls.base_url}/_sandbox/stats").json()["calls"]
        client = HubSpot(access_token="bench", host=urls.hubspot_url)
        ids = [r.id for r in first.snapshot.records("companies")][::100]  # 1 %
        for start in range(0, len(ids), 100):
            client.crm.companies.batch_api.update(
                BatchInputSimplePublicObjectBatchInput(
                    inputs=[
                        {"id": i, "properties": {"csm_pulse": "red"}}
                        for i in ids[start : start + 100]
                    ]
                )
            )
        httpx.post(f"{urls.base_url}/_sandbox/clear-stats")
        started = time.perf_counter()
        second = pull(
            PLAYBOOK,
            connection,
            previous=first.snapshot,
            since=first.pulled_at,
            previous_signature=first.signature,
        )
        incremental_seconds = time.perf_counter() - started
        incremental_calls = httpx.get(f"{urls.base_url}/_sandbox/stats").json()["calls"]
    minimum = (
        math.ceil(len(seed["owners"]) / 500)
        + 1
        + len(related)
        + 1
        + len(related) * math.ceil(len(seed["companies"]) / 1000)
    )
    print(f"\n{companies:,} companies, {len(related)} related types ({', '.join(related)})")
    print(f"  full pull:        {first.calls:6,} calls  ({full_seconds:.1f} s, limits {limits})")
    for endpoint, n in sorted(full_calls.items()):
        print(f"      {n:6,}  {endpoint}")
    share = second.calls / first.calls
    print(
        f"  incremental (1 %, {len(ids):,} companies changed): {second.calls:,} calls "
        f"= {share:.1%} of the full pull ({incremental_seconds:.1f} s); batch minimum {minimum}"
    )
    for endpoint, n in sorted(incremental_calls.items()):
        print(f"      {n:6,}  {endpoint}")
    assert second.incremental and second.changed["companies"] == len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--limits", choices=["hubspot", "open"], default="hubspot")
    args = parser.parse_args()
    for companies in args.companies:
        bench(companies, args.limits)


if __name__ == "__main__":
    main()
