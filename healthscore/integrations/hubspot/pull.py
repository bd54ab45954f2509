"""The HubSpot source: the records a playbook needs, in the fewest API calls.

A full pull is: owners, the accounts page by page (list endpoint, 100 a page),
for every other object type the account->type associations (v4 batch read,
1,000 ids a call, each id paged on its own), then those records' properties
(batch read, 100 a call). Never a call per record.

An incremental pull starts from the previous snapshot (kept in the history
store) and asks CRM search for what changed since the last pull
(`hs_lastmodifieddate`, `lastmodifieddate` on contacts): one search per object
type when little changed. Past search's 10,000-result cap it falls back to a
full pull. Records deleted in HubSpot are only noticed by a full pull.

Every call goes through `HubSpotConnection.call`, which holds the rate limits;
retries with backoff (honouring Retry-After) live in the client's urllib3 Retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects.models import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)

from healthscore.core.crm import CrmRecord, CrmSnapshot, Owner
from healthscore.core.playbook import Playbook
from healthscore.errors import SourceError
from healthscore.integrations import Progress
from healthscore.integrations.hubspot.client import HubSpotConfigError, HubSpotConnection, connect

LIST_PAGE = 100
BATCH_READ = 100
ASSOCIATION_BATCH = 1_000
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
OWNER_PAGE = 500

ACCOUNT_PROPERTIES = {
    "companies": {"name", "hubspot_owner_id", "domain"},
    "contacts": {"firstname", "lastname", "email", "hubspot_owner_id"},
}


class SearchCapReached(Exception):
    """More changes than CRM search can return in one query: pull everything instead."""


@dataclass
class PullResult:
    snapshot: CrmSnapshot
    pulled_at: datetime  # pass back as `since` next time
    incremental: bool
    signature: str  # what was pulled; a cache with another signature is not reused
    calls: int = 0
    changed: dict[str, int] = field(default_factory=dict)


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def pull_snapshot(
    playbook: Playbook, *, sandbox: bool = False, progress: Progress | None = None
) -> CrmSnapshot:
    """A full pull for the `score`/`explain` commands (`--source hubspot|sandbox`)."""
    try:
        connection = connect(sandbox=sandbox)
    except HubSpotConfigError as exc:
        raise SourceError(str(exc)) from None
    try:
        return pull(playbook, connection, progress=progress).snapshot
    except SourceError:
        raise
    except Exception as exc:  # HTTP and connection errors after the retries
        where = connection.base_url
        raise SourceError(f"could not read HubSpot at {where}: {_describe(exc)}") from None


def pull(
    playbook: Playbook,
    connection: HubSpotConnection,
    *,
    previous: CrmSnapshot | None = None,
    since: datetime | None = None,
    previous_signature: str | None = None,
    extra_properties: Mapping[str, Iterable[str]] | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Pull what `playbook` needs: incrementally from `previous` when given, else fully.

    `previous` is reused only when `previous_signature` matches what this pull
    needs: a playbook that now reads another property needs a full pull.
    """
    needs = _properties_needed(playbook, extra_properties)
    signature = hashlib.sha256(json.dumps(needs, sort_keys=True).encode()).hexdigest()[:16]
    puller = _Puller(connection, playbook.object, needs, progress)
    started = datetime.now(UTC)
    if previous is not None and since is not None and previous_signature == signature:
        try:
            snapshot, changed = puller.incremental(previous, since - connection.clock_margin)
            return PullResult(snapshot, started, True, signature, puller.calls, changed)
        except SearchCapReached:
            pass
    snapshot = puller.full()
    changed = {kind: len(records) for kind, records in snapshot.objects.items()}
    return PullResult(snapshot, started, False, signature, puller.calls, changed)


