"""Pulling CRM data for a scheduled run: incremental from the history store's cache.

A daily run must not re-read a whole portal: the HubSpot source pulls only
what changed since the last pull (`hs_lastmodifieddate`) and merges it into the
cached snapshot. The cache lives in the history store and is written in the
same transaction as the run, so a crashed run never leaves a cache that is
newer than the scores stored with it. File sources are read whole every time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.history.cache import source_cache_key
from healthscore.history.store import CacheEntry
from healthscore.integrations.hubspot.client import HubSpotConnection, connect
from healthscore.integrations.hubspot.writeback import writeback_properties
from healthscore.sources import Progress, SourceError, load_snapshot

API_SOURCES = ("hubspot", "sandbox")


@dataclass
class PulledCrm:
    """A pulled snapshot, how it was pulled, and the cache entry to store with the run."""

    snapshot: CrmSnapshot
    pulled_at: datetime
    incremental: bool
    calls: int
    cache: CacheEntry | None = None

    @property
    def records(self) -> int:
        """Records of every object type in the snapshot (for logs)."""
        return sum(len(records) for records in self.snapshot.objects.values())


def is_api_source(source: str) -> bool:
    """`hubspot` and `sandbox` talk to an API (and can be written back to); files cannot."""
    kind, _, argument = source.partition(":")
    return kind in API_SOURCES and not argument


def connect_source(source: str, token: str | None = None) -> HubSpotConnection:
    """The HubSpot connection of an API source (`sandbox` needs no token)."""
    if not is_api_source(source):
        raise SourceError(f"{source!r} is not a HubSpot source")
    return connect(sandbox=source == "sandbox", token=token)


def cache_key(source: str, connection: HubSpotConnection, playbook: Playbook) -> str:
    return source_cache_key(source, connection.base_url, _needs(playbook))


def pull(
    source: str,
    playbook: Playbook,
    *,
    token: str | None = None,
    load_cache: Callable[[str], CacheEntry | None] | None = None,
    progress: Progress | None = None,
) -> PulledCrm:
    """Pull what the playbook (and its write-back) needs; incrementally when a cache exists."""
    if not is_api_source(source):
        snapshot = load_snapshot(source, playbook, progress=progress)
        return PulledCrm(snapshot, datetime.now(UTC), incremental=False, calls=0)
    from healthscore.integrations.hubspot import pull as hubspot

    connection = connect_source(source, token)
    key = cache_key(source, connection, playbook)
    cached = load_cache(key) if load_cache else None
    previous = (
        CrmSnapshot.from_json(json.loads(cached.snapshot_json), origin="the CRM cache")
        if cached
        else None
    )
    result = hubspot.pull(
        playbook,
        connection,
        previous=previous,
        since=cached.pulled_at if cached else None,
        previous_signature=cached.signature if cached else None,
        extra_properties=_extra(playbook),
        progress=progress,
    )
    entry = CacheEntry(
        key,
        result.pulled_at,
        json.dumps(result.snapshot.to_json(), separators=(",", ":")),
        result.signature,
    )
    return PulledCrm(result.snapshot, result.pulled_at, result.incremental, result.calls, entry)


def _extra(playbook: Playbook) -> dict[str, list[str]]:
    names = writeback_properties(playbook)
    return {playbook.object: names} if names else {}


def _needs(playbook: Playbook) -> Mapping[str, set[str]]:
    needs = {kind: set(props) for kind, props in playbook.required_properties().items()}
    needs.setdefault(playbook.object, set()).update(writeback_properties(playbook))
    return needs
