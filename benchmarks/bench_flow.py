"""The whole scoring flow against the rate-limited sandbox: a full run, then a 1 % change.

    .venv/bin/python benchmarks/bench_flow.py --companies 10000 [--changed 0.01] [--keep DIR]

One script run: a deterministic CRM (`healthscore sample`'s generator, seed 7) in a
HubSpot sandbox with HubSpot Professional's limits (190 requests / 10 s, 5 searches / s)
in its own process; a Prefect server of its own (with its services: the task run
recorder keeps the task runs whose seconds are printed), stopped at the end; an empty
SQLite history. Run 1 is the playbook's first run (`playbooks/default.yaml`:
a full pull, every company's score written back). Then `--changed` of the companies
are updated through the HubSpot API (batch update of `csm_pulse`), and run 2 follows.
Each run is `flows.score_accounts` in a fresh process, so its peak RSS is its own.

Printed side by side for both runs:
- HubSpot calls (the sandbox's count) against the batch minimum. Full run: owners
  ceil(O/500) + companies ceil(A/100) + the association read X + sum_t
  ceil(R_t/100) records + write-back batches ceil(W/100) + the write-back's property
  setup, where X is the cheaper of one CRM export (start, one status poll, the file:
  3) and T*ceil(A/1000) v4 association batches. Second run, two minima: the issue's
  (owners + one search page per type + write-back batches + property read) and the
  exact one this pull needs (that plus the archived list page, the association
  re-read X that association changes, which bump no modification date, require, and
  one page for our last write-back's window). Action calls (HubSpot lists) count in
  both calls and minima.
- Wall time of the flow run against the rate-limit floor (HubSpot calls / 19 per s).
- Seconds per task (Prefect's task runs), the process's peak RSS (`VmHWM`) and the
  largest RSS sampled (every 50 ms) during each task, the database size.

`--open-limits` lifts the sandbox's rate limit (memory and call figures in minutes
at 100k; the wall time then says nothing); `--profile` writes a cProfile of each run.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "default.yaml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=30).json()


def _hubspot_calls(base: str) -> dict[str, int]:
    calls: dict[str, int] = _get(f"{base}/_sandbox/stats")["calls"]
    # the API, and an export's file link (`/hubfs/`): a call the pull makes, though
    # HubSpot's file links spend no API limit
    return {k: n for k, n in calls.items() if "/crm" in k or "/owners" in k or "/hubfs/" in k}


def _rss_sampler(samples: list[tuple[float, int]], stop: threading.Event) -> None:
    """Resident set size (bytes) of this process every 50 ms, with the wall time."""
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm", encoding="ascii") as statm:
        while not stop.is_set():
            statm.seek(0)
            samples.append((time.time(), int(statm.read().split()[1]) * page))
            stop.wait(0.05)


def _high_water_mark() -> int:
    """This process's peak RSS in bytes (`VmHWM`). Not `getrusage`: Linux carries
    `ru_maxrss` over fork and exec, so a child of this (seed-holding) parent would
    report at least the parent's RSS at the fork."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(db_url: str) -> None:
    """One flow run in this process; prints its summary, task seconds, task peak RSS and
    the process's peak RSS (JSON)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.score_accounts import score_accounts

    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_rss_sampler, args=(samples, stop), daemon=True)
    sampler.start()
    started = time.perf_counter()
    state = score_accounts(str(PLAYBOOK), source="sandbox", db_url=db_url, return_state=True)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    summary = state.result()
    flow_run_id = state.state_details.flow_run_id
    tasks: dict[str, float] = {}
    task_rss: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for _ in range(60):  # task runs reach the server as events, a moment later
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            if runs and all(r.state is not None and r.state.is_final() for r in runs):
                break
            time.sleep(0.5)
    for run in runs:
        name = run.name.rsplit("-", 1)[0]
        tasks[name] = tasks.get(name, 0.0) + run.total_run_time.total_seconds()
        if run.start_time is not None and run.end_time is not None:
            began, ended = run.start_time.timestamp(), run.end_time.timestamp()
            during = [rss for moment, rss in samples if began <= moment <= ended]
            task_rss[name] = max([task_rss.get(name, 0), *during])
    peak = _high_water_mark()
    print(
        json.dumps(
            {"wall": wall, "summary": summary, "tasks": tasks, "task_rss": task_rss, "rss": peak}
        )
    )


def _run(env: dict[str, str], db_url: str, profile: Path | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", db_url]
    if profile is not None:  # cProfile of the flow run's process, for `python -m pstats`
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    out = subprocess.run(
        command,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the flow run failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _change(hubspot_url: str, ids: list[str]) -> None:
    from hubspot import HubSpot
    from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput

    client = HubSpot(access_token="bench", host=hubspot_url)
    for start in range(0, len(ids), 100):
        client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": i, "properties": {"csm_pulse": "red"}} for i in ids[start : start + 100]
                ]
            )
        )


def _minimum(seed: dict[str, Any], run: dict[str, Any], full: bool) -> tuple[int, int]:
    """(the issue's minimum, the exact pull's minimum) of HubSpot calls for this run."""
    from healthscore.core.playbook import load_playbook
    from healthscore.integrations.hubspot.exports import EXPORT_CALLS

    playbook = load_playbook(PLAYBOOK)
    related = sorted(k for k in playbook.required_properties() if k != playbook.object)
    accounts = len(seed["companies"])
    summary = run["summary"]
    batches = math.ceil(summary["written_records"] / 100)
    # the property read (and creation, first run); not our read-back of what was written
    setup = summary["writeback_calls"] - 2 * batches
    actions = run["calls_total"] - summary["pull_calls"] - summary["writeback_calls"]
    owners = math.ceil(len(seed["owners"]) / 500)
    write = batches + setup + actions
    associations = min(EXPORT_CALLS, len(related) * math.ceil(accounts / 1000))
    if full:
        linked = {
            kind: sum(1 for r in seed.get(kind, []) if r.get("associations", {}).get("companies"))
            for kind in related
        }
        pull = owners + math.ceil(accounts / 100) + associations
        pull += sum(math.ceil(n / 100) for n in linked.values())
        return pull + write, pull + write
    issue = owners + 1 + len(related) + write
    exact = issue + 1 + associations + 1
    return issue, exact


def _db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def bench(
    companies: int,
    changed: float,
    keep: Path | None,
    profile: bool = False,
    open_limits: bool = False,
) -> None:
    from healthscore.demo.sample import generate_snapshot

    if keep is None:
        with tempfile.TemporaryDirectory(prefix="bench-flow-") as folder:
            return bench(companies, changed, Path(folder), profile, open_limits)
    work = keep
    work.mkdir(parents=True, exist_ok=True)
    seed = generate_snapshot(companies, seed=7)
    crm = work / "crm.json"
    crm.write_text(json.dumps(seed), encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    limits = ["--rate-limit", "1000000/10s"] if open_limits else []
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "healthscore",
            "sandbox",
            "--seed",
            str(crm),
            "--port",
            str(port),
            *limits,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    home = work / "prefect"
    home.mkdir(exist_ok=True)
    prefect_port = _free_port()
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    server_env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [*command, "--port", str(prefect_port)],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait(f"{base}/_sandbox/stats", sandbox)
        _wait(f"{api_url}/health", server)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSCORE_")}
        env |= {
            "PREFECT_API_URL": api_url,
            "HEALTHSCORE_SANDBOX_URL": base,
            "XDG_DATA_HOME": str(work / "data"),
            "PYTHONPATH": str(REPO),
        }
        db = work / "history.db"
        db_url = f"sqlite:///{db}"
        runs: list[dict[str, Any]] = []
        for number in (1, 2):
            if number == 2:
                ids = [r["id"] for r in seed["companies"]][:: round(1 / changed)]
                _change(base, ids)
            _get_post(f"{base}/_sandbox/clear-stats")
            run = _run(env, db_url, work / f"run{number}.prof" if profile else None)
            run["calls"] = _hubspot_calls(base)
            run["calls_total"] = sum(run["calls"].values())
            run["db"] = _db_size(db)
            runs.append(run)
        _print(companies, seed, runs, changed)
    finally:
        for process in (sandbox, server):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 3600  # a 50k-company seed loads for minutes
    while True:
        try:
            _get(url)
            return
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{url} did not answer") from None
            time.sleep(0.5)


def _get_post(url: str) -> None:
    import httpx

    httpx.post(url, timeout=30)


def _print(
    companies: int, seed: dict[str, Any], runs: list[dict[str, Any]], changed: float
) -> None:
    first, second = runs
    rows: list[tuple[str, str, str]] = []
    minima = [_minimum(seed, first, True), _minimum(seed, second, False)]

    def add(label: str, a: str, b: str) -> None:
        rows.append((label, a, b))

    add("pull", *(("incremental" if r["summary"]["pull_incremental"] else "full") for r in runs))
    add("HubSpot calls", *(f"{r['calls_total']:,}" for r in runs))
    add(
        "  pull / write-back",
        *(f"{r['summary']['pull_calls']:,} / {r['summary']['writeback_calls']:,}" for r in runs),
    )
    add("  records written", *(f"{r['summary']['written_records']:,}" for r in runs))
    add("batch minimum (issue's)", *(f"{m[0]:,}" for m in minima))
    add(
        "  calls / minimum",
        *(f"{r['calls_total'] / m[0]:.2f}x" for r, m in zip(runs, minima, strict=True)),
    )
    add("exact-pull minimum", *(f"{m[1]:,}" for m in minima))
    add(
        "  calls / minimum",
        *(f"{r['calls_total'] / m[1]:.2f}x" for r, m in zip(runs, minima, strict=True)),
    )
    add("flow wall time", *(f"{r['wall']:.1f} s" for r in runs))
    floors = [r["calls_total"] / 19 for r in runs]
    add("rate-limit floor (calls/19)", *(f"{f:.1f} s" for f in floors))
    add(
        "  wall / floor",
        *(f"{r['wall'] / f:.2f}x" if f else "-" for r, f in zip(runs, floors, strict=True)),
    )
    for task in sorted({t for r in runs for t in r["tasks"]}):
        add(f"  task {task}", *(f"{r['tasks'].get(task, 0.0):.1f} s" for r in runs))
    add("peak RSS", *(f"{r['rss'] / 2**20:,.0f} MiB" for r in runs))
    for task in sorted({t for r in runs for t in r["task_rss"]}):
        add(
            f"  during {task}",
            *(f"{r['task_rss'].get(task, 0) / 2**20:,.0f} MiB" for r in runs),
        )
    add("database size", *(f"{r['db'] / 2**20:,.1f} MiB" for r in runs))
    width = max(len(r[0]) for r in rows)
    print(f"\n{companies:,} companies; run 2 after {changed:.0%} changed through the API")
    print(f"{'':{width}}  {'run 1 (first)':>16}  {'run 2':>16}")
    for label, a, b in rows:
        print(f"{label:{width}}  {a:>16}  {b:>16}")
    for number, run in enumerate(runs, 1):
        print(f"run {number} {run['summary'].get('pull_associations') or 'associations: -'}")
    print("\nHubSpot calls per endpoint (run 1 / run 2):")
    for endpoint in sorted({e for r in runs for e in r["calls"]}):
        made = [f"{r['calls'].get(endpoint, 0):6,}" for r in (first, second)]
        print(f"  {made[0]} / {made[1]}  {endpoint}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, nargs="+", default=[10_000])
    parser.add_argument("--changed", type=float, default=0.01, help="share changed before run 2")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each run into run1.prof / run2.prof"
    )
    parser.add_argument(
        "--open-limits",
        action="store_true",
        help="the sandbox at 1,000,000 requests / 10 s: memory and call figures in minutes "
        "(wall time against the floor then means nothing)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    for companies in args.companies:
        keep = args.keep / str(companies) if args.keep else None
        if args.profile and keep is None:
            parser.error("--profile needs --keep (the profiles are written there)")
        bench(companies, args.changed, keep, args.profile, args.open_limits)


if __name__ == "__main__":
    main()
