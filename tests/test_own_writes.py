"""Incremental pulls that stay incremental (issue 15): our own writes, the search cap.

Every change goes through the sandbox's HubSpot API with the real hubspot-api-client.
The sandbox holds CRM search to a 20-result cap per query (HubSpot's is 10,000,
"Search the CRM", Limitations), so paging past it takes 45 companies, not 10,000.

Calls of an incremental pull of the `STALE` playbook (3 related types: contacts,
meetings, tickets), 45 companies and nothing else, 1 owner:
  FIXED (owners 1 + archived list 1 + 3 related searches + 3 association batches of
  up to 1,000 ids) + the companies search's pages + our write-back window's pages
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput

from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, Comparison, compare
from healthscore.history import CacheEntry, HistoryStore, RunInfo, open_store
from healthscore.integrations.hubspot.client import HubSpotConnection
from healthscore.integrations.hubspot.pull import pull
from healthscore.integrations.hubspot.writeback import OwnWrites, write_back
from healthscore.sandbox import SandboxUrls, running_sandbox
from healthscore.sources import cached
from tests.test_stale_pulls import STALE, company, fast_connection, seed

CAP = 20
COMPANIES = [str(i) for i in range(1001, 1046)]  # 45: more than two caps' worth
AS_OF = datetime.now(UTC) + timedelta(days=1)
FIXED = 1 + 1 + 3 + 3  # owners, archived list, related searches, association batches


def big_seed() -> dict[str, Any]:
    data = seed()
    data.update(companies=[company(int(i)) for i in COMPANIES], meetings=[], tickets=[])
    data["contacts"] = []
    return data


@pytest.fixture
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(
        big_seed(), rate_limit=100_000, search_rate_per_second=1_000, search_cap=CAP
    ) as urls:
        yield urls


def _connection(url: str) -> HubSpotConnection:
    connection = fast_connection(url)
    connection.search_cap = CAP
    return connection


def _full(connection: HubSpotConnection) -> dict[str, Any]:
    """What a fresh full pull sees now, with the write-back's properties."""
    return dict(pull(STALE, connection, extra_properties=cached._extra([STALE])).snapshot.to_json())


def _run(
    store: HistoryStore, connection: HubSpotConnection, *, write: bool = True
) -> tuple[cached.PulledCrm, int, list[Comparison]]:
    """One scheduled run's pull, store and write-back, the way the flow does them."""
    pulled = cached.pull("sandbox", STALE, load_cache=store.load_cache, connection=connection)
    scores = Scorer(STALE).score_snapshot(pulled.snapshot, AS_OF)
    comparisons = compare(scores, Baseline(), STALE.trend.flat_band)
    run = RunInfo(STALE.name, STALE.content_hash, AS_OF, "sandbox", AS_OF)
    run_id = store.record_run(run, comparisons, pulled.cache)
    if write:
        _write(store, connection, run_id, comparisons, pulled.snapshot)
    return pulled, run_id, comparisons


def _write(
    store: HistoryStore,
    connection: HubSpotConnection,
    run_id: int,
    comparisons: list[Comparison],
    snapshot: CrmSnapshot,
) -> int:
    """The write-back task: write, read back, remember with the run's cache; its calls."""
    written = write_back(connection, STALE, comparisons, snapshot)
    assert written.written is not None
    remembered, calls = cached.read_back_writes(STALE, connection, written.written)
    key = cached.cache_key("sandbox", connection, STALE)
    assert store.remember_writes(key, run_id, remembered.to_json())
    return written.calls + calls


def _rename(crm: Any, company_id: str, name: str) -> None:
    crm.companies.basic_api.update(company_id, SimplePublicObjectInput(properties={"name": name}))
    time.sleep(0.003)  # each change in its own millisecond: page counts are then exact


def test_the_sandbox_bumps_the_modification_date_and_answers_it(sandbox: SandboxUrls) -> None:
    crm = HubSpot(access_token="t", host=sandbox.hubspot_url).crm
    before = crm.companies.basic_api.get_by_id("1001").properties["hs_lastmodifieddate"]
    from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput

    answer = crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(inputs=[{"id": "1001", "properties": {"name": "Z"}}])
    )
    (result,) = answer.results
    after = crm.companies.basic_api.get_by_id("1001").properties["hs_lastmodifieddate"]
    assert after > before
    assert result.properties["hs_lastmodifieddate"] == after
    assert result.updated_at.isoformat(timespec="milliseconds") == after.replace("Z", "+00:00")


def test_the_sandbox_refuses_to_page_past_the_cap_as_hubspot_does(sandbox: SandboxUrls) -> None:
    from hubspot.crm.objects import PublicObjectSearchRequest
    from hubspot.crm.objects.exceptions import ApiException

    from healthscore.sandbox.state import SandboxState

    assert SandboxState().search_cap == 10_000  # HubSpot's, unless a test asks for less
    search = HubSpot(access_token="t", host=sandbox.hubspot_url).crm.objects.search_api
    page = search.do_search("companies", public_object_search_request=PublicObjectSearchRequest(
        limit=200, after="0"
    ))  # fmt: skip
    assert (page.total, len(page.results), page.paging.next.after) == (45, 20, "20")
    with pytest.raises(ApiException) as refused:
        search.do_search("companies", public_object_search_request=PublicObjectSearchRequest(
            limit=200, after="20"
        ))  # fmt: skip
    assert refused.value.status == 400
    assert "Cannot page past 20 results" in str(refused.value.body)


