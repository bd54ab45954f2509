"""The snapshot as columns: built as records arrive, value rules applied columnwise,
read from a file record by record, and cached as Parquet.

The engine's numbers over these columns are checked against the row engine in
tests/test_engine_differential.py; here: that the columns hold exactly what the
records said, after the documented value rules (docs/snapshot.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthscore.core.crm import CrmRecord, CrmSnapshot, Owner, SnapshotError
from healthscore.core.frame import FrameBuilder, ObjectFrame
from healthscore.demo.sample import generate_snapshot
from healthscore.history.cache import pack_snapshot, unpack_snapshot
from healthscore.integrations.hubspot.pull import _numeric_first

DIRTY = {
    "owners": [{"id": "1", "email": "a@x.io", "firstName": "A\x00na", "lastName": None}],
    "companies": [
        {"id": "10", "properties": {"name": "Ac\x00me\x1b", "seats": 12, "vip": True}},
        {"id": "9", "properties": {"name": "B\ud800ee\tco", "note": None}},
    ],
    "meetings": [
        {"id": "m1", "properties": {"x": "1"}, "associations": {"companies": ["10", 10, "9"]}},
        {"id": "m2", "properties": {}, "associations": {"companies": []}},
    ],
    "tickets": [],
}


def test_value_rules_are_applied_to_the_columns() -> None:
    snapshot = CrmSnapshot.from_json(DIRTY)
    # C0 controls removed (tab kept), a lone surrogate is U+FFFD, numbers and booleans
    # as HubSpot's text, None is unset, each record->account pair once
    assert snapshot.to_json() == {
        "owners": [{"id": "1", "email": "a@x.io", "firstName": "Ana", "lastName": None}],
        "companies": [
            {"id": "10", "properties": {"name": "Acme", "seats": "12", "vip": "true"}},
            {"id": "9", "properties": {"name": "B\ufffdee\tco"}},
        ],
        "meetings": [
            {"id": "m1", "properties": {"x": "1"}, "associations": {"companies": ["10", "9"]}},
            {"id": "m2", "properties": {}},
        ],
        "tickets": [],
    }
    assert snapshot.counts() == {"companies": 2, "meetings": 2, "tickets": 0}


def test_a_file_is_read_record_by_record_into_the_same_columns(tmp_path: Path) -> None:
    data = generate_snapshot(40, seed=5)
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    blocks = CrmSnapshot.load(path)
    whole = CrmSnapshot.from_json(data)
    assert blocks.to_json() == whole.to_json()
    assert blocks.counts() == {k: len(v) for k, v in data.items() if k != "owners"}


def test_a_file_keeps_only_what_is_asked(tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(DIRTY), encoding="utf-8")
    kept = CrmSnapshot.load(path, only={"companies": None, "meetings": {"y"}})
    assert kept.counts() == {"companies": 2, "meetings": 2}
    assert [r.properties for r in kept.records("meetings")] == [{}, {}]
    assert kept.records("meetings")[0].associations == {"companies": ["10", "9"]}
    assert kept.records("companies")[0].properties == {"name": "Acme", "seats": "12", "vip": "true"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"companies": [\n {"id": "1"},\n {"id": "2",}\n]}', ":3: not valid JSON (Expecting"),
        ('{"companies": [\n {"id": "1"}\n {"id": "2"}]}', ":3: not valid JSON (Expecting ','"),
        ('{"companies": [{"id": "1"}, {"name": "x"}]}', ": companies[1]: a record needs an id"),
        ('{"companies": {"id": "1"}}', ": companies must be a list of records"),
        ('["companies"]', ": the top level must be an object of object types"),
        ('{"companies": []} []', ":1: not valid JSON (Extra data, column 19)"),
    ],
)
def test_a_bad_file_names_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SnapshotError) as error:
        CrmSnapshot.load(path)
    assert f"{path}{message}" in str(error.value)


def test_records_spanning_chunks_give_the_same_frame() -> None:
    records = [
        CrmRecord(str(i), {f"p{i % 3}": str(i)}, {"companies": [str(i % 2), str(i % 2)]})
        for i in range(7)
    ]

    class Small(FrameBuilder):
        CHUNK = 2

    small = Small()
    for record in records:
        small.add(record.id, record.properties, record.associations)
    frame = small.frame()
    assert frame.table.columns == ["id", "p0", "p1", "p2"]  # first-seen order
    assert [r.to_json() for r in frame.records()] == [
        r.to_json() for r in ObjectFrame.from_records(records).records()
    ]
    assert frame.links["companies"].rows() == [(i, str(i % 2)) for i in range(7)]


def test_rows_sort_as_hubspot_ids() -> None:
    ids = ["10", "9", "b", "007", "a", "2", "7", "0", "x1"]
    frame = ObjectFrame.from_records([CrmRecord(i, {"n": str(n)}) for n, i in enumerate(ids)])
    ordered = frame.sorted_by_id()
    assert ordered.ids.to_list() == sorted(ids, key=_numeric_first)
    assert ordered.ids.to_list() == ["0", "2", "007", "7", "9", "10", "a", "b", "x1"]
    # "007" and "7" are both 7: they keep their order, as Python's stable sort does
    assert "".join(r.properties["n"] for r in ordered.records()) == "753610428"


def test_the_cache_round_trips_the_columns() -> None:
    snapshot = CrmSnapshot.from_json(DIRTY)
    full = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    unpacked = unpack_snapshot(pack_snapshot(snapshot, full))
    assert unpacked is not None
    held, when = unpacked
    assert when == full
    assert held.to_json() == snapshot.to_json()
    assert held.owners == [Owner("1", "a@x.io", "Ana", None)]
    old = json.dumps({"full_pulled_at": full.isoformat(), "snapshot": DIRTY}).encode()
    assert unpack_snapshot(old) is None  # the JSON blob of earlier releases


LABELLED = {
    "owners": [],
    "companies": [{"id": "1", "properties": {"name": "A"}}, {"id": "2", "properties": {}}],
    "subscriptions": [
        {
            "id": "9",
            "properties": {"plan": "pro"},
            "associations": {"companies": [{"id": "1", "labels": ["Billing", "Billing"]}, "2"]},
        }
    ],
    "lists": [{"name": "VIP", "objectTypeId": "0-2", "listId": "7", "members": ["2", "1"]}],
    "schemas": [
        {"name": "subscriptions", "objectTypeId": "2-55", "fullyQualifiedName": "p1_subscriptions"}
    ],
}


def test_labels_lists_and_schemas_survive_the_columns_renaming_and_the_cache() -> None:
    snapshot = CrmSnapshot.from_json(LABELLED).named(["p1_subscriptions"])
    assert snapshot.counts() == {"companies": 2, "p1_subscriptions": 1}
    labels = snapshot.frame.objects["p1_subscriptions"].labels["companies"]
    assert labels.rows() == [(0, "1", "Billing")]  # one row per label of a pair, once
    assert snapshot.type_id("p1_subscriptions") == "2-55"
    assert snapshot.frame.members("companies", "VIP") == {"1", "2"}
    unpacked = unpack_snapshot(pack_snapshot(snapshot, datetime(2026, 11, 2, tzinfo=UTC)))
    assert unpacked is not None
    held = unpacked[0]
    assert held.to_json() == snapshot.to_json()
    assert held.to_json()["p1_subscriptions"][0]["associations"] == {
        "companies": [{"id": "1", "labels": ["Billing"]}, "2"]
    }
    assert held.lists == snapshot.lists and held.schemas == LABELLED["schemas"]


def test_one_account_is_found_by_id() -> None:
    snapshot = CrmSnapshot.from_json(DIRTY)
    assert snapshot.record("companies", "9") == CrmRecord("9", {"name": "B\ufffdee\tco"})
    assert snapshot.record("companies", "404") is None
    assert snapshot.record("deals", "9") is None
