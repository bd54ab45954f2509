"""Write-back: score, status, trend and group points as HubSpot properties.

CSMs live in HubSpot, so the score must be visible on the record itself. Each
playbook writes its own properties, prefixed with the playbook's slug
(`customer_health_score`, `customer_health_status`, `customer_health_trend`,
`customer_health_group_support`...) inside a property group named after the
playbook, so several playbooks side by side never overwrite each other.

Only values that differ from what the CRM holds are sent: the source pulled
the current values (the flow asks it for `writeback_properties(playbook)`), so
an unchanged run costs no API call at all, and HubSpot's record history is not
flooded with identical writes. Updates go in batches of at most 100 records,
HubSpot's limit, through `HubSpotConnection.call` (rate limit, retries).

HubSpot refuses a whole batch when one value misses its property's definition
(400 `VALIDATION_ERROR`, e.g. `INVALID_OPTION` when an admin's copy of the trend
dropdown lacks `new`). A refused value must not block the rest, nor the actions
step after it: the batch is sent again without what HubSpot named, and each
refusal becomes one line of `WritebackResult.problems` for the run summary.
Existing properties are reconciled first (missing options added with a PATCH, a
wrong type reported and its values left out).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import polars as pl

from healthscore.core.crm import CrmSnapshot, is_custom_object
from healthscore.core.frame import FrameBuilder
from healthscore.core.playbook import Playbook
from healthscore.core.scoring import round2
from healthscore.core.text import ascii_fold
from healthscore.core.text import slug as text_slug
from healthscore.core.trends import Comparison
from healthscore.core.values import as_number, as_timestamp
from healthscore.errors import VendorError
from healthscore.integrations.hubspot.client import HubSpotConnection

BATCH_LIMIT = 100
TREND_OPTIONS = (("up", "↗️ Up"), ("down", "↘️ Down"), ("flat", "↔️ Flat"), ("new", "🆕 New"))
MAX_NAME = 100  # HubSpot's limit on internal property names
MAX_REFUSAL_ROUNDS = 5  # a batch is resent at most this often without refused values


class WritebackError(VendorError):
    """HubSpot refused the properties or the updates (bad scopes, invalid values)."""


@dataclass(frozen=True)
class PropertySpec:
    """A HubSpot property definition the write-back needs."""

    name: str
    label: str
    type: str
    field_type: str
    description: str
    numeric: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def body(self, group_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": group_name,
            "description": self.description,
        }
        if self.options:
            body["options"] = [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.options)
            ]
        return body


@dataclass
class RecordUpdate:
    """The changed properties of one record."""

    id: str
    properties: dict[str, str]


class OwnWrites:
    """What one write-back wrote, so the next incremental pull can tell our writes apart.

    Per record: the modification date HubSpot stamped and the property values. From
    `write_back`: the date HubSpot's batch update answered and the values sent; after
    `pull.read_back`: the date and every value the pull needs, as read right after the
    write. HubSpot stamps every write with a new modification date (the answer's
    `updatedAt` and `properties.hs_lastmodifieddate`, objects spec
    `BatchResponseSimplePublicObject`), so a record whose modification date still
    equals the remembered one has not changed since.

    Held as columns (`table`: `id`, `MODIFIED`, then one text column per property,
    null where unset), built as records arrive (`add`): a first run writes every
    account, and 100k records as Python dicts were about 300 MB. `records` gives the
    Python view, for a handful of records. Stored (`to_json`) as `{"object": ...,
    "parquet": base64 of the table as Parquet}`; the earlier `{"object": ...,
    "records": {id: [modified, {property: value}]}}` is still read.
    """

    MODIFIED = ":modified"
    """The date's column: no HubSpot property name holds a colon."""

    def __init__(
        self,
        object_type: str,
        records: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
        *,
        table: pl.DataFrame | None = None,
    ) -> None:
        self.object_type = object_type
        self._table = table if table is not None else _empty_writes()
        self._builder = FrameBuilder()
        for record_id, (modified, values) in (records or {}).items():
            self.add(record_id, modified, values)

    def add(self, record_id: str, modified: str, values: Mapping[str, Any]) -> None:
        """One written record: its modification date and its values (kept by reference
        until the builder's next chunk becomes columns)."""
        self._builder.add(str(record_id), {**values, self.MODIFIED: str(modified)})

    @property
    def table(self) -> pl.DataFrame:
        if len(self._builder):
            added = self._builder.frame().table
            self._table = pl.concat([self._table, added], how="diagonal").rechunk()
        return self._table

    def __len__(self) -> int:
        return self.table.height

    def ids(self) -> list[str]:
        return self.table.get_column("id").to_list()

    def stamps(self) -> Iterator[tuple[str, str]]:
        """(record id, modification date) of every record."""
        table = self.table
        return zip(table.get_column("id"), table.get_column(self.MODIFIED), strict=True)

    @property
    def records(self) -> dict[str, tuple[str, dict[str, str]]]:
        """id -> (modification date, set values): a Python object per value, for few records."""
        return {
            row["id"]: (
                row[self.MODIFIED],
                {k: v for k, v in row.items() if k not in ("id", self.MODIFIED) and v is not None},
            )
            for row in self.table.iter_rows(named=True)
        }

    def values(self, ids: pl.Series, properties: Sequence[str]) -> pl.DataFrame:
        """`id` and `properties` (those the writes hold) of the records among `ids`."""
        table = self.table
        held = [name for name in properties if name in table.columns and name != "id"]
        return table.filter(pl.col("id").is_in(ids.implode())).select("id", *held)

    def window(self) -> tuple[int, int] | None:
        """The first and last of our modification dates (epoch ms), or None without any."""
        known = [m for _, modified in self.stamps() if (m := epoch_millis(modified)) is not None]
        return (min(known), max(known)) if known else None

    def merged(self, later: OwnWrites) -> OwnWrites:
        """Both write-backs' records (two playbooks of one run writing the same object),
        each record as its latest modification date left it (the later one on a tie)."""
        both = pl.concat(
            [
                part.table.with_columns(pl.lit(order).alias(":order"))
                for order, part in enumerate((self, later))
            ],
            how="diagonal",
        )
        millis = [epoch_millis(m) or 0 for m in both.get_column(self.MODIFIED)]
        latest = (
            both.with_columns(pl.Series(":millis", millis, dtype=pl.Int64))
            .sort([":millis", ":order"], maintain_order=True)
            .unique(subset="id", keep="last", maintain_order=True)
            .drop(":millis", ":order")
        )
        return OwnWrites(self.object_type, table=latest)

    @staticmethod
    def merge_json(earlier: str, later: str) -> str:
        """`merged` of two `to_json` texts (`HistoryStore.remember_writes`' `merge`)."""
        return OwnWrites.from_json(earlier).merged(OwnWrites.from_json(later)).to_json()

    def to_json(self) -> str:
        if not len(self):
            return json.dumps({"object": self.object_type, "records": {}}, separators=(",", ":"))
        buffer = io.BytesIO()
        self.table.write_parquet(buffer, compression="zstd")
        parquet = base64.b64encode(buffer.getvalue()).decode("ascii")
        return json.dumps({"object": self.object_type, "parquet": parquet}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> OwnWrites:
        data = json.loads(text)
        if "parquet" in data:
            table = pl.read_parquet(io.BytesIO(base64.b64decode(data["parquet"])))
            return cls(str(data["object"]), table=table)
        records = {str(i): (str(m), dict(v)) for i, (m, v) in data["records"].items()}
        return cls(str(data["object"]), records)


def _empty_writes() -> pl.DataFrame:
    return pl.DataFrame(schema={"id": pl.String, OwnWrites.MODIFIED: pl.String})


@dataclass
class WritebackResult:
    """What a write-back did: records and values sent, API calls made, failures."""

    records: int = 0
    values: int = 0
    calls: int = 0
    properties_created: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused: int = 0
    """Values HubSpot refused (or that were left out because their property cannot take them)."""
    problems: list[str] = field(default_factory=list)
    """One line per distinct refusal, HubSpot's own words, for the run summary and the log."""
    written: OwnWrites | None = None
    """Per record written, HubSpot's new modification date and the values sent."""

    def problem(self, line: str) -> None:
        if line not in self.problems:
            self.problems.append(line)


# ---------------------------------------------------------------- names


def slug(text: str) -> str:
    """A HubSpot internal name: lowercase ASCII letters, digits, underscores; starts a letter.

    HubSpot's name rule (`^[a-z][a-z0-9_]*$`, properties API "Create a property"),
    so "2026 plan" -> "p_2026_plan". A name whose letters folding to ASCII loses
    (Japanese, Cyrillic, emoji) gets the first 8 hex digits of its SHA-256
    appended (`p_<hash>` when nothing is left): stable across runs and different
    for different names, so two such playbooks never share properties.
    """
    name = text_slug(text)
    lost = any(ch.isalnum() and not ascii_fold(ch).strip() for ch in text)
    if lost or not name:
        digest = hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:8]
        name = f"{name}_{digest}" if name else f"p_{digest}"
    if not name[0].isalpha():
        name = f"p_{name}"
    return name