def test_search_past_the_cap_moves_the_lower_bound_instead_of_a_full_pull(
    sandbox: SandboxUrls, db_url: str
) -> None:
    crm = HubSpot(access_token="t", host=sandbox.hubspot_url).crm
    connection = _connection(sandbox.hubspot_url)
    with open_store(db_url) as store:
        first, _, _ = _run(store, connection, write=False)
        assert not first.incremental and first.calls == 1 + 1 + 3  # owners, 1 list page, links
        for number, company_id in enumerate(COMPANIES):
            _rename(crm, company_id, f"Renamed {number}")
        second, _, _ = _run(store, connection, write=False)
    # 45 changed, a cap of 20 a query: 20, then from the 20th's date 20 (19 new), then 7
    # (6 new); no window search (nothing was written back)
    assert second.incremental, second.reason
    assert second.calls == FIXED + 3
    assert second.snapshot.to_json() == _full(connection)


def test_our_own_writes_are_not_read_again(sandbox: SandboxUrls, db_url: str) -> None:
    crm = HubSpot(access_token="t", host=sandbox.hubspot_url).crm
    connection = _connection(sandbox.hubspot_url)
    with open_store(db_url) as store:
        _run(store, connection)  # writes all 45 companies' scores
        assert store.load_cache(cached.cache_key("sandbox", connection, STALE)) is not None
        _rename(crm, "1010", "Changed after our write")
        second, _, _ = _run(store, connection, write=False)
        # owners, 1 companies page (only 1010: ours are left out), archived, the window's
        # page (44 of ours still there: its total says so), 3 related searches, 3 batches
        assert second.incremental and second.calls == FIXED + 1 + 1
        assert second.snapshot.to_json() == _full(connection)
        third, _, _ = _run(store, connection, write=False)  # nothing written in between
        assert third.calls == FIXED + 1
        assert third.snapshot.to_json() == _full(connection)


def test_another_change_inside_our_writes_window_is_read(sandbox: SandboxUrls, db_url: str) -> None:
    """A foreign edit between two of our batches: the window's count gives it away."""
    crm = HubSpot(access_token="t", host=sandbox.hubspot_url).crm
    connection = _connection(sandbox.hubspot_url)
    with open_store(db_url) as store:
        _, run_id, comparisons = _run(store, connection, write=False)
        pulled = store.load_cache(cached.cache_key("sandbox", connection, STALE))
        assert pulled is not None
        snapshot = cached._payload(pulled)
        assert snapshot is not None
        early = write_back(connection, STALE, comparisons[:5], snapshot[0])
        _rename(crm, "1040", "Edited during our write-back")
        late = write_back(connection, STALE, comparisons[5:10], snapshot[0])
        assert early.written is not None and late.written is not None
        both = OwnWrites("companies", {**early.written.records, **late.written.records})
        assert len(both.records) == 10 and "1040" not in both.records
        remembered, calls = cached.read_back_writes(STALE, connection, both)
        assert calls == 1 and len(remembered.records) == 10
        store.remember_writes(pulled.source_key, run_id, remembered.to_json())
        second, _, _ = _run(store, connection, write=False)
    # the window holds our 10 and 1040: 11 != 10 on its first page, which holds all 11;
    # the change search outside the window: 1 page, empty
    assert second.incremental and second.calls == FIXED + 1 + 1
    assert second.snapshot.to_json() == _full(connection)
    assert {r.properties["name"] for r in second.snapshot.records("companies")} >= {
        "Edited during our write-back"
    }


def test_an_edit_between_our_pull_and_our_write_is_not_lost(
    sandbox: SandboxUrls, db_url: str
) -> None:
    """Our write stamps its date over the edit; what we read back after it holds the edit."""
    crm = HubSpot(access_token="t", host=sandbox.hubspot_url).crm
    connection = _connection(sandbox.hubspot_url)
    with open_store(db_url) as store:
        first, run_id, comparisons = _run(store, connection, write=False)
        _rename(crm, "1005", "Edited before our write")
        # 45 records: the property read, group and 7 properties created, 1 batch; 1 read back
        assert _write(store, connection, run_id, comparisons, first.snapshot) == 1 + 1 + 7 + 1 + 1
        second, _, _ = _run(store, connection, write=False)
    assert second.incremental and second.calls == FIXED + 1 + 1
    names = {r.id: r.properties["name"] for r in second.snapshot.records("companies")}
    assert names["1005"] == "Edited before our write"
    assert second.snapshot.to_json() == _full(connection)


