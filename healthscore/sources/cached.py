"""Pulling CRM data for a scheduled run: incremental from the history store's cache.

A daily run must not re-read a whole portal: the HubSpot source pulls only
what changed since the last pull (`hs_lastmodifieddate`) and merges it into the
cached snapshot. The cache lives in the history store and is written in the
same transaction as the run, so a crashed run never leaves a cache that is
newer than the scores stored with it. File sources are read whole every time.

The invariant (README, `healthscore.integrations.hubspot.pull`): an incremental
run gives exactly the scores a full pull would give at that moment. As a
safety net a full pull still runs at least every `full_pull_every_days`
(default 7, a flow/deployment parameter) and whenever `run --full` asks; the
cached payload (`healthscore.history.cache.pack_snapshot`: the snapshot's columns
as Parquet) carries the date of the last full pull, so its age survives
incremental runs. A cache in another format gets a full pull.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.history.cache import pack_snapshot, source_cache_key, unpack_snapshot
from healthscore.history.store import CacheEntry
from healthscore.integrations import ensure_reachable
from healthscore.integrations.hubspot.client import (
    HubSpotConnection,
    connect,
    unreachable_hint,
)
from healthscore.integrations.hubspot.writeback import OwnWrites, writeback_properties
from healthscore.sources import Progress, SourceError, is_api_source, load_snapshot

FULL_PULL_EVERY_DAYS = 7.0
"""Default age (days) after which the next run pulls fully instead of incrementally."""


@dataclass
class PulledCrm:
    """A pulled snapshot, how it was pulled, and the cache entry to store with the run."""

    snapshot: CrmSnapshot
    pulled_at: datetime
    incremental: bool
    calls: int
    cache: CacheEntry | None = None
    reason: str = ""  # why this kind of pull ran: "--full", "last full pull 7.0 days ago", ...
    shared_by: list[str] = field(default_factory=list)  # the playbooks this pull serves
    # What `read_back_writes` reads to match this pull: the playbook it was made for and
    # the properties it read beyond that playbook's (`_extra`: the others', write-backs)
    lead: Playbook | None = None
    extra_properties: dict[str, list[str]] = field(default_factory=dict)
    associations: str = ""  # how the associations were read (one export, the v4 read and why)

    @property
    def records(self) -> int:
        """Records of every object type in the snapshot (for logs)."""
        return sum(self.snapshot.counts().values())

    def release(self) -> None:
        """Let the snapshot and the packed cache go: the last playbook scored from this
        pull has stored and written back (at 100k accounts the related records alone
        are a few hundred MB, and the report and the actions never read them)."""
        self.snapshot = CrmSnapshot([])
        self.cache = None


def connect_source(source: str, token: str | None = None) -> HubSpotConnection:
    """The HubSpot connection of an API source (`sandbox` needs no token).

    Raises `Unreachable` at once (one line, the fix) when nothing answers there.
    """
    if not is_api_source(source):
        raise SourceError(f"{source!r} is not a HubSpot source")
    connection = connect(sandbox=source == "sandbox", token=token)
    ensure_reachable(connection.base_url, unreachable_hint(source == "sandbox"))
    return connection


def cache_key(
    source: str, connection: HubSpotConnection, playbook: Playbook, also: Sequence[Playbook] = ()
) -> str:
    return source_cache_key(source, connection.base_url, _needs([playbook, *also]))


def pull(
    source: str,
    playbook: Playbook,
    *,
    token: str | None = None,
    load_cache: Callable[[str], CacheEntry | None] | None = None,
    progress: Progress | None = None,
    full: bool = False,
    full_pull_every_days: float = FULL_PULL_EVERY_DAYS,
    connection: HubSpotConnection | None = None,
    also: Sequence[Playbook] = (),
) -> PulledCrm:
    """Pull what the playbook (and its write-back) needs; incrementally when a cache allows.

    `also`: more playbooks of the same `object` scored from this one pull (`run -p a.yaml
    -p b.yaml`): the pull reads the union of what they all need, once, and its cache
    entry is the union's. `full` forces a full pull (`run --full`); otherwise a cache
    whose last full pull is `full_pull_every_days` or more old gets one too.
    `connection`: an already configured one (its own limits) instead of `connect_source`.
    """
    mixed = sorted({p.object for p in also} - {playbook.object})
    if mixed:
        raise SourceError(
            f"one pull serves one scored object: {playbook.name!r} scores {playbook.object}, "
            f"others {', '.join(mixed)} (`pull_by_object` pulls each once)"
        )
    if not is_api_source(source):
        snapshot = load_snapshot(source, playbook, progress=progress)
        return PulledCrm(
            snapshot,
            datetime.now(UTC),
            False,
            0,
            reason=f"{source} is read whole",
            shared_by=[p.name for p in (playbook, *also)],
        )
    from healthscore.integrations.hubspot import pull as hubspot

    connection = connection or connect_source(source, token)
    key = cache_key(source, connection, playbook, also)
    cached = load_cache(key) if load_cache else None
    payload = _payload(cached)
    started = datetime.now(UTC)
    last_full = payload[1] if payload else None
    reason = ""
    if full:
        reason = "--full"
    elif last_full is not None and started - last_full >= timedelta(days=full_pull_every_days):
        age = (started - last_full) / timedelta(days=1)
        reason = f"last full pull {age:.1f} days ago (every {full_pull_every_days:g} days)"
    elif cached is not None and payload is None:
        reason = "the cache is in an older format"
    use = payload is not None and not reason
    result = hubspot.pull(
        playbook,
        connection,
        previous=payload[0] if use and payload else None,
        since=cached.pulled_at if use and cached else None,
        previous_signature=cached.signature if use and cached else None,
        extra_properties=_extra([playbook, *also]),
        extra_lists=_lists(also),
        progress=progress,
        own_writes=OwnWrites.from_json(cached.writes_json)
        if use and cached is not None and cached.writes_json
        else None,
        consume_previous=True,  # unpacked for this pull alone
        extra_labelled={kind for p in also for kind in p.labelled_types()},
    )
    full_at = last_full if result.incremental and last_full else result.pulled_at
    entry = CacheEntry(
        key, result.pulled_at, pack_snapshot(result.snapshot, full_at), result.signature
    )
    return PulledCrm(
        result.snapshot,
        result.pulled_at,
        result.incremental,
        result.calls,
        entry,
        reason or result.reason,
        [p.name for p in (playbook, *also)],
        lead=playbook,
        extra_properties=_extra([playbook, *also]),
        associations=result.associations,
    )


def read_back_writes(
    playbook: Playbook,
    connection: HubSpotConnection,
    written: OwnWrites,
    pulled: PulledCrm | None = None,
) -> tuple[OwnWrites, int]:
    """The written records as the next pull needs them (`hubspot.pull.read_back`); calls.

    `pulled`: the pull the run scored, when it served several playbooks: its records
    are read back with every property that shared pull reads, not only `playbook`'s.
    """
    from healthscore.integrations.hubspot import pull as hubspot

    if pulled is not None and pulled.lead is not None:
        return hubspot.read_back(pulled.lead, connection, written, pulled.extra_properties)
    return hubspot.read_back(playbook, connection, written, _extra([playbook]))


def _payload(cached: CacheEntry | None) -> tuple[CrmSnapshot, datetime] | None:
    """The cached snapshot and its last full pull, or None (no cache, or the old format)."""
    return unpack_snapshot(cached.payload) if cached is not None else None


def _extra(playbooks: Sequence[Playbook]) -> dict[str, list[str]]:
    """What the first playbook's own needs leave out: the write-back properties of all,
    and everything the others read (`hubspot.pull` adds the first's needs itself)."""
    extra: dict[str, set[str]] = {}
    for index, playbook in enumerate(playbooks):
        extra.setdefault(playbook.object, set()).update(writeback_properties(playbook))
        if index:
            for kind, names in playbook.required_properties().items():
                extra.setdefault(kind, set()).update(names)
    return {kind: sorted(names) for kind, names in extra.items() if names}


def _lists(playbooks: Sequence[Playbook]) -> dict[str, set[str]]:
    """The lists the other playbooks of a shared pull read (`Playbook.list_conditions`)."""
    lists: dict[str, set[str]] = {}
    for playbook in playbooks:
        for kind, references in playbook.list_conditions().items():
            lists.setdefault(kind, set()).update(references)
    return lists


def _needs(playbooks: Sequence[Playbook]) -> Mapping[str, set[str]]:
    """The union of what the playbooks read and write back: the cache key's content."""
    needs: dict[str, set[str]] = {}
    for playbook in playbooks:
        for kind, props in playbook.required_properties().items():
            needs.setdefault(kind, set()).update(props)
        needs.setdefault(playbook.object, set()).update(writeback_properties(playbook))
    return needs


def pull_by_object(playbooks: Sequence[Playbook]) -> list[list[Playbook]]:
    """The playbooks grouped by the object they score, in first-seen order: one pull each."""
    groups: dict[str, list[Playbook]] = {}
    for playbook in playbooks:
        groups.setdefault(playbook.object, []).append(playbook)
    return list(groups.values())
