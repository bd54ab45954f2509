"""The invariant, property-based: after any CRM change an incremental run scores like a full pull.

A hypothesis state machine drives random changes through the sandbox's HubSpot
API with the real hubspot-api-client: create/update/archive/merge companies,
create/archive tickets, meetings and contacts, add and remove associations, and
our own write-back of the last run's scores (read back and remembered as the
write-back task does; sometimes right after another edit of a company, which our
write's modification date then covers).
After every step the run's pull goes the way the flow's does (the cache read
from and written to the history store, SQLite and PostgreSQL) and must give
exactly the snapshot, hence the scores, of a fresh full pull. The run's pull reads
the associations from one CRM export (`association_read="export"`), the full pull it
is checked against with the v4 batch read: the two reads agree at every step. 2 x 10 examples
x 10 steps = 200 steps in CI. One sandbox per database: its CRM only grows more
varied from example to example, and the test's list of live ids stays true to it
(a sandbox shared by both databases would have archived ids the second one
still counts as live).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import PublicMergeInput, SimplePublicObjectInput
from hubspot.crm.objects import SimplePublicObjectInputForCreate
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, compare
from healthscore.history import RunInfo, open_store
from healthscore.integrations.hubspot.pull import pull
from healthscore.integrations.hubspot.writeback import write_back
from healthscore.sandbox import SandboxUrls, running_sandbox
from healthscore.sources import cached
from tests.test_stale_pulls import STALE, fast_connection, seed

AS_OF = datetime.now(UTC) + timedelta(days=1)  # every record the run creates is in the past
RELATED = ("tickets", "meetings", "contacts")
EXAMPLES, STEPS = 10, 10
PICK = st.integers(min_value=0, max_value=999)  # an index into a list the CRM decides
KIND = st.sampled_from(RELATED)


def _nth(ids: list[str], pick: int) -> str:
    """The `pick`-th live id (modulo): draws never depend on the CRM's state."""
    return ids[pick % len(ids)]


@pytest.fixture
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(
        seed(), rate_limit=100_000, search_rate_per_second=1_000, export_daily_limit=10_000
    ) as urls:
        yield urls


def _scores(snapshot: CrmSnapshot) -> list[tuple[str, float, str]]:
    return [(s.id, s.score, s.status) for s in Scorer(STALE).score_snapshot(snapshot, AS_OF)]


