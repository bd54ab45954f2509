"""Reading every account's associations from one CRM export (`integrations.hubspot.exports`).

The file's columns are HubSpot's (`Record ID`, `Associated <Type> IDs` with ids
joined by `;`); anything else in it makes the pull fall back to the v4 read,
never a guess.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput

from healthscore.actions import load_playbook
from healthscore.core.playbook import Playbook
from healthscore.core.scoring import Scorer
from healthscore.integrations.hubspot.client import HubSpotConnection
from healthscore.integrations.hubspot.exports import (
    ExportUnusable,
    column,
    read_file,
    worth_exporting,
)
from healthscore.integrations.hubspot.pull import PullResult, _puller, pull
from healthscore.sandbox import SandboxUrls, running_sandbox
from tests.test_hubspot_source import fast_connection
from tests.test_new_criteria import AS_OF, EVENT_VALUES, LABELS, LABELS_EXPECTED, SEED

HEADER = "Record ID,Associated Contact IDs,Associated Meeting IDs\n"


def pairs(data: bytes, kind: str) -> list[tuple[str, str]]:
    return [tuple(row) for row in read_file(data, ["contacts", "meetings"])[kind].iter_rows()]


def test_columns_are_named_as_hubspot_names_them() -> None:
    assert column("contacts") == "Associated Contact IDs"
    assert column("meetings") == "Associated Meeting IDs"
    assert column("tickets") == "Associated Ticket IDs"


def test_ids_joined_by_semicolons_become_one_pair_each_in_file_order() -> None:
    data = (HEADER + '11,"301;302",\n12,,"901"\n13,"303; 301;303","902;903"\n').encode()
    assert pairs(data, "contacts") == [("301", "11"), ("302", "11"), ("303", "13"), ("301", "13")]
    assert pairs(data, "meetings") == [("901", "12"), ("902", "13"), ("903", "13")]
    listed = read_file(data, ["contacts", "meetings"])["Record ID"].get_column("to").to_list()
    assert listed == ["11", "12", "13"]


def test_a_byte_order_mark_and_a_zip_of_parts_read_the_same() -> None:
    part_one = HEADER + '11,"301;302",\n'
    part_two = HEADER + '12,,"901"\n'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export-10.csv", "\ufeff" + part_two)
        archive.writestr("export-9.csv", "\ufeff" + part_one)
    zipped = buffer.getvalue()
    whole = ("\ufeff" + HEADER + '11,"301;302",\n12,,"901"\n').encode()
    assert pairs(zipped, "contacts") == pairs(whole, "contacts") == [("301", "11"), ("302", "11")]
    assert pairs(zipped, "meetings") == pairs(whole, "meetings") == [("901", "12")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Record ID,Associated Contact IDs\n11,301\n", "no column 'Associated Meeting IDs'"),
        (b"Company name,Associated Contact IDs\n", "no column 'Record ID'"),
        (b"PK\x03\x04 not a zip", "not a readable CSV"),
    ],
)
def test_a_file_not_shaped_as_expected_is_refused_with_the_reason(
    data: bytes, message: str
) -> None:
    with pytest.raises(ExportUnusable, match=message):
        read_file(data, ["contacts", "meetings"])


@pytest.mark.parametrize(
    ("types", "accounts", "worth"),
    [
        (["contacts"], 3_000, False),  # 3 v4 batches: no fewer than an export's 3 calls
        (["contacts"], 3_001, True),  # 4
        (["contacts", "deals"], 1_000, False),  # 2
        (["contacts", "deals", "tickets", "meetings"], 10_000, True),  # 40
        (["contacts", "deals", "tickets", "meetings"], 0, False),
    ],
)
def test_an_export_is_used_only_where_it_saves_calls(
    types: list[str], accounts: int, worth: bool
) -> None:
    assert worth_exporting(types, accounts, 1_000) is worth


# ---------------------------------------------------------------- against the sandbox

COMBINED = LABELS + EVENT_VALUES.split("rules:\n", 1)[1]  # one group: labels, meetings
PLAYBOOK_TEXT = COMBINED.replace("name: Labels", "name: Labels and meetings", 1)


def _playbook(tmp_path: Path) -> Playbook:
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK_TEXT)
    return load_playbook(path)


def _connection(url: str, read: str = "export", wait: float | None = None) -> HubSpotConnection:
    connection = fast_connection(url)
    connection.association_read = read
    if wait is not None:
        connection.export_wait = wait
    return connection


def _scores(playbook: Playbook, result: PullResult) -> dict[str, dict[str, float]]:
    scored = Scorer(playbook).score_snapshot(result.snapshot, datetime.fromisoformat(AS_OF))
    return {s.id: s.to_json()["rules"] for s in scored}


@pytest.fixture(scope="module")
def crm() -> Iterator[SandboxUrls]:
    with running_sandbox(SEED, rate_limit=100_000, search_rate_per_second=1_000) as urls:
        yield urls


def test_labelled_types_keep_the_v4_read_the_others_come_from_the_export(
    crm: SandboxUrls, tmp_path: Path
) -> None:
    playbook = _playbook(tmp_path)
    assert playbook.labelled_types() == {"contacts"}
    httpx.post(f"{crm.base_url}/_sandbox/clear-stats")
    exported = pull(playbook, _connection(crm.hubspot_url))
    counted = httpx.get(f"{crm.base_url}/_sandbox/stats").json()["calls"]
    assert exported.associations == (
        "associations: meetings from one CRM export (1 status poll); "
        "contacts with the v4 batch read: its association labels are read"
    )
    assert counted["POST /crm/v3/exports/export/async"] == 1
    assert counted["POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"] == 1
    batch = pull(playbook, _connection(crm.hubspot_url, "batch"))
    assert exported.snapshot.to_json() == batch.snapshot.to_json()
    rules = _scores(playbook, exported)
    sentiment = {k: dict(rules[k]["Sentiment"]) for k in LABELS_EXPECTED}
    meetings = {k: points.pop("Meetings by type") for k, points in sentiment.items()}
    assert sentiment == LABELS_EXPECTED
    assert meetings == {"101": 6.0, "102": 1.5}  # EVENT_VALUES's figures


def test_a_refused_export_falls_back_to_the_v4_read_and_says_why(tmp_path: Path) -> None:
    playbook = _playbook(tmp_path)
    with running_sandbox(
        SEED, rate_limit=100_000, search_rate_per_second=1_000, export_daily_limit=1
    ) as urls:
        first = pull(playbook, _connection(urls.hubspot_url))  # HubSpot's one export today
        httpx.post(f"{urls.base_url}/_sandbox/clear-stats")
        second = pull(playbook, _connection(urls.hubspot_url))
        counted = httpx.get(f"{urls.base_url}/_sandbox/stats")
    assert "from one CRM export" in first.associations
    assert second.associations == (
        "associations: contacts, meetings with the v4 batch read: "
        "HubSpot refused the export (HTTP 429 Too Many Requests; HubSpot allows 30 exports "
        "in a rolling 24 hours)"
    )
    # the refused start is one call, not retried: a daily limit is not waited out
    calls = counted.json()["calls"]
    assert calls["POST /crm/v3/exports/export/async"] == 1
    assert calls["POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"] == 2
    assert second.snapshot.to_json() == first.snapshot.to_json()


def test_an_export_is_polled_until_ready_and_one_too_slow_gives_way(tmp_path: Path) -> None:
    playbook = _playbook(tmp_path)
    with running_sandbox(
        SEED, rate_limit=100_000, search_rate_per_second=1_000, export_seconds=2.5
    ) as urls:
        waited = pull(playbook, _connection(urls.hubspot_url))
        # polls at about 0, 1 and 3 s (pauses of 1 s, then 2 s): ready at the third
        assert waited.associations.startswith("associations: meetings from one CRM export (3")
        late = pull(playbook, _connection(urls.hubspot_url, wait=0.5))
    assert late.associations == (
        "associations: contacts, meetings with the v4 batch read: "
        "the export was not ready after 0.5 s"
    )
    assert late.snapshot.to_json() == waited.snapshot.to_json()


def test_an_account_created_after_the_export_started_is_read_with_the_v4_read(
    crm: SandboxUrls, tmp_path: Path
) -> None:
    playbook = _playbook(tmp_path)
    connection = _connection(crm.hubspot_url)
    puller = _puller(playbook, connection, None, None)
    puller.start_export(accounts=1)
    assert puller.export is not None
    client = HubSpot(access_token="test-token", host=crm.hubspot_url)
    company = client.crm.companies.basic_api.create(CompanyInput(properties={"name": "Late Co"})).id
    client.crm.associations.v4.basic_api.create_default("meetings", "407", "companies", company)
    edges = puller.account_edges("meetings", ["101", str(company)])
    meetings = {row[1]: [] for row in edges.iter_rows()}
    for meeting, account in edges.iter_rows():
        meetings[account].append(meeting)
    assert meetings[str(company)] == ["407"]  # the v4 read: 1 batch of 1 id
    assert puller.v4_types == []  # the type itself still came from the export
    assert sorted(meetings["101"]) == sorted(
        m["id"] for m in SEED["meetings"] if "101" in m["associations"]["companies"]
    )