def _stamp(second: int) -> str:
    return (WINDOW_START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")


WINDOW_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_foreign_edit_among_many_of_our_writes_is_found_by_halving_the_window() -> None:
    """Our 44 writes 1 s apart, 1040's foreign edit among them; the cap is 20 a query.

    Window [0 s, 44 s] holds 45 records, ours 44: halve. [0, 22]: 23 = 23 of ours.
    [22.001, 44]: 22 vs 21, two pages: halve. [22.001, 33]: 11 = 11. [33.001, 44]:
    11 vs 10, one page: read it (1034..1044). Five window pages, not a read of all 45.
    """
    data = big_seed()
    for number, record in enumerate(data["companies"]):
        record["properties"]["hs_lastmodifieddate"] = _stamp(number)
    with running_sandbox(
        data, rate_limit=100_000, search_rate_per_second=1_000, search_cap=CAP
    ) as urls:
        connection = _connection(urls.hubspot_url)
        extra = cached._extra([STALE])
        full = pull(STALE, connection, extra_properties=extra)
        ours = OwnWrites(
            "companies",
            {
                r.id: (r.properties["hs_lastmodifieddate"] or "", dict(r.properties))
                for r in full.snapshot.records("companies")
                if r.id != "1040"
            },
        )
        stale = CrmSnapshot.from_json(full.snapshot.to_json())  # the cache: 1040 as it was
        next(r for r in stale.records("companies") if r.id == "1040").properties["name"] = "Old"
        result = pull(
            STALE,
            connection,
            previous=stale,
            since=WINDOW_START - timedelta(hours=1),
            previous_signature=full.signature,
            extra_properties=extra,
            own_writes=ours,
        )
    assert result.incremental and result.calls == FIXED + 1 + 5
    assert result.changed["companies"] == 11
    assert result.snapshot.to_json() == full.snapshot.to_json()


def test_remembered_writes_belong_to_the_run_that_stored_the_cache(db_url: str) -> None:
    """Kept with that run's cache, and when the same pull is stored again by another
    playbook; the next run's cache (its pull saw them) clears them."""
    key, moment = "sandbox:k", datetime(2026, 11, 2, 9, tzinfo=UTC)
    run = RunInfo(STALE.name, STALE.content_hash, moment, "sandbox", moment)
    with open_store(db_url) as store:
        first = store.record_run(run, [], CacheEntry(key, moment, b"{}", "sig"))
        assert store.remember_writes(key, first, '{"object":"companies","records":{}}')
        cache = store.load_cache(key)
        assert cache is not None and cache.writes_json == '{"object":"companies","records":{}}'
        # the same pull stored again (the next playbook of a shared pull): they stay
        shared = store.record_run(run, [], CacheEntry(key, moment, b"{}", "sig"))
        cache = store.load_cache(key)
        assert cache is not None and cache.writes_json == '{"object":"companies","records":{}}'
        later = CacheEntry(key, moment + timedelta(hours=1), b"{}", "sig")
        second = store.record_run(run, [], later)
        cache = store.load_cache(key)
        assert cache is not None and cache.writes_json is None
        assert not store.remember_writes(key, shared, "{}")  # a run whose cache was replaced
        assert store.remember_writes(key, second, "{}")


def test_two_write_backs_merge_each_record_as_its_latest_write_left_it() -> None:
    first = OwnWrites(
        "companies",
        {
            "1": ("2026-11-02T09:00:00.100Z", {"a_score": "10"}),
            "2": ("2026-11-02T09:00:00.200Z", {"a_score": "20"}),
        },
    )
    second = OwnWrites(
        "companies",
        {
            "2": ("2026-11-02T09:00:05.000Z", {"a_score": "20", "b_score": "7"}),
            "3": ("2026-11-02T09:00:05.001Z", {"b_score": "9"}),
        },
    )
    merged = OwnWrites.from_json(OwnWrites.merge_json(first.to_json(), second.to_json()))
    assert merged.records == {
        "1": ("2026-11-02T09:00:00.100Z", {"a_score": "10"}),
        "2": ("2026-11-02T09:00:05.000Z", {"a_score": "20", "b_score": "7"}),
        "3": ("2026-11-02T09:00:05.001Z", {"b_score": "9"}),
    }
    assert second.merged(first).records["2"] == second.records["2"]  # the later one wins
    assert merged.window() == (1793610000100, 1793610005001)


def test_writes_kept_by_the_previous_release_are_still_read() -> None:
    """A store written before the writes became columns holds them as JSON records."""
    legacy = (
        '{"object":"companies","records":{"7":["2026-11-02T09:00:00.100Z",'
        '{"a_score":"10","name":"Acme"}]}}'
    )
    writes = OwnWrites.from_json(legacy)
    assert writes.records == {"7": ("2026-11-02T09:00:00.100Z", {"a_score": "10", "name": "Acme"})}
    again = OwnWrites.from_json(writes.to_json())  # now kept as Parquet
    assert '"parquet":' in writes.to_json() and again.records == writes.records
    assert again.window() == (1793610000100, 1793610000100)
