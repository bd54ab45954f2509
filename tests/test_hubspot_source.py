"""The HubSpot source through the real hubspot-api-client against the sandbox.

The call counts asserted here are derived in the test from the snapshot and
HubSpot's documented limits (100 a list page, 1,000 ids an association batch,
100 a batch read), not read back from the source. At 2,000 companies and 4
related types one CRM export (start, status, file: 3 calls) reads the
associations more cheaply than 8 association batches, so the pulls use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.tickets import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from typer.testing import CliRunner

from healthscore.actions import load_playbook
from healthscore.cli import app
from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot
from healthscore.integrations.hubspot.client import HubSpotConnection, RateLimiter, connect
from healthscore.integrations.hubspot.pull import PullResult, pull
from healthscore.sandbox import running_sandbox
from tests.conftest import PLAYBOOKS

AS_OF = DEFAULT_AS_OF.isoformat()
V4_READ = "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"
EXPORT_CALLS = {  # one CRM export: start it, its status (ready at once here), its file
    "POST /crm/v3/exports/export/async": 1,
    "GET /crm/v3/exports/export/async/tasks/{taskId}/status": 1,
    "GET /hubfs/exports/{fileName}": 1,
}
PLAYBOOK = load_playbook(PLAYBOOKS / "default.yaml")


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return generate_snapshot(2000, seed=7)


def fast_connection(url: str) -> HubSpotConnection:
    """Our own limiter opened wide, so the sandbox's limits are what is tested."""
    return HubSpotConnection(
        url,
        "test-token",
        burst=RateLimiter(100_000, 10.0),
        search=RateLimiter(1_000, 1.0),
        clock_margin=timedelta(0),
    )


def pull_after(first: PullResult, connection: HubSpotConnection) -> PullResult:
    """The incremental pull that follows `first`, as the next scheduled run makes it."""
    return pull(
        PLAYBOOK,
        connection,
        previous=first.snapshot,
        since=first.pulled_at,
        previous_signature=first.signature,
    )


