"""The columnar snapshot: each object type as one polars table, associations as edges.

Why: a run used to hold every record as Python objects (about 38 KB per company
with its activity) and the scorer walked them one account at a time. Here each
object type is a `pl.DataFrame` of `id` plus one string column per property, and
the associations are an edge table per (object type, associated type): record row
-> associated record id. Strings stay exactly as HubSpot sent them (None when
unset); `Column` parses a column once, with the very functions of `values.py`, so
the columnar engine (`engine.py`) reads numbers, dates and text exactly as the
row-at-a-time rules of docs/playbook.md do.

Parsing is exact by construction: a value is parsed by `as_number`/`as_timestamp`
once per distinct value, except for the plain ASCII shapes HubSpot sends by the
million ("12.5", "1700000000000", "2026-10-01", "2026-10-01T09:30:00.000Z"), which
polars parses in bulk. Those shortcuts only take inputs where both parsers are
correctly rounded and agree (years 1700-2199, epoch milliseconds below 2**53);
tests/test_engine_differential.py compares both on random text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from healthscore.core.crm import OBJECT_TYPE_IDS, CrmList, CrmRecord, CrmSnapshot, SnapshotError
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
        text = self.values
        shapes = [text.str.contains(shape).fill_null(False).to_numpy() for shape in _TIME_SHAPES]
        # Divisions in numpy: polars divides by a constant as a multiplication by its
        # reciprocal, which is not correctly rounded (1000007 / 1000).
        parsed = [
            _numbers(text.cast(pl.Int64, strict=False)) / 1000.0,
            _numbers(text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64)) * DAY_SECONDS,
            _micros(text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", strict=False)),
            _micros(text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_unit="us", strict=False)),
        ]
        bulk = np.select(shapes, parsed, np.nan)
        return self._fill(np.logical_or.reduce(shapes), bulk, as_timestamp)

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


class ObjectFrame:
    """The records of one object type: `table` (`id` + property columns, CRM order)
    and, per associated type, the edge table `links[type]` (`row`: this table's row,
    `to`: the associated record's id), in record order then association order."""

    def __init__(
        self,
        table: pl.DataFrame,
        links: Mapping[str, pl.DataFrame],
        records: Sequence[CrmRecord] | None = None,
    ) -> None:
        self.table = table
        self.links = dict(links)
        self.records = records  # the row objects, when the frame was built from them
        self._columns: dict[str, Column] = {}
        # per associated type, the labelled pairs: `row`, `to`, `label` (one per label)
        self.labels: dict[str, pl.DataFrame] = {}

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

    def record(self, row: int) -> CrmRecord:
        """The row as a record: the original object when the frame was built from
        records, else its set properties (a frame does not tell unset from absent)."""
        if self.records is not None:
            return self.records[row]
        values = self.table.row(row, named=True)
        record_id = str(values.pop("id"))
        return CrmRecord(record_id, {k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_records(cls, records: Sequence[CrmRecord]) -> ObjectFrame:
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record.properties))
        names.pop("id", None)  # a property called "id" never shadows the record id
        schema = {"id": pl.String, **dict.fromkeys(names, pl.String)}
        table = pl.DataFrame(
            {
                "id": [r.id for r in records],
                **{n: [r.properties.get(n) for r in records] for n in names},
            },
            schema=schema,
        )
        links: dict[str, tuple[list[int], list[str]]] = {}
        for row, record in enumerate(records):
            for kind, ids in record.associations.items():
                rows, targets = links.setdefault(kind, ([], []))
                rows.extend([row] * len(ids))
                targets.extend(ids)
        frame = cls(
            table,
            {
                kind: pl.DataFrame({"row": rows, "to": targets}, schema=_LINK_SCHEMA)
                for kind, (rows, targets) in links.items()
            },
            records,
        )
        frame.labels = _label_tables(
            (row, kind, to, record.labels_of(kind, to))
            for row, record in enumerate(records)
            for kind, by_id in record.labels.items()
            for to in by_id
        )
        return frame


_LINK_SCHEMA = {"row": pl.Int64, "to": pl.String}
_LABEL_SCHEMA = {"row": pl.Int64, "to": pl.String, "label": pl.String}


def _label_tables(pairs: Iterable[tuple[int, str, str, Sequence[str]]]) -> dict[str, pl.DataFrame]:
    """`{associated type: (row, to, label) table}` of (row, type, to id, labels) pairs."""
    columns: dict[str, tuple[list[int], list[str], list[str]]] = {}
    for row, kind, to, labels in pairs:
        rows, targets, names = columns.setdefault(kind, ([], [], []))
        for label in labels:
            rows.append(row)
            targets.append(to)
            names.append(label)
    return {
        kind: pl.DataFrame({"row": r, "to": t, "label": n}, schema=_LABEL_SCHEMA)
        for kind, (r, t, n) in columns.items()
    }


class CrmFrame:
    """A CRM snapshot held as columns: one `ObjectFrame` per object type, and the
    snapshot's lists (`members` answers a list-membership condition)."""

    def __init__(
        self, objects: Mapping[str, ObjectFrame], snapshot: CrmSnapshot | None = None
    ) -> None:
        self.objects = dict(objects)
        self.lists: Sequence[CrmList] = snapshot.lists if snapshot else ()
        self.type_id: Callable[[str], str] = (
            snapshot.type_id if snapshot else lambda kind: OBJECT_TYPE_IDS.get(kind, kind)
        )

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
            self.objects[object_type] = ObjectFrame.from_records([])
        return self.objects[object_type]

    @classmethod
    def from_snapshot(cls, snapshot: CrmSnapshot) -> CrmFrame:
        return cls(
            {kind: ObjectFrame.from_records(r) for kind, r in snapshot.objects.items()}, snapshot
        )

    @classmethod
    def from_related(
        cls,
        account_object: str,
        accounts: Iterable[CrmRecord],
        related: Mapping[str, Mapping[str, Sequence[CrmRecord]]],
        snapshot: CrmSnapshot | None = None,
    ) -> CrmFrame:
        """A frame of `accounts` and an index `{type: {account id: [records]}}` (what
        `CrmSnapshot.related` returns): each listed record becomes one row per
        listing, linked to that account, so the accounts see exactly their lists.
        `snapshot` gives the lists and custom object type ids, when read."""
        objects = {account_object: ObjectFrame.from_records(list(accounts))}
        for kind, by_account in related.items():
            rows: list[CrmRecord] = []
            targets: list[str] = []
            for account_id, records in by_account.items():
                rows.extend(records)
                targets.extend([account_id] * len(records))
            frame = ObjectFrame.from_records(rows)
            frame.links = {
                account_object: pl.DataFrame(
                    {"row": range(len(rows)), "to": targets}, schema=_LINK_SCHEMA
                )
            }
            frame.labels = _label_tables(
                (row, account_object, to, record.labels_of(account_object, to))
                for row, (record, to) in enumerate(zip(rows, targets, strict=True))
                if record.labels
            )
            objects[kind] = frame
        return cls(objects, snapshot)
