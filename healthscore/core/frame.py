"""The columnar snapshot: each object type as one polars table, associations as edges.

Why: a run used to hold every record as Python objects (about 38 KB per company
with its activity) and the scorer walked them one account at a time. Here each
object type is a `pl.DataFrame` of `id` plus one string column per property, and
the associations are an edge table per (object type, associated type): record row
-> associated record id. Strings stay exactly as HubSpot sent them (None when
unset); `Column` parses a column once, with the very functions of `values.py`, so
the columnar engine (`engine.py`) reads numbers, dates and text exactly as the
row-at-a-time rules of docs/playbook.md do.

Records become columns as they arrive (`FrameBuilder`: a page of the HubSpot
pull, a record of a snapshot file), a chunk of `FrameBuilder.CHUNK` records at a
time, so no source ever holds a whole portal as Python objects. The snapshot's
value rules are applied there, once, column by column: CRM text made safe
(`text.clean`: C0 controls removed, lone surrogates as U+FFFD) and each
record->account pair kept once, at its first listing (`records.association_ids`).

Parsing is exact by construction: a value is parsed by `as_number`/`as_timestamp`
once per distinct value, except for the plain ASCII shapes HubSpot sends by the
million ("12.5", "1700000000000", "2026-10-01", "2026-10-01T09:30:00.000Z"), which
polars parses in bulk. Those shortcuts only take inputs where both parsers are
correctly rounded and agree (years 1700-2199, epoch milliseconds below 2**53);
tests/test_engine_differential.py compares both on random text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from healthscore.core.records import CrmList, CrmRecord, SnapshotError, property_string, type_id
from healthscore.core.text import CONTROLS, clean_optional
from healthscore.core.values import DAY_SECONDS, as_number, as_timestamp

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

_PLAIN_NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
_EPOCH_MS = r"^-?[0-9]{1,15}$"
_YEAR_MONTH_DAY = r"(1[7-9]|2[01])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_ISO_DATE = f"^{_YEAR_MONTH_DAY}$"
_ISO_SECONDS = f"^{_YEAR_MONTH_DAY}T{_TIME}Z$"
_ISO_MILLIS = rf"^{_YEAR_MONTH_DAY}T{_TIME}\.[0-9]{{3}}Z$"
_TIME_SHAPES = (_EPOCH_MS, _ISO_DATE, _ISO_SECONDS, _ISO_MILLIS)


class Column:
    """One property of one object type: its values (a String series from the CRM, or a
    Float64 series of derived values, null = unset) and their parsed forms, each
    computed once: `numbers()` as `as_number`, `times()` as `as_timestamp` (epoch
    seconds), NaN where those return None."""

    def __init__(self, values: pl.Series) -> None:
        self.values = values
        self._numbers: FloatArray | None = None
        self._times: FloatArray | None = None

    def numbers(self) -> FloatArray:
        if self._numbers is None:
            if self.values.dtype == pl.Float64:
                self._numbers = self.values.to_numpy().astype(np.float64)
            else:
                fast = self.values.str.contains(_PLAIN_NUMBER).fill_null(False).to_numpy()
                bulk = _numbers(self.values.cast(pl.Float64, strict=False))
                self._numbers = self._fill(fast, bulk, as_number)
        return self._numbers

    def times(self) -> FloatArray:
        if self._times is None:
            if self.values.dtype == pl.Float64:  # a derived number: epoch milliseconds
                self._times = self.values.to_numpy().astype(np.float64) / 1000.0
            else:
                self._times = self._parse_times()
        return self._times

    def per_value(self, function: Callable[[Any], Any], dtype: type[pl.DataType]) -> pl.Series:
        """`function` of every value, called once per distinct value (None included)."""
        distinct = self.values.drop_nulls().unique()
        mapped = self.values.replace_strict(
            distinct, [function(v) for v in distinct.to_list()], default=None, return_dtype=dtype
        ).cast(dtype)
        if self.values.null_count():
            mapped = pl.select(
                pl.when(self.values.is_null()).then(pl.lit(function(None), dtype)).otherwise(mapped)
            ).to_series()
        return mapped

    def mask(self, predicate: Callable[[Any], bool]) -> BoolArray:
        """A boolean per row: `predicate` of its value, called once per distinct value."""
        return self.per_value(predicate, pl.Boolean).to_numpy().astype(bool)

    def _parse_times(self) -> FloatArray:
        """Epoch seconds of every value: each of HubSpot's shapes (`_TIME_SHAPES`, the
        first that matches) parsed in bulk on the values of that shape only, the rest
        by `as_timestamp` once per distinct value."""
        text = self.values
        out = np.full(len(text), np.nan)
        covered = np.zeros(len(text), dtype=bool)
        for shape, parse in zip(_TIME_SHAPES, _TIME_PARSERS, strict=True):
            rows = text.str.contains(shape).fill_null(False).to_numpy() & ~covered
            if rows.any():
                out[rows] = parse(text.filter(pl.Series(rows)))
                covered |= rows
        return self._fill(covered, out, as_timestamp)

    def _fill(
        self, fast: BoolArray, bulk: FloatArray, parse: Callable[[Any], float | None]
    ) -> FloatArray:
        out = np.array(bulk, dtype=np.float64)
        slow = ~fast
        if slow.any():
            rest = Column(self.values.filter(pl.Series(slow)))
            out[slow] = rest.per_value(parse, pl.Float64).to_numpy().astype(np.float64)
        out[~np.isfinite(out)] = np.nan  # as_number rejects inf; None is NaN here
        return out


def _numbers(series: pl.Series) -> FloatArray:
    return series.cast(pl.Float64).to_numpy().astype(np.float64)


def _micros(moments: pl.Series) -> FloatArray:
    # Microseconds below 2**53 (years 1700-2199) are exact as floats; one correctly
    # rounded division then equals Python's `timedelta.total_seconds()`.
    return _numbers(moments.dt.epoch("us")) / 1e6


# One bulk parser per `_TIME_SHAPES` entry, in its order. Divisions in numpy: polars
# divides by a constant as a multiplication by its reciprocal, which is not correctly
# rounded (1000007 / 1000).
_TIME_PARSERS: tuple[Callable[[pl.Series], FloatArray], ...] = (
    lambda text: _numbers(text.cast(pl.Int64, strict=False)) / 1000.0,
    lambda text: _numbers(text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64)) * DAY_SECONDS,
    lambda text: _micros(text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", strict=False)),
    lambda text: _micros(
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_unit="us", strict=False)
    ),
)


class ObjectFrame:
    """The records of one object type: `table` (`id` + property columns, first-seen
    order) and, per associated type, the edge table `links[type]` (`row`: this table's
    row, `to`: the associated record's id), in record order then association order,
    each (row, to) pair once; and per associated type, the association labels
    `labels[type]` (`row`, `to`, `label`: one row per label of a labelled pair)."""

    def __init__(
        self,
        table: pl.DataFrame,
        links: Mapping[str, pl.DataFrame],
        labels: Mapping[str, pl.DataFrame] | None = None,
    ) -> None:
        self.table = table
        self.links = dict(links)
        self._columns: dict[str, Column] = {}
        self.labels: dict[str, pl.DataFrame] = dict(labels or {})

    def __len__(self) -> int:
        return self.table.height

    @property
    def ids(self) -> pl.Series:
        return self.table.get_column("id")

    def column(self, name: str) -> Column:
        """The property's column; all null when no record has it."""
        if name not in self._columns:
            if name in self.table.columns and name != "id":
                values = self.table.get_column(name)
            else:
                values = pl.Series(name, [None] * self.table.height, dtype=pl.String)
            self._columns[name] = Column(values)
        return self._columns[name]

    def properties(self, row: int) -> dict[str, str | None]:
        """The set properties of one row, in column order (a frame does not tell an
        unset property from an absent one: neither is listed)."""
        values = self.table.row(row, named=True)
        return {k: v for k, v in values.items() if k != "id" and v is not None}

    def record(self, row: int) -> CrmRecord:
        """One row as a record, without its associations."""
        return CrmRecord(str(self.table.item(row, "id")), self.properties(row))

    def records(self) -> list[CrmRecord]:
        """Every row as a record with its associations: for small frames and tests."""
        names = self.table.columns
        out = [
            CrmRecord(
                str(values[0]),
                {n: v for n, v in zip(names[1:], values[1:], strict=True) if v is not None},
            )
            for values in self.table.select(["id", *[n for n in names if n != "id"]]).iter_rows()
        ]
        for kind, edges in self.links.items():
            for row, target in edges.iter_rows():
                out[row].associations.setdefault(kind, []).append(target)
        for kind, labelled in self.labels.items():
            for row, target, label in labelled.iter_rows():
                out[row].labels.setdefault(kind, {}).setdefault(target, []).append(label)
        return out

    def gather(self, rows: pl.Series | Sequence[int] | IntArray) -> pl.DataFrame:
        """The table's rows at `rows` (with repeats), in that order."""
        return self.table[pl.Series("row", rows, dtype=pl.Int64)]

    def sorted_by_id(self) -> ObjectFrame:
        """Rows in HubSpot id order: numeric ids by value, then other ids as text;
        equal keys keep their order (`sorted(key=(int(id), "") or (2**62, id))`)."""
        rows = self.table.select(pl.col("id"), pl.int_range(pl.len(), dtype=pl.Int64).alias("row"))
        return self.take(sorted_by_id(rows, "id").get_column("row"))

    def take(self, rows: pl.Series) -> ObjectFrame:
        """The rows at `rows` (no repeats), with their edges renumbered."""
        position = pl.DataFrame(
            {"row": rows, "new": pl.int_range(len(rows), dtype=pl.Int64, eager=True)}
        )

        def renumbered(edges: pl.DataFrame) -> pl.DataFrame:
            return (
                edges.join(position, on="row", how="inner")
                .sort("new", maintain_order=True)
                .select(pl.col("new").alias("row"), pl.exclude("row", "new"))
            )

        links = {kind: renumbered(edges) for kind, edges in self.links.items()}
        labels = {kind: renumbered(labelled) for kind, labelled in self.labels.items()}
        return ObjectFrame(self.gather(rows), links, labels)

    def where_ids(self, keep: pl.Series | Iterable[str], *, invert: bool = False) -> ObjectFrame:
        """The rows whose id is (`invert`: is not) among `keep`, in order."""
        ids = keep if isinstance(keep, pl.Series) else pl.Series(list(keep), dtype=pl.String)
        inside = self.ids.is_in(ids.implode())
        rows = pl.int_range(self.table.height, dtype=pl.Int64, eager=True)
        return self.take(rows.filter(~inside if invert else inside))

    def last_per_id(self) -> ObjectFrame:
        """Each id once, at its first row, with the values of its last row (as a dict
        `{id: record}` filled in order keeps them)."""
        if self.ids.is_unique().all():
            return self
        rows = pl.int_range(self.table.height, dtype=pl.Int64, eager=True)
        first = self.table.select(pl.col("id"), rows.alias("row")).group_by(
            "id", maintain_order=True
        )
        order = first.agg(pl.col("row").last()).get_column("row")
        return self.take(order)

    def linked(
        self,
        kind: str,
        edges: pl.DataFrame,
        labels: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> ObjectFrame:
        """This frame with its `kind` edges replaced: `edges` (`id`, `to`; one row per
        edge, a record's edges in the order given; rows whose id has none get none),
        and its `kind` labels by `labels[i][to]` (the pairs' labels now; none when not
        given)."""
        rows = self.table.select(pl.col("id"), pl.int_range(pl.len(), dtype=pl.Int64).alias("row"))
        joined = rows.join(edges, on="id", how="inner", maintain_order="left_right")
        labelled = pl.DataFrame(
            [
                (i, to, label)
                for i, by_target in (labels or {}).items()
                for to, names in by_target.items()
                for label in names
            ],
            schema={"id": pl.String, "to": pl.String, "label": pl.String},
            orient="row",
        )
        kept = rows.join(labelled, on="id", how="inner", maintain_order="left_right")
        kept = kept.join(joined.select("row", "to"), on=["row", "to"], how="semi")
        others = {k: v for k, v in self.labels.items() if k != kind}
        if len(kept):
            others[kind] = kept.select("row", "to", "label")
        return ObjectFrame(self.table, {**self.links, kind: joined.select("row", "to")}, others)

    @classmethod
    def concat(cls, frames: Sequence[ObjectFrame]) -> ObjectFrame:
        """The rows of `frames` one after the other (columns in first-seen order)."""
        frames = [f for f in frames if len(f)] or list(frames[:1]) or [cls.empty()]
        table = pl.concat([f.table for f in frames], how="diagonal")
        links: dict[str, list[pl.DataFrame]] = {}
        labels: dict[str, list[pl.DataFrame]] = {}
        offset = 0
        for frame in frames:
            for tables, mine in ((links, frame.links), (labels, frame.labels)):
                for kind, edges in mine.items():
                    tables.setdefault(kind, []).append(
                        edges.with_columns(pl.col("row") + offset) if offset else edges
                    )
            offset += len(frame)
        return cls(
            table,
            {kind: pl.concat(parts) for kind, parts in links.items()},
            {kind: pl.concat(parts) for kind, parts in labels.items()},
        )

    @classmethod
    def empty(cls) -> ObjectFrame:
        return cls(pl.DataFrame(schema={"id": pl.String}), {})

    @classmethod
    def from_records(cls, records: Iterable[CrmRecord]) -> ObjectFrame:
        """Records as columns, with the snapshot's value rules (`FrameBuilder`)."""
        builder = FrameBuilder()
        for record in records:
            builder.add(record.id, record.properties, record.associations, record.labels)
        return builder.frame()


_LINK_SCHEMA = {"row": pl.Int64, "to": pl.String}
_LABEL_SCHEMA = {"row": pl.Int64, "to": pl.String, "label": pl.String}


def sorted_by_id(table: pl.DataFrame, column: str) -> pl.DataFrame:
    """`table`'s rows in HubSpot id order of `column` (`_id_order`), equal ids in their order."""
    keys = [key.alias(f":{key.meta.output_name()}") for key in _id_order(pl.col(column))]
    return (
        table.with_columns(keys)
        .sort([key.meta.output_name() for key in keys], maintain_order=True)
        .select(table.columns)
    )


def _id_order(ids: pl.Expr) -> list[pl.Expr]:
    """Sort keys of `_numeric_first`: digits-only ids by value (digit count without
    leading zeros, then the digits), before any other id, which sort as text."""
    numeric = ids.str.contains(r"^[0-9]+$")
    digits = ids.str.strip_chars_start("0")
    return [
        (~numeric).alias("text"),
        pl.when(numeric).then(digits.str.len_bytes()).otherwise(0).alias("digits"),
        pl.when(numeric).then(digits).otherwise(pl.lit("")).alias("number"),
        pl.when(numeric).then(pl.lit("")).otherwise(ids).alias("other"),
    ]


class FrameBuilder:
    """Records of one object type appended as they arrive, held as columns.

    `add` keeps a reference to the record's property mapping until the chunk of
    `CHUNK` records is turned into a polars table; `frame()` gives the `ObjectFrame`.
    Values are kept as HubSpot sends them (`property_string` for a JSON number or
    boolean), then cleaned column by column (`clean_column`); each record's
    associations keep each target once, at its first listing. An association entry
    is an id or, for a labelled pair, `{"id", "labels"}` (docs/snapshot.md); `labels`
    (`{type: {id: [labels]}}`, `CrmRecord.labels`) adds labels too, each once a pair.
    A property called `id` never shadows the record id.
    """

    CHUNK = 8_192

    def __init__(self) -> None:
        self._chunks: list[ObjectFrame] = []
        self._ids: list[str] = []
        self._properties: list[Mapping[str, Any]] = []
        self._edges: dict[str, tuple[list[int], list[str]]] = {}
        self._labels: dict[str, tuple[list[int], list[str], list[str]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        record_id: str,
        properties: Mapping[str, Any],
        associations: Mapping[str, Iterable[Any]] | None = None,
        labels: Mapping[str, Mapping[str, Iterable[Any]]] | None = None,
    ) -> None:
        row = len(self._ids)
        self._ids.append(record_id)
        self._properties.append(properties)
        for kind, targets in (associations or {}).items():
            rows, to = self._edges.setdefault(kind, ([], []))
            for target in targets:
                if isinstance(target, Mapping):  # a labelled pair
                    self._label(row, kind, str(target["id"]), target.get("labels") or ())
                    target = target["id"]
                rows.append(row)
                to.append(str(target))
        for kind, by_target in (labels or {}).items():
            for target, names in by_target.items():
                self._label(row, kind, str(target), names)
        self._count += 1
        if len(self._ids) >= self.CHUNK:
            self.flush()

    def _label(self, row: int, kind: str, target: str, names: Iterable[Any]) -> None:
        rows, to, labels = self._labels.setdefault(kind, ([], [], []))
        for name in names:
            rows.append(row)
            to.append(target)
            labels.append(str(name))

    def frame(self) -> ObjectFrame:
        """Every added record as one `ObjectFrame` (the builder is empty afterwards)."""
        self.compact()
        chunks, self._chunks = self._chunks, []
        self._count = 0
        return chunks[0] if chunks else ObjectFrame.empty()

    def compact(self) -> None:
        """The chunks so far as one contiguous frame (small chunks' buffers are loose)."""
        self.flush()
        if len(self._chunks) > 1:
            whole = ObjectFrame.concat(self._chunks)
            links = {kind: edges.rechunk() for kind, edges in whole.links.items()}
            labels = {kind: table.rechunk() for kind, table in whole.labels.items()}
            self._chunks = [ObjectFrame(whole.table.rechunk(), links, labels)]

    def flush(self) -> None:
        """Turn the records added since the last chunk into columns now."""
        if not self._ids:
            return
        names: dict[str, None] = {}
        for properties in self._properties:
            names.update(dict.fromkeys(properties))
        names.pop("id", None)
        columns = [_strings("id", self._ids)]
        columns += [_strings(n, [p.get(n) for p in self._properties]) for n in names]
        table = pl.DataFrame(columns)
        links = {
            kind: pl.DataFrame({"row": rows, "to": _strings("to", to)}, schema=_LINK_SCHEMA).unique(
                maintain_order=True, keep="first"
            )
            for kind, (rows, to) in self._edges.items()
        }
        labels = {
            kind: pl.DataFrame(
                {"row": rows, "to": _strings("to", to), "label": _strings("label", names)},
                schema=_LABEL_SCHEMA,
            ).unique(maintain_order=True, keep="first")
            for kind, (rows, to, names) in self._labels.items()
        }
        self._chunks.append(ObjectFrame(table, links, labels))
        self._ids, self._properties, self._edges, self._labels = [], [], {}, {}


def _strings(name: str, values: list[Any]) -> pl.Series:
    """`values` as a String series, cleaned (`clean_column`). Values that are not
    strings become HubSpot's text (`property_string`); a lone surrogate, which a
    polars string cannot hold, is replaced at the boundary as `text.clean` does."""
    try:
        series = pl.Series(name, values, dtype=pl.String, strict=True)
    except (TypeError, UnicodeEncodeError, pl.exceptions.PolarsError):
        series = pl.Series(
            name, [clean_optional(property_string(v)) for v in values], dtype=pl.String
        )
    return clean_column(series)


def clean_column(series: pl.Series) -> pl.Series:
    """`text.clean` of every value of a String series (lone surrogates cannot occur in
    one): the C0 controls other than tab, newline and CR removed."""
    if series.str.contains(CONTROLS).any():
        return series.str.replace_all(CONTROLS, "")
    return series


class CrmFrame:
    """A CRM snapshot held as columns: one `ObjectFrame` per object type, the
    snapshot's lists (`members` answers a list-membership condition) and its custom
    object schemas (`type_id`)."""

    def __init__(
        self,
        objects: Mapping[str, ObjectFrame],
        lists: Iterable[CrmList] = (),
        schemas: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.objects = dict(objects)
        self.lists: list[CrmList] = list(lists)
        self.schemas: list[dict[str, Any]] = [dict(s) for s in schemas]

    def type_id(self, object_type: str) -> str:
        """HubSpot's object type id of an object type name (`records.type_id`)."""
        return type_id(object_type, self.schemas)

    def members(self, object_type: str, reference: str) -> frozenset[str]:
        """The ids of the list `reference` (id, or name on `object_type`'s lists).

        Raises `SnapshotError` when the snapshot does not hold the list: a source
        reads every list a playbook names (`Playbook.list_conditions`), so a missing
        one is a snapshot written without it, or a list that does not exist.
        """
        type_id = self.type_id(object_type)
        for candidate in self.lists:
            if candidate.matches(reference, type_id):
                return candidate.members
        raise SnapshotError(
            f"the playbook reads the list {reference!r} of {object_type} (object type "
            f"{type_id}), which the CRM snapshot does not hold (docs/snapshot.md, `lists`)"
        )

    def of(self, object_type: str) -> ObjectFrame:
        if object_type not in self.objects:
            self.objects[object_type] = ObjectFrame.empty()
        return self.objects[object_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.objects)

    @classmethod
    def from_records(
        cls,
        objects: Mapping[str, Iterable[CrmRecord]],
        lists: Iterable[CrmList] = (),
        schemas: Iterable[Mapping[str, Any]] = (),
    ) -> CrmFrame:
        return cls(
            {kind: ObjectFrame.from_records(r) for kind, r in objects.items()}, lists, schemas
        )

    def around(self, account_object: str, account: CrmRecord) -> CrmFrame:
        """A frame of the one `account` and, per other object type, every record linked
        to its id (each once, in snapshot order): what `explain` scores."""
        objects = {account_object: ObjectFrame.from_records([account])}
        for kind, frame in self.objects.items():
            if kind == account_object:
                continue
            edges = frame.links.get(account_object)
            rows = (
                edges.filter(pl.col("to") == account.id).get_column("row")
                if edges is not None
                else pl.Series("row", [], dtype=pl.Int64)
            )
            table = frame.gather(rows)
            mine = pl.DataFrame(
                {"row": pl.int_range(len(rows), dtype=pl.Int64, eager=True), "to": account.id},
                schema=_LINK_SCHEMA,
            )
            labels = {}
            labelled = frame.labels.get(account_object)
            if labelled is not None:  # the labels of these pairs, rows renumbered
                position = pl.DataFrame(
                    {"row": rows, "new": pl.int_range(len(rows), dtype=pl.Int64, eager=True)}
                )
                labels[account_object] = (
                    labelled.filter(pl.col("to") == account.id)
                    .join(position, on="row", how="inner")
                    .sort("new", maintain_order=True)
                    .select(pl.col("new").alias("row"), "to", "label")
                )
            objects[kind] = ObjectFrame(table, {account_object: mine}, labels)
        return CrmFrame(objects, self.lists, self.schemas)

    @classmethod
    def from_related(
        cls,
        account_object: str,
        accounts: Iterable[CrmRecord],
        related: Mapping[str, Mapping[str, Sequence[CrmRecord]]],
        like: CrmFrame | None = None,
    ) -> CrmFrame:
        """A frame of `accounts` and an index `{type: {account id: [records]}}` (what
        `CrmSnapshot.related` returns): each listed record becomes one row per
        listing, linked to that account, so the accounts see exactly their lists.
        `like` (a snapshot's frame) gives the lists and custom object schemas."""
        objects = {account_object: ObjectFrame.from_records(list(accounts))}
        for kind, by_account in related.items():
            rows: list[CrmRecord] = []
            targets: list[str] = []
            for account_id, records in by_account.items():
                rows.extend(records)
                targets.extend([account_id] * len(records))
            frame = ObjectFrame.from_records(CrmRecord(r.id, r.properties) for r in rows)
            frame.links = {
                account_object: pl.DataFrame(
                    {"row": range(len(rows)), "to": targets}, schema=_LINK_SCHEMA
                )
            }
            labelled = [
                (row, to, label)
                for row, (record, to) in enumerate(zip(rows, targets, strict=True))
                for label in record.labels_of(account_object, to)
            ]
            if labelled:
                frame.labels = {
                    account_object: pl.DataFrame(labelled, schema=_LABEL_SCHEMA, orient="row")
                }
            objects[kind] = frame
        if like is None:
            return cls(objects)
        return cls(objects, like.lists, like.schemas)