def stats(base_url: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/_sandbox/stats").json()


def scores(snapshot: CrmSnapshot) -> list[dict[str, Any]]:
    return [s.to_json() for s in Scorer(PLAYBOOK).score_snapshot(snapshot, DEFAULT_AS_OF)]


@pytest.fixture(scope="module")
def sandbox(seed: dict[str, Any]) -> Iterator[Any]:
    with running_sandbox(seed, rate_limit=100_000, search_rate_per_second=1_000) as urls:
        yield urls


@pytest.fixture(scope="module")
def full_pull(sandbox: Any) -> tuple[PullResult, dict[str, Any]]:
    httpx.post(f"{sandbox.base_url}/_sandbox/clear-stats")
    result = pull(PLAYBOOK, fast_connection(sandbox.hubspot_url))
    return result, stats(sandbox.base_url)


def test_sandbox_source_scores_exactly_like_the_file_source(
    seed: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(seed))
    runner = CliRunner()
    args = ["score", "-p", str(PLAYBOOKS / "default.yaml"), "--as-of", AS_OF, "-f", "json"]
    from_file = runner.invoke(app, [*args, "-s", f"file:{path}"])
    # the sandbox's default (HubSpot Professional) limits, and our default client
    with running_sandbox(seed) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        from_sandbox = runner.invoke(app, [*args, "-s", "sandbox"])
        assert stats(urls.base_url)["rate_limited"] == 0  # we stay under the limit
    assert from_file.exit_code == 0 and from_sandbox.exit_code == 0, from_sandbox.output
    assert len(json.loads(from_file.stdout)) == 1759
    assert from_sandbox.stdout == from_file.stdout


def test_full_pull_makes_exactly_the_batch_minimum_of_calls(
    seed: dict[str, Any], full_pull: tuple[PullResult, dict[str, Any]]
) -> None:
    result, counted = full_pull
    companies = seed["companies"]
    related_types = sorted(k for k in PLAYBOOK.required_properties() if k != "companies")
    assert related_types == ["calls", "contacts", "meetings", "tickets"]

    assert len(related_types) * math.ceil(len(companies) / 1000) == 8  # v4 batches, > 3
    expected = {
        "GET /crm/v3/owners": math.ceil(len(seed["owners"]) / 500),
        "GET /crm/v3/objects/{objectType}": math.ceil(len(companies) / 100),
        # every company's associations of every related type: one CRM export
        **EXPORT_CALLS,
        # one batch read per 100 associated records of each type
        "POST /crm/v3/objects/{objectType}/batch/read": sum(
            math.ceil(sum(1 for r in seed[kind] if r["associations"].get("companies")) / 100)
            for kind in related_types
        ),
    }
    for kind in related_types:
        per_company: dict[str, int] = {}
        for record in seed[kind]:
            for company in record["associations"].get("companies", []):
                per_company[company] = per_company.get(company, 0) + 1
        assert max(per_company.values()) <= 500
    assert counted["calls"] == expected
    assert result.calls == sum(expected.values()) == counted["total_calls"]
    assert result.incremental is False
    assert result.associations == (
        "associations: tickets, contacts, meetings, calls from one CRM export (1 status poll)"
    )


def test_the_v4_batch_read_gives_the_same_snapshot_as_the_export(
    sandbox: Any, full_pull: tuple[PullResult, dict[str, Any]], seed: dict[str, Any]
) -> None:
    connection = fast_connection(sandbox.hubspot_url)
    connection.association_read = "batch"
    httpx.post(f"{sandbox.base_url}/_sandbox/clear-stats")
    batch = pull(PLAYBOOK, connection)
    # one association batch per 1,000 companies, for each related type
    # (no company has more than 500 records of a type, so no per-id paging)
    assert stats(sandbox.base_url)["calls"][V4_READ] == 4 * math.ceil(len(seed["companies"]) / 1000)
    assert (
        batch.associations
        == "associations: tickets, contacts, meetings, calls with the v4 batch read: asked for"
    )
    assert batch.snapshot.to_json() == full_pull[0].snapshot.to_json()


def test_full_pull_returns_the_seeded_records(
    seed: dict[str, Any], full_pull: tuple[PullResult, dict[str, Any]]
) -> None:
    snapshot = full_pull[0].snapshot
    assert scores(snapshot) == scores(CrmSnapshot.from_json(seed))
    assert [o.id for o in snapshot.owners] == [o["id"] for o in seed["owners"]]
    pulled = {r.id: r for r in snapshot.records("meetings")}
    for record in seed["meetings"][:50]:
        assert pulled[record["id"]].associations == {
            "companies": record["associations"]["companies"]
        }
        assert pulled[record["id"]].properties.get("hs_timestamp") == record["properties"].get(
            "hs_timestamp"
        )


def test_incremental_pull_after_changing_20_companies_makes_a_handful_of_calls(
    sandbox: Any, full_pull: tuple[PullResult, dict[str, Any]]
) -> None:
    first, _ = full_pull
    client = HubSpot(access_token="test-token", host=sandbox.hubspot_url)
    changed = [r.id for r in first.snapshot.records("companies")[:20]]
    client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={"csm_pulse": "red"}) for i in changed
            ]
        )
    )
    httpx.post(f"{sandbox.base_url}/_sandbox/clear-stats")
    connection = fast_connection(sandbox.hubspot_url)
    second = pull_after(first, connection)
    counted = stats(sandbox.base_url)
    # owners (1 page) + one search per object type: companies, calls, contacts, meetings,
    # tickets; the archived companies (1 page, none); the associations of all 2,000
    # companies re-read for each of the 4 related types: one export (3 calls, where the
    # v4 read would take 1,000 ids a call: 4 * 2 = 8)
    assert counted["calls"] == {
        "GET /crm/v3/owners": 1,
        "POST /crm/v3/objects/{objectType}/search": 5,
        "GET /crm/v3/objects/{objectType}": 1,
        **EXPORT_CALLS,
    }
    assert second.incremental is True and second.calls == 10
    assert second.changed == {
        "companies": 20,
        "calls": 0,
        "contacts": 0,
        "meetings": 0,
        "tickets": 0,
    }
    pulses = {r.id: r.properties.get("csm_pulse") for r in second.snapshot.records("companies")}
    assert all(pulses[i] == "red" for i in changed)
    # the merged snapshot scores exactly like a fresh full pull of the same CRM
    assert scores(second.snapshot) == scores(pull(PLAYBOOK, connection).snapshot)


def test_incremental_pull_picks_up_new_events_and_their_associations(
    sandbox: Any, full_pull: tuple[PullResult, dict[str, Any]]
) -> None:
    first, _ = full_pull
    company = first.snapshot.records("companies")[5].id
    client = HubSpot(access_token="test-token", host=sandbox.hubspot_url)
    created = client.crm.tickets.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_ticket_priority": "URGENT",
                "subject": "Outage",
                "hs_pipeline_stage": "1",
            },
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=company),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=339
                        )
                    ],
                )
            ],
        )
    )
    connection = fast_connection(sandbox.hubspot_url)
    second = pull_after(first, connection)
    ticket = next(r for r in second.snapshot.records("tickets") if r.id == str(created.id))
    assert ticket.associations == {"companies": [company]}
    assert ticket.properties["hs_ticket_priority"] == "URGENT"
    assert scores(second.snapshot) == scores(pull(PLAYBOOK, connection).snapshot)