def property_prefix(playbook: Playbook) -> str:
    """`writeback: prefix:`, else the playbook name's slug (valid for any name, see `slug`)."""
    return playbook.writeback_names.prefix or slug(playbook.name)


def property_label(playbook: Playbook) -> str:
    """What the properties' labels start with: `writeback: label:`, else the playbook name."""
    return playbook.writeback_names.label or playbook.name


def property_group_name(playbook: Playbook) -> str:
    """The property group holding this playbook's properties: `writeback: group:`, else
    the prefix."""
    return playbook.writeback_names.group or property_prefix(playbook)


def owner_note(playbook: Playbook) -> str:
    """The sentence every property's description ends with: whose properties these are.

    `doctor` and `run` read it back (`owning_playbook`) to refuse writing into
    another playbook's properties.
    """
    return f"Written by the healthscore playbook {playbook.name!r}."


_OWNER = re.compile(r"(?:healthscore playbook|computed by healthscore from the playbook) '(.+?)'")


def owning_playbook(description: str | None) -> str | None:
    """The playbook a property's description names (`owner_note`, or the older wording)."""
    found = _OWNER.search(description or "")
    return found.group(1) if found else None


def property_specs(playbook: Playbook) -> list[PropertySpec]:
    """Score, status, trend, one property per group, then each `enrich:` column the
    playbook asks to write back (`enrich_columns`), in that order.

    Internal names, labels and the group follow HubSpot's "score properties"
    guidance (labels, internal names, descriptions, property groups): valid
    internal names for any playbook name, labels a CSM reads, and a
    description naming the playbook.
    """
    prefix = property_prefix(playbook)
    label = property_label(playbook)
    note = owner_note(playbook)
    specs = [
        PropertySpec(
            f"{prefix}_score",
            f"{label}: score",
            "number",
            "number",
            f"Health score (0-100). {note}",
            numeric=True,
        ),
        PropertySpec(
            f"{prefix}_status",
            f"{label}: status",
            "string",
            "text",
            f"Status label of the score (the playbook's thresholds). {note}",
        ),
        PropertySpec(
            f"{prefix}_trend",
            f"{label}: trend",
            "enumeration",
            "select",
            f"Score compared with the newest score at least compare_days old. {note}",
            options=TREND_OPTIONS,
        ),
    ]
    taken = {s.name for s in specs}
    for group in playbook.groups:
        unique = _unique(f"{prefix}_group_{slug(group.name)}"[:MAX_NAME], taken)
        specs.append(
            PropertySpec(
                unique,
                f"{label}: {group.name}",
                "number",
                "number",
                f"Points of the group {group.name!r} in the health score. {note}",
                numeric=True,
            )
        )
    for entry in playbook.enrich:
        for column in entry.writeback:
            unique = _unique(f"{prefix}_{slug(column)}"[:MAX_NAME], taken)
            specs.append(
                PropertySpec(
                    unique,
                    f"{label}: {column}",
                    "string",
                    "text",
                    f"{column} from {entry.label}, copied at every run. {note}",
                )
            )
    return specs


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`... (cut to HubSpot's name length) when another score
    property of the playbook already has it; the name is added to `taken`."""
    unique, number = base, 2
    while unique in taken:
        unique = f"{base[: MAX_NAME - 4]}_{number}"
        number += 1
    taken.add(unique)
    return unique


def enrich_columns(playbook: Playbook) -> list[str]:
    """The `enrich:` columns written back, in `property_specs` order (after the groups)."""
    return [column for entry in playbook.enrich for column in entry.writeback]


def writeback_properties(playbook: Playbook) -> list[str]:
    """The property names the write-back compares and writes: ask the source for them."""
    if not playbook.writeback:
        return []
    return [spec.name for spec in property_specs(playbook)]


def name_clashes(playbooks: Sequence[Playbook]) -> list[str]:
    """One line per pair of playbooks whose write-back would share HubSpot properties.

    Two such playbooks overwrite each other's score on every run (the second's
    0 At-risk replaces the first's 90 Healthy). Files with the same playbook name
    are one playbook (a draft and its live copy share history and properties on
    purpose), so only differently named ones clash. Only the playbooks given are
    compared: `validate a.yaml b.yaml`; a playbook already writing in the portal
    is found by `doctor`/`run` from the properties' descriptions (`owning_playbook`).
    """
    lines: list[str] = []
    for i, first in enumerate(playbooks):
        for second in playbooks[i + 1 :]:
            if first.object != second.object or first.name == second.name:
                continue
            shared = [n for n in writeback_properties(first) if n in writeback_properties(second)]
            if shared:
                shown = ", ".join(shared[:3]) + (", ..." if len(shared) > 3 else "")
                lines.append(
                    f"{second.path}: writeback: the playbooks {first.name!r} ({first.path}) "
                    f"and {second.name!r} write the same HubSpot properties on "
                    f"{first.object} ({shown})\n    hint: give one of them its own names, "
                    "e.g. `writeback: {prefix: churn_risk}`"
                )
    return lines


# ---------------------------------------------------------------- what to write


def format_number(value: float) -> str:
    """Rounded to 2 decimals, no trailing `.0`: the way HubSpot shows a number."""
    rounded = round2(value)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def desired_values(
    playbook: Playbook, comparison: Comparison, specs: Sequence[PropertySpec] | None = None
) -> dict[str, str]:
    """The property values one account should hold after this run.

    `specs`: `property_specs(playbook)`, computed once by a caller doing many accounts
    (each computation slugs every name: 3.4 s over the 8,788 accounts of a profiled
    10k run when it was done per account).
    """
    specs = property_specs(playbook) if specs is None else specs
    values = {
        specs[0].name: format_number(comparison.rounded),
        specs[1].name: comparison.status,
        specs[2].name: comparison.trend,
    }
    groups = len(playbook.groups)
    for spec, group in zip(specs[3 : 3 + groups], comparison.score.groups, strict=True):
        values[spec.name] = format_number(group.points)
    properties = comparison.score.properties
    for spec, column in zip(specs[3 + groups :], enrich_columns(playbook), strict=True):
        values[spec.name] = properties.get(column) or ""  # "" clears: the row is gone
    return values


def plan_updates(
    playbook: Playbook,
    comparisons: Iterable[Comparison],
    current: Mapping[str, Mapping[str, str | None]],
) -> list[RecordUpdate]:
    """Per record, only the properties whose value differs from what the CRM holds."""
    if not playbook.writeback:
        return []
    specs = property_specs(playbook)
    numeric = {spec.name for spec in specs if spec.numeric}
    updates: list[RecordUpdate] = []
    for comparison in comparisons:
        held = current.get(comparison.id, {})
        changed = {
            name: value
            for name, value in desired_values(playbook, comparison, specs).items()
            if not _same(held.get(name), value, name in numeric)
        }
        if changed:
            updates.append(RecordUpdate(comparison.id, changed))
    return updates


def current_values(playbook: Playbook, snapshot: CrmSnapshot) -> dict[str, dict[str, str | None]]:
    """The write-back properties each account holds in the pulled snapshot."""
    names = writeback_properties(playbook)
    accounts = snapshot.frame.objects.get(playbook.object)
    if accounts is None:
        return {}
    held = [n for n in names if n in accounts.table.columns]
    out: dict[str, dict[str, str | None]] = {}
    for account_id, *values in accounts.table.select(["id", *held]).iter_rows():
        found = dict(zip(held, values, strict=True))
        out[account_id] = {name: found.get(name) for name in names}
    return out


def _same(held: str | None, wanted: str, numeric: bool) -> bool:
    if held is None or not held.strip():
        return not wanted  # an unset property already is what "" would make it
    if numeric:
        number = as_number(held)
        return number is not None and round2(number) == round2(float(wanted))
    return held.strip() == wanted


# ---------------------------------------------------------------- HubSpot calls


def write_back(
    connection: HubSpotConnection,
    playbook: Playbook,
    comparisons: Sequence[Comparison],
    snapshot: CrmSnapshot,
) -> WritebackResult:
    """Send the changed values; create or reconcile the group and properties first.

    Never raises for a refused value: see the module docstring. Raises
    `WritebackError` only when HubSpot refuses the call itself (a missing scope).
    """
    result = WritebackResult(written=OwnWrites(playbook.object))
    updates = plan_updates(playbook, comparisons, current_values(playbook, snapshot))
    if not updates:
        return result
    unusable = _reconcile(connection, playbook, result)
    if unusable:
        for update in updates:
            for name in unusable & update.properties.keys():
                del update.properties[name]
                result.refused += 1
        updates = [u for u in updates if u.properties]
    for start in range(0, len(updates), BATCH_LIMIT):
        _send_batch(connection, playbook, updates[start : start + BATCH_LIMIT], result)
    return result


def _send_batch(
    connection: HubSpotConnection,
    playbook: Playbook,
    batch: list[RecordUpdate],
    result: WritebackResult,
) -> None:
    """One batch update; resent without the values HubSpot names until it is accepted."""
    update = _batch_update(connection, playbook.object)
    for _ in range(MAX_REFUSAL_ROUNDS):
        batch = [u for u in batch if u.properties]
        if not batch:
            return
        # BatchInputSimplePublicObjectBatchInput as its JSON: a model object per record
        # copies the client configuration (~0.4 ms each)
        body = {"inputs": [{"id": u.id, "properties": u.properties} for u in batch]}
        try:
            response = connection.call_json(
                update, batch_input_simple_public_object_batch_input=body
            )
        except Exception as exc:
            status = _status(exc)
            refusals = _refusals(exc) if status == 400 else []
            if not refusals:
                if status in (400, 403):
                    raise WritebackError(
                        f"HubSpot refused the update of {len(batch)} {playbook.object}: "
                        f"{_body(exc)}"
                    ) from None
                raise
            result.calls += 1
            _drop_refused(batch, refusals, result)
            continue
        result.calls += 1
        failed = _failed_ids(response)
        result.failed.extend(failed)
        for update in batch:
            if update.id not in failed:
                result.records += 1
                result.values += len(update.properties)
        _remember(result, batch, response)
        return
    result.refused += sum(len(u.properties) for u in batch)
    result.problem(f"HubSpot kept refusing a batch of {len(batch)} {playbook.object}; gave up")


def epoch_millis(value: object) -> int | None:
    """A CRM date (ISO text, epoch ms, datetime) as epoch milliseconds, HubSpot's resolution."""
    seconds = as_timestamp(value)
    return None if seconds is None else round(seconds * 1000)


def _remember(
    result: WritebackResult, batch: list[RecordUpdate], response: Mapping[str, Any]
) -> None:
    """Note each answered record's new modification date and the values it was sent.

    `response`: the batch update's JSON (`BatchResponseSimplePublicObject`), whose
    records carry `updatedAt` and, when HubSpot returns it, `hs_lastmodifieddate`.
    """
    if result.written is None:
        return
    sent = {u.id: u.properties for u in batch}
    for item in response.get("results") or []:
        record_id = str(item["id"])
        properties = item.get("properties") or {}
        modified = (
            properties.get("hs_lastmodifieddate")
            or properties.get("lastmodifieddate")
            or item.get("updatedAt")
        )
        if modified and record_id in sent:
            result.written.add(record_id, str(modified), sent[record_id])


def _refusals(exc: BaseException) -> list[tuple[str, str | None, str]]:
    """(property, record id or None, message) for each value a 400 names.

    HubSpot's `Error.errors` (objects spec, `ErrorDetail`): `context.propertyName`
    and, for batches, `context.id`. An answer without details names nothing, and
    the batch's refusal is then the whole call's (raised by the caller).
    """
    try:
        data = json.loads(str(getattr(exc, "body", "") or ""))
    except json.JSONDecodeError:
        return []
    found: list[tuple[str, str | None, str]] = []
    for error in data.get("errors") or [] if isinstance(data, dict) else []:
        context = error.get("context") or {}
        names = context.get("propertyName") or ([error["in"]] if error.get("in") else [])
        ids: list[str | None] = [str(i) for i in context.get("id") or []] or [None]
        message = str(error.get("message") or data.get("message") or "")
        code = str(error.get("code") or "")
        found += [
            (str(name), record, f"{code}: {message}" if code else message)
            for name in names
            for record in ids
        ]
    return found


def _drop_refused(
    batch: list[RecordUpdate],
    refusals: list[tuple[str, str | None, str]],
    result: WritebackResult,
) -> None:
    """Remove each refused value (one record's, or the property's in every record)."""
    for name, record, message in refusals:
        for update in batch:
            if (record is None or update.id == record) and name in update.properties:
                del update.properties[name]
                result.refused += 1
        result.problem(f"HubSpot refused {name}: {message}")


def ensure_properties(
    connection: HubSpotConnection, playbook: Playbook, result: WritebackResult | None = None
) -> list[str]:
    """Create the property group and any missing property; idempotent (409 = exists)."""
    tally = result if result is not None else WritebackResult()
    _reconcile(connection, playbook, tally)
    return tally.properties_created


def _reconcile(
    connection: HubSpotConnection, playbook: Playbook, result: WritebackResult
) -> set[str]:
    """Create what is missing, add missing options; returns properties that cannot be written.

    A property that exists with another type (an admin made the score a text
    field) is reported and left alone: changing a type can lose the portal's
    data, so that is the admin's call. Options are only ever added, never removed
    or relabelled. A PATCH HubSpot refuses (no schema write scope) is reported,
    and the values that need the option are then refused per value as usual.
    """
    properties = connection.client.crm.properties
    group = property_group_name(playbook)
    existing = connection.call(properties.core_api.get_all, playbook.object)
    result.calls += 1
    have = {p.name: p for p in existing.results}
    unusable: set[str] = set()
    for spec in property_specs(playbook):
        held = have.get(spec.name)
        if held is None:
            continue
        if str(held.type) != spec.type:
            unusable.add(spec.name)
            result.problem(
                f"property {spec.name} on {playbook.object} is of type {held.type}, not "
                f"{spec.type}: its values are not written (delete the property in HubSpot "
                "to let healthscore recreate it, or rename it)"
            )
            continue
        _add_missing_options(connection, playbook, spec, held, result)
    missing = [s for s in property_specs(playbook) if s.name not in have]
    if not missing:
        return unusable
    from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

    try:
        _create_or_exists(
            connection,
            properties.groups_api.create,
            playbook.object,
            PropertyGroupCreate(name=group, label=property_label(playbook), display_order=-1),
        )
    except WritebackError as exc:  # no schema write scope: nothing can be created
        result.problem(f"could not create the property group {group}: {exc}")
        return unusable | {s.name for s in missing}
    finally:
        result.calls += 1
    for spec in missing:
        body = spec.body(group)
        try:
            if _create_or_exists(
                connection,
                properties.core_api.create,
                playbook.object,
                PropertyCreate(
                    name=body["name"],
                    label=body["label"],
                    type=body["type"],
                    field_type=body["fieldType"],
                    group_name=group,
                    description=body["description"],
                    options=body.get("options"),
                ),
            ):
                result.properties_created.append(spec.name)
        except WritebackError as exc:
            unusable.add(spec.name)
            result.problem(f"could not create {spec.name}: {exc}")
        finally:
            result.calls += 1
    return unusable


def _add_missing_options(
    connection: HubSpotConnection,
    playbook: Playbook,
    spec: PropertySpec,
    held: Any,
    result: WritebackResult,
) -> None:
    if not spec.options:
        return
    options = list(held.options or [])
    values = {str(o.value) for o in options}
    lacking = [(value, label) for value, label in spec.options if value not in values]
    if not lacking:
        return
    from hubspot.crm.properties import Option, PropertyUpdate

    merged = [
        Option(label=o.label, value=o.value, display_order=o.display_order, hidden=o.hidden)
        for o in options
    ] + [
        Option(label=label, value=value, display_order=len(options) + i, hidden=False)
        for i, (value, label) in enumerate(lacking)
    ]
    try:
        connection.call(
            connection.client.crm.properties.core_api.update,
            playbook.object,
            spec.name,
            property_update=PropertyUpdate(options=merged),
        )
    except Exception as exc:
        if _status(exc) not in (400, 403):
            raise
        result.problem(
            f"could not add the options {[v for v, _ in lacking]} to {spec.name}: {_body(exc)}"
        )
    finally:
        result.calls += 1


def _create_or_exists(connection: HubSpotConnection, create: Any, *args: Any) -> bool:
    try:
        connection.call(create, *args)
    except Exception as exc:
        if _status(exc) == 409:
            return False
        if _status(exc) in (400, 403):
            raise WritebackError(f"HubSpot refused to create a property: {_body(exc)}") from None
        raise
    return True


def _batch_update(connection: HubSpotConnection, object_type: str) -> Any:
    """The object type's own batch update (companies, contacts); a custom object's is the
    generic objects API's (`POST /crm/v3/objects/{objectType}/batch/update`,
    hubspot-api-client `hubspot/crm/objects/api/batch_api.py`)."""
    if is_custom_object(object_type):
        return partial(connection.client.crm.objects.batch_api.update, object_type)
    return getattr(connection.client.crm, object_type).batch_api.update


def _failed_ids(response: Mapping[str, Any]) -> set[str]:
    """Ids of a multi-status (207) answer's errors, e.g. records deleted since the pull."""
    failed: set[str] = set()
    for error in response.get("errors") or []:
        context = error.get("context") or {}
        for key in ("ids", "id"):
            failed.update(str(i) for i in context.get(key, []) or [])
    return failed


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _body(exc: BaseException) -> str:
    return str(getattr(exc, "body", None) or exc)
