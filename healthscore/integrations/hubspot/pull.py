"""The HubSpot source: the records a playbook needs, in the fewest API calls.

A full pull is: owners, the accounts page by page (list endpoint, 100 a page),
for every other object type the account->type associations (v4 batch read,
1,000 ids a call, each id paged on its own), then those records' properties
(batch read, 100 a call). Never a call per record.

The invariant: **an incremental pull returns exactly the snapshot a full pull
would return at that moment**, so an incremental run gives exactly its scores.
It starts from the previous snapshot (kept in the history store) and trusts it
only for what HubSpot tells us did not change:

- properties: CRM search for records modified since the last pull
  (`hs_lastmodifieddate`, `lastmodifieddate` on contacts), one search per type;
- deleted accounts: the `archived=true` list of the account type (search never
  returns archived records, and archiving does not bump the modification date);
- merged accounts: the survivor is modified, so search returns it with
  `hs_merged_object_ids`; those ids leave the snapshot (the merged-away id is in
  neither list; an archived survivor's merged ids are read from the archived list);
- associations: re-read for every account on every run because creating or
  removing an association bumps neither record's modification date: one CRM export
  of the accounts with their associated ids (`exports`, ~3 calls whatever the
  portal's size), or where that cannot serve, the v4 batch read (1,000 ids a call).
  Related records no account links to any more leave the snapshot (a ticket
  deleted as spam is archived, so it leaves the association read too); linked
  ids the cache does not hold are batch-read.

Call budget for A accounts, T related types, C changed/new related records,
D archived accounts (HubSpot keeps them 90 days), O owners, and X the association
read: 3 calls (export start, one status poll, the file; a poll more for each wait)
or T*ceil(A/1000) with the v4 batch read:
  full:        ceil(O/500) + ceil(A/100) + X + sum over types ceil(R_t/100)
  incremental: ceil(O/500) + (1+T) searches (+1 a page of 200 results,
               +1 for our write-back's range when the last run wrote)
               + max(1, ceil(D/100)) + X + sum ceil(C_t/100) for unseen ids
so 10,000 companies with 4 related types cost about 10 calls plus a batch read per
100 newly linked records (47 with the v4 read), against several hundred for a full
pull. The export is used where it costs fewer calls than the v4 read
(`exports.worth_exporting`), for the standard object types whose labels no
playbook reads; a refused, failed, late or unreadable export falls back to the v4
read, and the run summary says which read ran and why. Past search's
10,000-result cap the search goes on from the last modification date it read
(sorted ascending: HubSpot's documented workaround); only more than 10,000
changes within one millisecond would need a full pull.

Our own write-back bumps `hs_lastmodifieddate` on every record it writes, so
without care the next search would return every record we wrote (every company
on a first run). After the write-back the written records are read back (batch
read, `read_back`: one call per 100 written) and kept with their modification
date (`OwnWrites`, with the cached snapshot). The next pull takes those values,
leaves the range of those dates out of the change search, and spends one search
page on that range: a record someone changed after our read has a later date
(the change search returns it), and any other record inside the range makes its
count differ from ours; such a range is halved until the others fit on a page
(`window_changed`). An edit someone made between our pull and our write is in
what we read back. So: one batch read per 100 written records and one search
call, instead of a search page per 200 written records (and a full pull past
10,000 of them).

A record restored from HubSpot's
recycle bin keeps its old modification date; the periodic full pull (the flow's
`full_pull_every_days`, default 7) brings it back.

Pages become columns as they arrive (`frame.FrameBuilder`): a pull never holds
the portal's records as Python objects, and the incremental pull merges the
cached columns with what changed (`frame.ObjectFrame`), never record by record.

What a playbook reads beside records, on every pull (full or incremental, since list
memberships and labels change no modification date): each list a list-membership
condition names, once per list (`GET /crm/v3/lists/object-type-id/{objectTypeId}/name/
{listName}`, or `GET /crm/v3/lists/{listId}` for an id, then `GET /crm/v3/lists/{listId}/
memberships` 250 a page with `after`; hubspot-api-client `hubspot/crm/lists/api/
lists_api.py` and `memberships_api.py`), plus one `GET /crm-object-schemas/v3/schemas/
{objectType}` (`hubspot/crm/schemas/api/core_api.py`) for each custom object type read,
which gives its object type id; association labels come with the v4 association read
(`associationTypes[].label`) at no extra call.

Every call goes through `HubSpotConnection.call`, which holds the rate limits;
retries with backoff (honouring Retry-After) live in the client's urllib3 Retry.
The batch reads (records, associations, the read-back) run `READERS` at a time, so
the rate limit, not each call's round trip, sets a large pull's pace; pages of a list
follow their cursor one after the other.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from healthscore.core.crm import CrmList, CrmSnapshot, Owner, association_ids, is_custom_object
from healthscore.core.frame import CrmFrame, FrameBuilder, ObjectFrame, sorted_by_id
from healthscore.core.playbook import Playbook
from healthscore.errors import SourceError
from healthscore.integrations import Progress, describe_error, ensure_reachable
from healthscore.integrations.hubspot.client import (
    HubSpotConfigError,
    HubSpotConnection,
    connect,
    unreachable_hint,
)
from healthscore.integrations.hubspot.exports import (
    EXPORT_NAMES,
    AssociationExport,
    ExportUnusable,
    worth_exporting,
)
from healthscore.integrations.hubspot.writeback import OwnWrites, epoch_millis

LIST_PAGE = 100
BATCH_READ = 100
ASSOCIATION_BATCH = 1_000
_EDGE_SCHEMA = {"id": pl.String, "to": pl.String}
SEARCH_PAGE = 200
OWNER_PAGE = 500
MEMBERSHIP_PAGE = 250  # memberships_api.get_page: "The maximum `limit` is 250."
MERGED_IDS = "hs_merged_object_ids"
READERS = 3  # bulk reads in flight at once (`_Puller.read_many`)

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
    reason: str = ""  # why this kind of pull ran, for the run summary
    associations: str = ""  # how the associations were read, for the run summary


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
    ensure_reachable(connection.base_url, unreachable_hint(sandbox))
    try:
        return pull(playbook, connection, progress=progress).snapshot
    except SourceError:
        raise
    except Exception as exc:  # HTTP and connection errors after the retries
        where = connection.base_url
        raise SourceError(f"could not read HubSpot at {where}: {describe_error(exc)}") from None


def pull(
    playbook: Playbook,
    connection: HubSpotConnection,
    *,
    previous: CrmSnapshot | None = None,
    since: datetime | None = None,
    previous_signature: str | None = None,
    extra_properties: Mapping[str, Iterable[str]] | None = None,
    progress: Progress | None = None,
    own_writes: OwnWrites | None = None,
    extra_lists: Mapping[str, Iterable[str]] | None = None,
    consume_previous: bool = False,
    extra_labelled: Iterable[str] = (),
) -> PullResult:
    """Pull what `playbook` needs: incrementally from `previous` when given, else fully.

    `previous` is reused only when `previous_signature` matches what this pull
    needs: a playbook that now reads another property needs a full pull.
    `own_writes`: what the write-back wrote after `previous` was pulled; records
    whose only change since is ours are not searched for again (`_Puller.incremental`).
    `extra_lists` (`{object type: list names or ids}`): more lists to read, e.g. those
    of other playbooks scored from this pull. `consume_previous`: `previous` is the
    caller's to lose; its frames are dropped as they are merged (a smaller peak).
    `extra_labelled`: object types whose association labels other playbooks scored
    from this pull read (`Playbook.labelled_types`): read with their labels.
    """
    puller = _puller(playbook, connection, extra_properties, progress)
    puller.labelled = playbook.labelled_types() | set(extra_labelled)
    needs = puller.needs
    signature = hashlib.sha256(json.dumps(needs, sort_keys=True).encode()).hexdigest()[:16]
    started = datetime.now(UTC)
    if previous is None or since is None:
        reason = "no cached snapshot"
    elif previous_signature != signature:
        reason = "the playbook reads other properties than the cached snapshot holds"
    else:
        try:
            snapshot, changed = puller.incremental(
                previous, since - connection.clock_margin, own_writes, consume_previous
            )
            snapshot = _with_lists(puller, playbook, snapshot, extra_lists)
            reason = f"changes since {since.isoformat(timespec='seconds')}"
            return PullResult(
                snapshot,
                started,
                True,
                signature,
                puller.calls,
                changed,
                reason,
                puller.association_read(),
            )
        except SearchCapReached as exc:
            reason = (
                f"more than {connection.search_cap:,} {exc} changed in one millisecond "
                "since the last pull"
            )
    snapshot = _with_lists(puller, playbook, puller.full(), extra_lists)
    changed = snapshot.counts()
    return PullResult(
        snapshot,
        started,
        False,
        signature,
        puller.calls,
        changed,
        reason,
        puller.association_read(),
    )


def _with_lists(
    puller: _Puller,
    playbook: Playbook,
    snapshot: CrmSnapshot,
    extra: Mapping[str, Iterable[str]] | None = None,
) -> CrmSnapshot:
    """The snapshot with the custom object schemas and the lists the playbook (and
    `extra`, `{object type: list names or ids}`) reads, each list once."""
    frame = snapshot.frame
    frame.schemas = [puller.schema(kind) for kind in puller.needs if is_custom_object(kind)]
    wanted = {kind: set(refs) for kind, refs in playbook.list_conditions().items()}
    for kind, references in (extra or {}).items():
        wanted.setdefault(kind, set()).update(references)
    frame.lists = [
        puller.list_members(reference, frame.type_id(kind))
        for kind, references in sorted(wanted.items())
        for reference in sorted(references)
    ]
    return snapshot


def read_back(
    playbook: Playbook,
    connection: HubSpotConnection,
    written: OwnWrites,
    extra_properties: Mapping[str, Iterable[str]] | None = None,
) -> tuple[OwnWrites, int]:
    """The records just written, read back as the next pull needs them; and the calls.

    A batch read (100 ids a call) of every property the pull asks for. What it
    returns is exact as of the modification date it returns with it, even when
    someone else edited the record between our pull and our write (our write's
    date then covers their edit, and only this read sees it) or after our write
    (a later date). Records gone since (archived) are left out: the archived
    list of the next pull removes them.
    """
    object_type = playbook.object
    puller = _puller(playbook, connection, extra_properties, None)
    properties = puller.needs[object_type]
    modified = modified_property(object_type)
    remembered = OwnWrites(object_type)
    ids = sorted(written.ids(), key=_numeric_first)
    for response in puller.batch_read(object_type, properties, ids):
        for item in response.get("results") or []:
            values = _properties(item.get("properties"), properties)
            stamp = values.get(modified)
            if stamp:
                remembered.add(str(item["id"]), stamp, values)
    return remembered, puller.calls


def _puller(
    playbook: Playbook,
    connection: HubSpotConnection,
    extra_properties: Mapping[str, Iterable[str]] | None,
    progress: Progress | None,
) -> _Puller:
    """A puller asking for what the playbook needs (a custom object: its display name too)."""
    needs = _properties_needed(playbook, extra_properties)
    puller = _Puller(connection, playbook.object, needs, progress)
    if is_custom_object(playbook.object):  # its name is its primary display property
        shown = puller.schema(playbook.object).get("primaryDisplayProperty")
        if shown and shown not in needs[playbook.object]:
            needs[playbook.object] = sorted([*needs[playbook.object], str(shown)])
    return puller


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
        self._counting = threading.Lock()
        # association labels read with the associations: {type: {record id: {account id:
        # [labels]}}} (the labels of the account -> record association types)
        self.labels: dict[str, dict[str, dict[str, list[str]]]] = {}
        self.schemas: dict[str, dict[str, Any]] = {}  # custom object types, by the name used
        self.labelled: set[str] = set()  # types whose labels a playbook reads: the v4 read
        self.export: AssociationExport | None = None  # `start_export`
        self.exported: set[str] | None = None  # the accounts the export's file lists
        self.export_failed = ""  # why an export was refused or not used
        self.v4_types: list[str] = []  # types whose associations the v4 batch read read
        self.v4_why: dict[str, str] = {}  # type -> why the v4 read, not the export, read it

    def call(self, function: Any, *args: Any, search: bool = False, **kwargs: Any) -> Any:
        self.calls += 1
        return self.connection.call(function, *args, search=search, **kwargs)

    def read(self, function: Any, *args: Any, search: bool = False, **kwargs: Any) -> Any:
        """`call` for the bulk reads: HubSpot's JSON answer (`HubSpotConnection.call_json`)."""
        with self._counting:
            self.calls += 1
        return self.connection.call_json(function, *args, search=search, **kwargs)

    def read_many(
        self, function: Any, requests: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]
    ) -> Iterator[Any]:
        """`read` of each `(args, kwargs)`, answers in request order, `READERS` at a time.

        The rate limiter, not a call's round trip, then sets the pace: one call at a
        time leaves the limit unused while HubSpot answers and while we parse (a
        pull of 100k companies made 17.4 calls/s of the 18.6 allowed). At most
        `2 * READERS` answers wait to be consumed; an error is raised in order.
        """
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="hubspot-read") as pool:
            pending: deque[Future[Any]] = deque()
            try:
                for args, kwargs in requests:
                    pending.append(pool.submit(self.read, function, *args, **kwargs))
                    if len(pending) >= 2 * READERS:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def report(self, what: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(what, done, total)

    # ------------------------------------------------------------ full pull

    def full(self) -> CrmSnapshot:
        owners = self.owners()
        accounts = self.list_records(self.account_type, self.needs[self.account_type])
        self.start_export(len(accounts))
        objects: dict[str, ObjectFrame] = {self.account_type: accounts}
        account_ids = accounts.ids.to_list()
        for object_type in self.related_types():
            links: dict[str, list[str]] = {}
            edges = self.account_edges(object_type, account_ids)
            for record_id, account_id in edges.iter_rows():
                links.setdefault(record_id, []).append(account_id)
            del edges
            objects[object_type] = self.records_by_id(object_type, links)
        return CrmSnapshot(owners, frame=CrmFrame(objects))

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

    def list_records(self, object_type: str, properties: list[str]) -> ObjectFrame:
        """Every live record of the type (list endpoint), in the order HubSpot lists them."""
        builder = FrameBuilder()
        after: str | None = None
        while True:
            page = self.read(
                self.crm.objects.basic_api.get_page,
                object_type,
                limit=LIST_PAGE,
                properties=properties,
                archived=False,
                **_after(after),
            )
            for item in page.get("results") or []:
                builder.add(str(item["id"]), _properties(item.get("properties"), properties))
            self.report(f"{object_type}", len(builder), None)
            after = _next_after(page)
            if after is None:
                return builder.frame()

    # ------------------------------------------------------------ associations

    def start_export(self, accounts: int) -> None:
        """Start the export that reads every account's associations (`exports`), when
        it costs fewer calls than the v4 read of `accounts` accounts would; the types
        whose labels a playbook reads, and custom objects, stay with the v4 read."""
        types = [
            kind
            for kind in self.related_types()
            if kind in EXPORT_NAMES and kind not in self.labelled
        ]
        for kind in self.related_types():
            if kind in self.labelled:
                self.v4_why[kind] = "its association labels are read"
            elif kind not in EXPORT_NAMES or self.account_type not in EXPORT_NAMES:
                self.v4_why[kind] = "a custom object"
        mode = self.connection.association_read
        if self.account_type not in EXPORT_NAMES or not types or mode == "batch":
            return
        if mode == "auto" and not worth_exporting(types, accounts, ASSOCIATION_BATCH):
            for kind in types:
                self.v4_why[kind] = "no more calls than an export"
            return
        exports = self.connection.once.crm.exports.public_exports_api
        try:
            self.export = AssociationExport.start(
                lambda body: self.read(exports.start, body),
                self.account_type,
                types,
                call=lambda task: self.read(self.crm.exports.public_exports_api.get_status, task),
                download=self.download,
                progress=lambda what: self.report(what, 0, None),
                wait=self.connection.export_wait,
            )
        except ExportUnusable as exc:
            self.export_failed = str(exc)

    def download(self, url: str) -> bytes:
        with self._counting:
            self.calls += 1
        return self.connection.download(url)

    def account_edges(self, object_type: str, account_ids: Sequence[str]) -> pl.DataFrame:
        """Every association of the accounts to `object_type` records (`association_edges`'s
        table): from the export when it covers the type, else the v4 batch read.

        Accounts the export's file does not list (created after it started) are read
        with the v4 read; an export that turns out unusable gives way to the v4 read
        for every type (`export_failed` says why).
        """
        export = self.export
        if export is not None and object_type in export.types:
            try:
                edges = export.edges(object_type, account_ids)
                if self.exported is None:
                    self.exported = export.exported_ids()
                later = [i for i in account_ids if i not in self.exported]
                if later:
                    edges = pl.concat(
                        [edges, self.association_edges(self.account_type, object_type, later)]
                    )
                return sorted_by_id(edges, "to")
            except ExportUnusable as exc:
                self.export, self.export_failed = None, str(exc)
        self.v4_types.append(object_type)
        return self.association_edges(self.account_type, object_type, account_ids)

    def association_read(self) -> str:
        """How this pull read the associations, for the run summary."""
        parts = []
        if self.export is not None:
            kinds = [k for k in self.export.types if k not in self.v4_types]
            polls = self.export.polls
            parts.append(
                f"{', '.join(kinds)} from one CRM export ({polls} status "
                f"poll{'s' if polls != 1 else ''})"
            )
        if self.v4_types:
            if self.export_failed:
                why = f": {self.export_failed}"
            else:  # each type's own reason, the types of one reason together
                reasons: dict[str, list[str]] = {}
                for kind in self.v4_types:
                    reasons.setdefault(self.v4_why.get(kind, "asked for"), []).append(kind)
                if len(reasons) == 1:
                    why = f": {next(iter(reasons))}"
                else:
                    why = " (" + "; ".join(f"{', '.join(k)}: {r}" for r, k in reasons.items()) + ")"
            parts.append(f"{', '.join(self.v4_types)} with the v4 batch read{why}")
        return "associations: " + "; ".join(parts) if parts else ""

    def association_edges(self, from_type: str, to_type: str, ids: Sequence[str]) -> pl.DataFrame:
        """Every association of `ids` as a table: `id` (the `to_type` record), `to` (the
        `from_type` record), each pair once, ordered by `to` as `_pairs` orders a
        record's accounts. Two columns instead of a list per record: the 100k-account
        incremental pull holds no `{id: [ids]}` of half a million meetings."""
        targets: list[str] = []
        sources: list[str] = []
        for target_id, source_id in self.association_pairs(from_type, to_type, ids):
            targets.append(target_id)
            sources.append(source_id)
        edges = pl.DataFrame({"id": targets, "to": sources}, schema=_EDGE_SCHEMA)
        del targets, sources
        return sorted_by_id(edges.unique(maintain_order=True), "to")

    def association_pairs(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> Iterator[tuple[str, str]]:
        """(to id, from id) for every association of `ids`, following each id's paging;
        the labels go to `self.labels[to_type]`.

        Batches of 1,000 ids (`read_many`); the ids with more pages go again in the next
        round, from where their page ended.
        """
        labels = self.labels.setdefault(to_type, {})
        # each answer names its account anew: one string per account, not per association
        # (2M associations at 100k accounts would be 2M copies of 100k ids, ~110 MB)
        canonical = {i: i for i in ids}
        pending: list[tuple[str, str | None]] = [(i, None) for i in ids]
        done = 0
        while pending:
            chunks = [
                pending[start : start + ASSOCIATION_BATCH]
                for start in range(0, len(pending), ASSOCIATION_BATCH)
            ]
            pending = []
            requests = (
                (
                    (from_type, to_type),
                    {
                        "batch_input_public_fetch_associations_batch_request": {
                            "inputs": [{"id": i, **_after(a)} for i, a in chunk]
                        }
                    },
                )
                for chunk in chunks
            )
            answers = self.read_many(self.crm.associations.v4.batch_api.get_page, requests)
            for chunk, response in zip(chunks, answers, strict=True):
                for result in response.get("results") or []:
                    source_id = str(result["from"]["id"])
                    source_id = canonical.get(source_id, source_id)
                    for target in result.get("to") or []:
                        target_id = str(target["toObjectId"])
                        yield target_id, source_id
                        named = _labels(target)
                        if named:
                            labels.setdefault(target_id, {})[source_id] = named
                    after = _next_after(result)
                    if after is not None:
                        pending.append((source_id, after))
                done += len(chunk)
                self.report(f"{from_type}→{to_type} associations", done, None)

    def records_by_id(self, object_type: str, links: Mapping[str, list[str]]) -> ObjectFrame:
        """The records of `links`' ids (batch read), each linked to its accounts, in id order."""
        ids = sorted(links, key=_numeric_first)
        properties = self.needs[object_type]
        records = FrameBuilder()
        for response in self.batch_read(object_type, properties, ids):
            for item in response.get("results") or []:
                record_id = str(item["id"])
                records.add(
                    record_id,
                    _properties(item.get("properties"), properties),
                    {self.account_type: _pairs(links.get(record_id, []))},
                    self.labels_of(object_type, record_id),
                )
            self.report(object_type, len(records), len(ids))
        return records.frame().sorted_by_id()

    def batch_read(
        self, object_type: str, properties: Sequence[str], ids: Sequence[str]
    ) -> Iterator[Any]:
        """The answers (JSON) of batch reads of `ids`, 100 a call, in order (`read_many`)."""
        requests = (
            (
                (object_type,),
                {
                    "batch_read_input_simple_public_object_id": _batch_read_body(
                        properties, ids[start : start + BATCH_READ]
                    )
                },
            )
            for start in range(0, len(ids), BATCH_READ)
        )
        return self.read_many(self.crm.objects.batch_api.read, requests)

    def labels_of(self, object_type: str, record_id: str) -> dict[str, dict[str, list[str]]]:
        """A record's association labels to the accounts, as the v4 read gave them."""
        mine = self.labels.get(object_type, {}).get(record_id)
        return {self.account_type: mine} if mine else {}

    # ------------------------------------------------------------ lists and schemas

    def schema(self, object_type: str) -> dict[str, Any]:
        """A custom object type's schema (`GET /crm-object-schemas/v3/schemas/{objectType}`),
        read once a pull: its names, object type id and primary display property, as a
        snapshot's `schemas` entry holds them."""
        if object_type in self.schemas:
            return self.schemas[object_type]
        try:
            found = self.call(self.connection.client.crm.schemas.core_api.get_by_id, object_type)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise SourceError(
                    f"HubSpot has no custom object {object_type!r}: use its object type id "
                    "(Settings > Objects > Custom objects, e.g. 2-1234567) or its fully "
                    "qualified name (p<portal id>_<name>)"
                ) from None
            raise
        self.schemas[object_type] = {
            "name": found.name,
            "objectTypeId": found.object_type_id,
            "fullyQualifiedName": found.fully_qualified_name,
            "primaryDisplayProperty": found.primary_display_property,
        }
        return self.schemas[object_type]

    def list_members(self, reference: str, object_type_id: str) -> CrmList:
        """A list and its members, once a run: found by id (all digits) or by name on
        the object type, then every page of its memberships (`after`, 250 a page)."""
        lists = self.connection.client.crm.lists
        try:
            if reference.isdigit():
                found = self.call(lists.lists_api.get_by_id, reference).list
            else:
                found = self.call(lists.lists_api.get_by_name, reference, object_type_id).list
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise SourceError(
                    f"HubSpot has no list {reference!r} of object type {object_type_id}: a "
                    "list condition names a list of the records it reads (the scored "
                    "object's in `segment` and `when`); check its name in HubSpot > Lists"
                ) from None
            raise
        members: list[str] = []
        after: str | None = None
        while True:
            page = self.call(
                lists.memberships_api.get_page,
                found.list_id,
                limit=MEMBERSHIP_PAGE,
                **_after(after),
            )
            members.extend(str(m.record_id) for m in page.results or [])
            self.report(f"list {found.name}", len(members), page.total)
            after = _next_after(page)
            if after is None:
                break
        return CrmList(
            name=str(found.name),
            object_type_id=str(found.object_type_id),
            members=frozenset(members),
            list_id=str(found.list_id),
        )

    # ------------------------------------------------------------ incremental pull

    def incremental(
        self,
        previous: CrmSnapshot,
        since: datetime,
        own: OwnWrites | None = None,
        consume: bool = False,
    ) -> tuple[CrmSnapshot, dict[str, int]]:
        """The snapshot a full pull would return now, from `previous` and what changed.

        `consume`: each type's frame leaves `previous` once merged (the caller holds
        no other use of it), so old and new frames of every type never coexist.

        Accounts: the cached ones, updated and added from the change search,
        minus the archived ones (`archived=true` list) and the ids merged into
        another (`hs_merged_object_ids` of the merge's survivor, live or archived).
        Related records: exactly the ids the association read of every account
        returns now; cached properties for those the change search did not
        return, a batch read for ids the cache does not hold.
        """
        cached = previous.frame.objects.get(self.account_type, ObjectFrame.empty())
        self.start_export(len(cached))  # HubSpot prepares it while the changes are read
        owners = self.owners()
        changed: dict[str, int] = {}
        if own is not None and own.object_type != self.account_type:
            own = None
        if own is not None:
            cached = self.with_own_writes(cached, own)
        skip = own.window() if own is not None else None
        fresh, merged = self.search_changed(self.account_type, since, merges=True, skip=skip)
        archived, merged_away = self.archived_ids(self.account_type)
        if own is not None:
            accounted = set(fresh.ids.to_list()) | archived | merged | merged_away
            more, more_merged = self.window_changed(own, accounted)
            fresh = ObjectFrame.concat([fresh, more]).last_per_id()
            merged |= more_merged
        accounts = (
            ObjectFrame.concat([cached.where_ids(fresh.ids, invert=True), fresh])
            .where_ids(archived | merged | merged_away, invert=True)
            .sorted_by_id()
        )
        changed[self.account_type] = len(fresh)
        objects: dict[str, ObjectFrame] = {self.account_type: accounts}
        account_ids = accounts.ids.to_list()
        if consume:
            previous.frame.objects.pop(self.account_type, None)
        for object_type in self.related_types():
            edges = self.account_edges(object_type, account_ids)
            linked = edges.get_column("id").unique(maintain_order=True)
            updated, _ = self.search_changed(object_type, since)
            cached = previous.frame.objects.get(object_type, ObjectFrame.empty())
            known = ObjectFrame.concat(
                [cached.where_ids(updated.ids, invert=True), updated]
            ).where_ids(linked)
            del cached
            if consume:
                previous.frame.objects.pop(object_type, None)
            unseen = linked.filter(~linked.is_in(known.ids.implode()))
            missing: dict[str, list[str]] = {}
            for record_id, account_id in edges.filter(
                pl.col("id").is_in(unseen.implode())
            ).iter_rows():
                missing.setdefault(record_id, []).append(account_id)
            merged_frame = ObjectFrame.concat([known, self.records_by_id(object_type, missing)])
            changed[object_type] = len(updated)
            labels = self.labels.get(object_type, {})  # as the association read gave them now
            objects[object_type] = merged_frame.linked(
                self.account_type, edges, labels
            ).sorted_by_id()
        return CrmSnapshot(owners, frame=CrmFrame(objects)), changed

    def with_own_writes(self, accounts: ObjectFrame, own: OwnWrites) -> ObjectFrame:
        """The cached accounts, those we wrote as HubSpot held them right after (`read_back`)."""
        updated = ObjectFrame(own.values(accounts.ids, self.needs[self.account_type]), {})
        return ObjectFrame.concat([accounts.where_ids(updated.ids, invert=True), updated])

    def archived_ids(self, object_type: str) -> tuple[set[str], set[str]]:
        """Ids in HubSpot's recycle bin, and the ids merged into those (`archived=true` list).

        HubSpot keeps archived records 90 days; one page per 100 of them. A
        merged-away id is in neither list: it is only named by its survivor.
        """
        archived: set[str] = set()
        merged: set[str] = set()
        after: str | None = None
        while True:
            page = self.read(
                self.crm.objects.basic_api.get_page,
                object_type,
                limit=LIST_PAGE,
                properties=[MERGED_IDS],
                archived=True,
                **_after(after),
            )
            for item in page.get("results") or []:
                archived.add(str(item["id"]))
                merged.update(_merged_ids(item.get("properties")))
            after = _next_after(page)
            if after is None:
                return archived, merged

    def search_changed(
        self,
        object_type: str,
        since: datetime,
        *,
        merges: bool = False,
        skip: tuple[int, int] | None = None,
    ) -> tuple[ObjectFrame, set[str]]:
        """Records modified at or after `since` (each once, as last returned), and
        (`merges`) the ids merged into them.

        A merge bumps the survivor's modification date and lists the merged id in
        its `hs_merged_object_ids`; the merged id itself leaves every endpoint.
        `skip`: a closed range of modification dates (epoch ms) left out, our own
        write-back's (`OwnWrites.window`), read by `window_changed` instead.
        """
        start = int(since.timestamp() * 1000)
        ranges: list[tuple[int, int | None]] = [(start, None)]
        if skip is not None:
            ranges = [(start, skip[0] - 1), (skip[1] + 1, None)]
        return self.search_ranges(object_type, ranges, merges=merges)

    def search_ranges(
        self,
        object_type: str,
        ranges: Sequence[tuple[int, int | None]],
        *,
        merges: bool = False,
    ) -> tuple[ObjectFrame, set[str]]:
        """Records whose modification date (epoch ms) is in any of the closed `ranges`.

        One query (a filter group per range), sorted by modification date ascending.
        Past the search cap (10,000 results a query, `HubSpotConnection.search_cap`)
        the query starts again from the last date read, HubSpot's documented way
        to page further ("Search the CRM": sort by a date and move its lower bound);
        ids read twice (the same millisecond) count once, as last returned. Raises
        `SearchCapReached` only when more than a cap's worth of records share one
        millisecond.
        """
        modified = modified_property(object_type)
        cap = self.connection.search_cap
        records = FrameBuilder()
        merged: set[str] = set()
        low = min(start for start, _ in ranges)
        while True:
            bounded = [(max(start, low), end) for start, end in ranges if end is None or end >= low]
            if not bounded:
                return records.frame().last_per_id(), merged
            after: str | None = None
            read = 0
            last: int | None = None
            while True:
                page = self.search_page(object_type, bounded, merges=merges, after=after)
                merged |= self.page_records(object_type, page, records)
                for item in page.get("results") or []:
                    read += 1
                    last = epoch_millis((item.get("properties") or {}).get(modified)) or last
                self.report(f"changed {object_type}", len(records), page.get("total"))
                after = _next_after(page)
                if after is None:
                    return records.frame().last_per_id(), merged
                if read >= cap:
                    break  # the next page would start past the cap: move the lower bound
            if last is None or last <= low:
                raise SearchCapReached(object_type)
            low = last

    def search_page(
        self,
        object_type: str,
        ranges: Sequence[tuple[int, int | None]],
        *,
        merges: bool = False,
        after: str | None = None,
    ) -> Any:
        """One page (200) of the records modified within the closed `ranges` (epoch ms)."""
        properties = self.needs[object_type]
        modified = modified_property(object_type)
        groups = []
        for start, end in ranges:
            bounds = [{"propertyName": modified, "operator": "GTE", "value": str(start)}]
            if end is not None:
                bounds.append({"propertyName": modified, "operator": "LTE", "value": str(end)})
            groups.append({"filters": bounds})
        request = {  # PublicObjectSearchRequest
            "filterGroups": groups,
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": [*properties, MERGED_IDS] if merges else properties,
            "limit": SEARCH_PAGE,
            **_after(after),
        }
        return self.read(
            self.crm.objects.search_api.do_search,
            object_type,
            public_object_search_request=request,
            search=True,
        )

    def page_records(self, object_type: str, page: Any, records: FrameBuilder) -> set[str]:
        """Add a search page's records (the properties this pull needs) to `records`;
        the ids merged into them."""
        properties = self.needs[object_type]
        merged: set[str] = set()
        for item in page.get("results") or []:
            records.add(str(item["id"]), _properties(item.get("properties"), properties))
            merged |= _merged_ids(item.get("properties"))
        return merged

    def window_changed(self, own: OwnWrites, accounted: set[str]) -> tuple[ObjectFrame, set[str]]:
        """Other changes among our own writes' modification dates, read only where they are.

        Inside `own.window()` every record we wrote and nobody touched since still
        has the date we remembered. One search page on a range tells how many
        records it holds now (`total`); when that is the number of our records
        there that have not left it (`accounted`: returned by the change search
        with a later date, archived or merged), the range holds only our writes.
        Otherwise a range that fits on that page is read from it, and a larger one
        is halved and each half checked the same way: a few foreign edits among N
        of our writes cost about 2 log2(N/200) pages, not N/200.
        """
        window = own.window()
        if window is None:
            return ObjectFrame.empty(), set()
        dates = sorted(
            stamp
            for record_id, modified in own.stamps()
            if record_id not in accounted and (stamp := epoch_millis(modified)) is not None
        )
        records = FrameBuilder()
        merged: set[str] = set()
        pending = [window]
        while pending:
            low, high = pending.pop()
            ours = bisect.bisect_right(dates, high) - bisect.bisect_left(dates, low)
            page = self.search_page(self.account_type, [(low, high)], merges=True)
            if page.get("total") == ours:
                continue
            if _next_after(page) is None:  # the whole range is on this page
                merged |= self.page_records(self.account_type, page, records)
            elif low == high:  # more than a page within one millisecond: page through it
                found, ids = self.search_ranges(self.account_type, [(low, high)], merges=True)
                for row in range(len(found)):
                    records.add(found.ids[row], found.properties(row))
                merged |= ids
            else:
                middle = (low + high) // 2
                pending += [(middle + 1, high), (low, middle)]
        return records.frame().last_per_id(), merged


def _pairs(account_ids: Iterable[str]) -> list[str]:
    """A record's accounts: each record->account pair once (`association_ids`), in id order."""
    return sorted(association_ids(account_ids), key=_numeric_first)


def _labels(target: Mapping[str, Any]) -> list[str]:
    """The labels of one v4 association entry (`associationTypes[].label`, set ones)."""
    labels = [t["label"] for t in target.get("associationTypes") or [] if t.get("label")]
    return list(dict.fromkeys(str(label) for label in labels))


def _batch_read_body(properties: Sequence[str], ids: Iterable[str]) -> dict[str, Any]:
    """A batch read's body (`BatchReadInputSimplePublicObjectId`) as the JSON it is sent as.

    Request bodies are plain dicts, which the client sends as they are: each of the
    client's model objects copies the client configuration when built, which resets
    logger levels and costs ~0.4 ms, 40 ms a batch of 100 ids.
    """
    return {"properties": list(properties), "inputs": [{"id": i} for i in ids]}


def _merged_ids(values: Mapping[str, Any] | None) -> set[str]:
    """`hs_merged_object_ids` ("111;112") as a set of ids."""
    raw = (values or {}).get(MERGED_IDS) or ""
    return {part.strip() for part in str(raw).split(";") if part.strip()}


def _after(after: str | None) -> dict[str, Any]:
    return {"after": after} if after is not None else {}


def _next_after(page: Any) -> str | None:
    """The `paging.next.after` cursor of a page (a client model or HubSpot's JSON), if any."""
    if isinstance(page, Mapping):
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        return str(after) if after else None
    paging = getattr(page, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    after = getattr(following, "after", None) if following is not None else None
    return str(after) if after else None


def _properties(values: Mapping[str, Any] | None, wanted: Iterable[str]) -> dict[str, str | None]:
    values = values or {}
    return {name: values.get(name) for name in wanted if values.get(name) is not None}


def _numeric_first(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (1 << 62, record_id)