def test_a_changed_playbook_needs_a_full_pull(
    sandbox: Any, full_pull: tuple[PullResult, dict[str, Any]]
) -> None:
    first, _ = full_pull
    connection = fast_connection(sandbox.hubspot_url)
    again = pull(
        PLAYBOOK,
        connection,
        previous=first.snapshot,
        since=first.pulled_at,
        previous_signature="another playbook's needs",
    )
    assert again.incremental is False


def test_ten_percent_faults_still_return_the_same_data() -> None:
    small = generate_snapshot(400, seed=5)
    with running_sandbox(
        small, rate_limit=100_000, search_rate_per_second=1_000, slow_seconds=0.05
    ) as urls:
        clean = pull(PLAYBOOK, fast_connection(urls.hubspot_url)).snapshot
        httpx.post(f"{urls.base_url}/_sandbox/faults", json={"rate": 0.10, "seed": 3})
        faulty = pull(PLAYBOOK, fast_connection(urls.hubspot_url))
        counted = stats(urls.base_url)
    # 429s, 5xx, slow answers and dropped connections, all retried
    assert counted["faults_injected"] >= 5
    assert len(counted["faults_by_kind"]) >= 3
    assert faulty.snapshot.to_json() == clean.to_json()


def test_answers_cut_off_mid_body_are_asked_for_again() -> None:
    """The sandbox sends a page's head and half its body, then closes the connection:
    `call_json` reads the body itself (`_preload_content=False`), so the cut surfaces
    there, not in urllib3's retries, and the page is asked for again."""
    small = generate_snapshot(400, seed=5)
    with running_sandbox(small, rate_limit=100_000, search_rate_per_second=1_000) as urls:
        clean = pull(PLAYBOOK, fast_connection(urls.hubspot_url)).snapshot
        faults = {"rate": 0.3, "seed": 3, "kinds": ["cut"], "path": "/crm/v3/objects/"}
        httpx.post(f"{urls.base_url}/_sandbox/faults", json={**faults, "limit": 8})
        cut = pull(PLAYBOOK, fast_connection(urls.hubspot_url))
        counted = stats(urls.base_url)
    assert counted["faults_by_kind"] == {"cut": 8}  # list pages and batch reads, cut
    assert cut.snapshot.to_json() == clean.to_json()


def test_429s_are_waited_out_honouring_retry_after() -> None:
    small = generate_snapshot(60, seed=9)  # 15 calls: one wait on a 10-call window
    with running_sandbox(small, rate_limit=10, search_rate_per_second=1_000) as urls:
        result = pull(PLAYBOOK, fast_connection(urls.hubspot_url))
        counted = stats(urls.base_url)
    assert counted["rate_limited"] > 0  # the sandbox did say 429
    assert scores(result.snapshot) == scores(CrmSnapshot.from_json(small))


def test_unreachable_sandbox_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("healthscore.integrations.hubspot.client.default_retry", lambda: False)
    result = CliRunner().invoke(
        app, ["score", "-p", str(PLAYBOOKS / "default.yaml"), "-s", "sandbox"]
    )
    assert result.exit_code == 2
    assert "could not read HubSpot at http://127.0.0.1:9" in result.stderr


def test_hubspot_source_without_token_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    result = CliRunner().invoke(
        app, ["score", "-p", str(PLAYBOOKS / "default.yaml"), "-s", "hubspot"]
    )
    assert result.exit_code == 2
    assert "HUBSPOT_ACCESS_TOKEN" in result.stderr


@pytest.mark.parametrize(("announced", "kept"), [(190, 186), (100, 98), (10, 9)])
def test_the_burst_limiter_fits_the_limit_hubspot_announces(announced: int, kept: int) -> None:
    """`connect()` sizes its limiter to `X-HubSpot-RateLimit-Max` (98 %, at least one under):
    a Professional portal's 190 a window is used, a Starter portal's 100 is not exceeded."""
    small = generate_snapshot(30, seed=9)
    with running_sandbox(small, rate_limit=announced, search_rate_per_second=1_000) as urls:
        connection = connect(base_url=urls.hubspot_url, token=f"fit-{announced}")
        assert (connection.burst.calls, connection.burst.seconds) == (150, 10.0)
        result = pull(PLAYBOOK, connection)
        assert (connection.burst.calls, connection.burst.seconds) == (kept, 10.0)
        assert stats(urls.base_url)["rate_limited"] == 0
    assert scores(result.snapshot) == scores(CrmSnapshot.from_json(small))