def _properties_needed(
    playbook: Playbook, extra: Mapping[str, Iterable[str]] | None
) -> dict[str, list[str]]:
    needs = playbook.required_properties()
    needs.setdefault(playbook.object, set()).update(ACCOUNT_PROPERTIES.get(playbook.object, ()))
    for object_type, names in (extra or {}).items():
        needs.setdefault(object_type, set()).update(names)
    for object_type, names in needs.items():
        names.add(modified_property(object_type))
    return {kind: sorted(names) for kind, names in needs.items()}


class _Puller:
    def __init__(
        self,
        connection: HubSpotConnection,
        account_type: str,
        needs: dict[str, list[str]],
        progress: Progress | None,
    ) -> None:
        self.connection = connection
        self.crm = connection.client.crm
        self.account_type = account_type
        self.needs = needs
        self.progress = progress
        self.calls = 0

    def call(self, function: Any, *args: Any, search: bool = False, **kwargs: Any) -> Any:
        self.calls += 1
        return self.connection.call(function, *args, search=search, **kwargs)

    def report(self, what: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(what, done, total)

    # ------------------------------------------------------------ full pull

    def full(self) -> CrmSnapshot:
        owners = self.owners()
        accounts = list(self.list_records(self.account_type, self.needs[self.account_type]))
        objects: dict[str, list[CrmRecord]] = {self.account_type: accounts}
        account_ids = [a.id for a in accounts]
        for object_type in self.related_types():
            links = self.associations(self.account_type, object_type, account_ids)
            objects[object_type] = self.records_by_id(object_type, links)
        return CrmSnapshot(owners=owners, objects=objects)

    def related_types(self) -> list[str]:
        return [kind for kind in self.needs if kind != self.account_type]

    def owners(self) -> list[Owner]:
        owners: list[Owner] = []
        after: str | None = None
        while True:
            page = self.call(self.crm.owners.owners_api.get_page, limit=OWNER_PAGE, **_after(after))
            owners.extend(
                Owner(str(o.id), o.email, o.first_name, o.last_name) for o in page.results or []
            )
            after = _next_after(page)
            if after is None:
                return owners

    def list_records(self, object_type: str, properties: list[str]) -> Iterator[CrmRecord]:
        after: str | None = None
        done = 0
        while True:
            page = self.call(
                self.crm.objects.basic_api.get_page,
                object_type,
                limit=LIST_PAGE,
                properties=properties,
                archived=False,
                **_after(after),
            )
            for item in page.results or []:
                done += 1
                yield CrmRecord(str(item.id), _properties(item.properties, properties))
            self.report(f"{object_type}", done, None)
            after = _next_after(page)
            if after is None:
                return

    def associations(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """`{to_id: [from_ids]}` for every association of `ids`, following each id's paging."""
        linked: dict[str, list[str]] = {}
        pending: list[tuple[str, str | None]] = [(i, None) for i in ids]
        done = 0
        while pending:
            chunk, pending = pending[:ASSOCIATION_BATCH], pending[ASSOCIATION_BATCH:]
            request = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i, after=a) for i, a in chunk]
            )
            response = self.call(
                self.crm.associations.v4.batch_api.get_page,
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request=request,
            )
            for result in response.results or []:
                source_id = str(result._from.id)
                for target in result.to or []:
                    linked.setdefault(str(target.to_object_id), []).append(source_id)
                after = _next_after(result)
                if after is not None:
                    pending.append((source_id, after))
            done += len(chunk)
            self.report(f"{from_type}→{to_type} associations", done, None)
        return linked

    def records_by_id(self, object_type: str, links: Mapping[str, list[str]]) -> list[CrmRecord]:
        ids = sorted(links, key=_numeric_first)
        properties = self.needs[object_type]
        records: list[CrmRecord] = []
        for start in range(0, len(ids), BATCH_READ):
            chunk = ids[start : start + BATCH_READ]
            request = BatchReadInputSimplePublicObjectId(
                properties=properties, inputs=[SimplePublicObjectId(id=i) for i in chunk]
            )
            response = self.call(
                self.crm.objects.batch_api.read,
                object_type,
                batch_read_input_simple_public_object_id=request,
            )
            for item in response.results or []:
                record_id = str(item.id)
                records.append(
                    CrmRecord(
                        record_id,
                        _properties(item.properties, properties),
                        {
                            self.account_type: sorted(
                                set(links.get(record_id, [])), key=_numeric_first
                            )
                        },
                    )
                )
            self.report(object_type, len(records), len(ids))
        records.sort(key=lambda r: _numeric_first(r.id))
        return records

    # ------------------------------------------------------------ incremental pull

    def incremental(
        self, previous: CrmSnapshot, since: datetime
    ) -> tuple[CrmSnapshot, dict[str, int]]:
        owners = self.owners()
        changed: dict[str, int] = {}
        accounts = {r.id: r for r in previous.records(self.account_type)}
        fresh = self.search_changed(self.account_type, since)
        new_accounts = [r.id for r in fresh if r.id not in accounts]
        for record in fresh:
            accounts[record.id] = record
        changed[self.account_type] = len(fresh)
        objects: dict[str, list[CrmRecord]] = {
            self.account_type: sorted(accounts.values(), key=lambda r: _numeric_first(r.id))
        }
        for object_type in self.related_types():
            known = {r.id: r for r in previous.records(object_type)}
            updated = self.search_changed(object_type, since)
            if updated:
                links = self.associations(object_type, self.account_type, [r.id for r in updated])
                accounts_of = _invert(links)
                for record in updated:
                    mine = sorted(accounts_of.get(record.id, ()), key=_numeric_first)
                    record.associations = {self.account_type: mine}
                    known[record.id] = record
            if new_accounts:  # a new account may come with records that did not change
                links = self.associations(self.account_type, object_type, new_accounts)
                missing = {i: ids for i, ids in links.items() if i not in known}
                for record in self.records_by_id(object_type, missing):
                    known[record.id] = record
                for record_id, account_ids in links.items():
                    if record_id in known and record_id not in missing:
                        mine = known[record_id].associations.setdefault(self.account_type, [])
                        mine.extend(a for a in account_ids if a not in mine)
            changed[object_type] = len(updated)
            objects[object_type] = sorted(known.values(), key=lambda r: _numeric_first(r.id))
        return CrmSnapshot(owners=owners, objects=objects), changed

    def search_changed(self, object_type: str, since: datetime) -> list[CrmRecord]:
        properties = self.needs[object_type]
        modified = modified_property(object_type)
        millis = str(int(since.timestamp() * 1000))
        records: list[CrmRecord] = []
        after: str | None = None
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[Filter(property_name=modified, operator="GTE", value=millis)]
                    )
                ],
                sorts=[{"propertyName": modified, "direction": "ASCENDING"}],
                properties=properties,
                limit=SEARCH_PAGE,
                after=after,
            )
            page = self.call(
                self.crm.objects.search_api.do_search,
                object_type,
                public_object_search_request=request,
                search=True,
            )
            if (page.total or 0) > SEARCH_CAP:
                raise SearchCapReached(object_type)
            records.extend(
                CrmRecord(str(item.id), _properties(item.properties, properties))
                for item in page.results or []
            )
            self.report(f"changed {object_type}", len(records), page.total)
            after = _next_after(page)
            if after is None:
                return records


def _invert(links: Mapping[str, list[str]]) -> dict[str, set[str]]:
    inverted: dict[str, set[str]] = {}
    for target, sources in links.items():
        for source in sources:
            inverted.setdefault(source, set()).add(target)
    return inverted


def _after(after: str | None) -> dict[str, Any]:
    return {"after": after} if after is not None else {}


def _next_after(page: Any) -> str | None:
    paging = getattr(page, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    after = getattr(following, "after", None) if following is not None else None
    return str(after) if after else None


def _properties(values: Mapping[str, Any] | None, wanted: Iterable[str]) -> dict[str, str | None]:
    values = values or {}
    return {name: values.get(name) for name in wanted if values.get(name) is not None}


def _numeric_first(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (1 << 62, record_id)


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"