def test_an_incremental_run_always_scores_like_a_full_pull(
    sandbox: SandboxUrls, db_url: str
) -> None:
    hubspot = HubSpot(access_token="test-token", host=sandbox.hubspot_url)
    crm = hubspot.crm
    connection = fast_connection(sandbox.hubspot_url)
    connection.association_read = "export"  # the run's pull (and the write-back)
    checking = fast_connection(sandbox.hubspot_url)
    checking.association_read = "batch"  # the full pull it must equal
    live = {"companies": ["601", "801"], "tickets": [], "meetings": ["7001", "7801"]}
    live["contacts"] = ["5001"]
    steps = {"runs": 0, "incremental": 0, "writes": 0}

    with open_store(db_url) as store:

        class Crm(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.cache_started = False  # each example starts with a first (full) pull
                self.last: tuple[int, CrmSnapshot] | None = None  # the last run's id, pull

            @rule(named=st.booleans())
            def create_company(self, named: bool) -> None:
                created = crm.companies.basic_api.create(
                    SimplePublicObjectInputForCreate(properties={"name": "Acme"} if named else {})
                )
                live["companies"].append(str(created.id))

            @rule(pick=PICK)
            def rename_company(self, pick: int) -> None:
                crm.companies.basic_api.update(
                    _nth(live["companies"], pick), SimplePublicObjectInput(properties={"name": "B"})
                )

            @rule(pick=PICK)
            def archive_company(self, pick: int) -> None:
                if len(live["companies"]) > 1:
                    target = _nth(live["companies"], pick)
                    crm.companies.basic_api.archive(target)
                    live["companies"].remove(target)

            @rule(pick=PICK, other=PICK)
            def merge_companies(self, pick: int, other: int) -> None:
                primary = _nth(live["companies"], pick)
                rest = [c for c in live["companies"] if c != primary]
                if rest:
                    merged = _nth(rest, other)
                    crm.companies.basic_api.merge(
                        PublicMergeInput(primary_object_id=primary, object_id_to_merge=merged)
                    )
                    live["companies"].remove(merged)

            @rule(kind=KIND, promoter=st.booleans(), link_to=st.none() | PICK)
            def create_record(self, kind: str, promoter: bool, link_to: int | None) -> None:
                properties = (
                    {"nps_category": "promoter" if promoter else "detractor"}
                    if kind == "contacts"
                    else {"hs_timestamp": datetime.now(UTC).isoformat()}
                )
                created = crm.objects.basic_api.create(
                    kind, SimplePublicObjectInputForCreate(properties=properties)
                )
                live[kind].append(str(created.id))
                if link_to is not None:
                    target = _nth(live["companies"], link_to)
                    crm.associations.v4.basic_api.create_default(
                        kind, str(created.id), "companies", target
                    )

            @rule(kind=KIND, pick=PICK)
            def archive_record(self, kind: str, pick: int) -> None:
                if live[kind]:
                    target = _nth(live[kind], pick)
                    crm.objects.basic_api.archive(kind, target)
                    live[kind].remove(target)

            @rule(kind=KIND, pick=PICK, to=PICK)
            def link(self, kind: str, pick: int, to: int) -> None:
                if live[kind]:
                    record, target = _nth(live[kind], pick), _nth(live["companies"], to)
                    crm.associations.v4.basic_api.create_default(kind, record, "companies", target)

            @rule(kind=KIND, pick=PICK, to=PICK)
            def unlink(self, kind: str, pick: int, to: int) -> None:
                if live[kind]:
                    record, target = _nth(live[kind], pick), _nth(live["companies"], to)
                    crm.associations.v4.basic_api.archive(kind, record, "companies", target)

            @rule(pick=PICK, edit_first=st.booleans(), bonus=st.integers(0, 3))
            def write_back_scores(self, pick: int, edit_first: bool, bonus: int) -> None:
                """Our write-back of the last run's scores (plus `bonus`, so values change)."""
                if self.last is None:
                    return
                run_id, snapshot = self.last
                if edit_first:  # another user's edit between our pull and our write
                    self.rename_company(pick)
                scores = Scorer(STALE).score_snapshot(snapshot, AS_OF)
                for score in scores:
                    score.score += bonus
                comparisons = compare(scores, Baseline(), STALE.trend.flat_band)
                written = write_back(connection, STALE, comparisons, snapshot)
                assert written.written is not None
                if written.written.records:
                    remembered, _ = cached.read_back_writes(STALE, connection, written.written)
                    key = cached.cache_key("sandbox", connection, STALE)
                    assert store.remember_writes(key, run_id, remembered.to_json())
                    steps["writes"] += 1

            @invariant()
            def incremental_equals_full(self) -> None:
                started = self.cache_started
                pulled = cached.pull(
                    "sandbox",
                    STALE,
                    load_cache=store.load_cache if started else None,
                    connection=connection,
                )
                run = RunInfo(STALE.name, STALE.content_hash, AS_OF, "sandbox", AS_OF)
                run_id = store.record_run(run, [], pulled.cache)
                self.last = (run_id, pulled.snapshot)
                self.cache_started = True
                assert pulled.incremental is started, pulled.reason
                assert pulled.associations.endswith("from one CRM export (1 status poll)")
                full = pull(STALE, checking, extra_properties=cached._extra([STALE])).snapshot
                assert pulled.snapshot.to_json() == full.to_json()
                assert _scores(pulled.snapshot) == _scores(full)
                steps["runs"] += 1
                steps["incremental"] += pulled.incremental

        run_state_machine_as_test(
            Crm,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )
    # the invariant is checked before the first step and after each step of each example
    assert steps["incremental"] >= EXAMPLES * STEPS // 2
    # write-backs really happened, and often (a draw whose values equal what HubSpot
    # already holds writes nothing: 8 of these draws write on both databases)
    assert steps["writes"] >= EXAMPLES * 3 // 4
    print(steps)
