"""`enrich:`: warehouse rows (PostgreSQL, SQLite) and files joined onto accounts, then scored.

Real databases, no mocks: PostgreSQL at 127.0.0.1:5432 (db `test`, a table made
for the test and dropped after) and a SQLite file. The scores were computed by
hand from the rows below.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from healthscore.actions import load_playbook
from healthscore.cli import app
from healthscore.core.crm import CrmRecord, CrmSnapshot
from healthscore.core.enrich import cell_string
from healthscore.errors import SourceError
from healthscore.reports.run_summary import markdown_report, summarize
from healthscore.sources.enrich import enrich

AS_OF = "2026-03-01T09:00:00Z"
ENV = "H16B_TEST_WAREHOUSE_URL"
runner = CliRunner()

# The warehouse: one row per domain; ghost.org is no customer of ours (an unmatched row).
ROWS = [
    ("ACME.com", 40, 50, datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),
    ("beta.io", 5, 20, datetime(2026, 1, 1, 8, 0, tzinfo=UTC)),
    ("ghost.org", 9, 9, datetime(2026, 2, 27, 8, 0, tzinfo=UTC)),
]
# The CRM: Acme's domain with a space and in lower case, Beta's in upper case; Gamma has
# no row (and a stale copy of active_users in HubSpot, which the entry's column hides);
# Delta has no domain at all.
CRM = {
    "owners": [],
    "companies": [
        {"id": "101", "properties": {"name": "Acme", "domain": " acme.com"}},
        {"id": "102", "properties": {"name": "Beta", "domain": "Beta.IO"}},
        {"id": "103", "properties": {"name": "Gamma", "domain": "gamma.net", "active_users": "99"}},
        {"id": "104", "properties": {"name": "Delta"}},
    ],
}
PLAYBOOK = """
name: Usage health
enrich:
  - name: usage
    {where}
    query: >-
      select domain, active_users, seats, last_login
      from {table} where active_users > 0
    key: {{account: domain, column: domain}}
derived:
  usage_per_seat: active_users / seats
groups:
  - name: Usage
    rules:
      - {{name: Active users, when: [{{property: active_users, op: gte, value: 10}}], points: 30}}
      - {{name: Seats used, property: usage_per_seat, scale: {{from: [0, 1], to: [0, 50]}}}}
      - {{name: Recent login, when: [{{property: last_login, op: within_last_days, value: 7}}],
         points: 10}}
"""
# By hand, as of 2026-03-01 09:00 UTC:
#   101 Acme: 40 >= 10 -> 30; 40/50 = 0.8 -> 40; login 20.9 hours ago -> 10; = 80
#   102 Beta: 5 -> 0; 5/20 = 0.25 -> 12.5; login 59 days ago -> 0; = 12.5
#   103 Gamma, 104 Delta: no row, every column unknown -> 0 (not Gamma's stale 99 -> 30)
EXPECTED = {"101": 80.0, "102": 12.5, "103": 0.0, "104": 0.0}
COUNTS_LINE = "3 rows, 2 joined, 1 unmatched (ghost.org); 2 of 4 scored accounts without a row"


@pytest.fixture(params=["postgresql", "sqlite"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """(dialect, playbook path): the rows in a real database, the playbook reading them."""
    table = f"h16b_usage_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        import sqlalchemy

        url = request.getfixturevalue("pg_url")
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"create table {table} (domain text primary key, active_users integer, "
                "seats integer, last_login timestamptz)"
            )
            connection.exec_driver_sql(f"insert into {table} values (%s, %s, %s, %s)", ROWS)
        monkeypatch.setenv(ENV, url)  # the URL from the environment, never the playbook
        where = f"url_env: {ENV}"
    else:
        path = tmp_path / "warehouse.db"
        with sqlite3.connect(path) as connection:
            connection.execute(
                f"create table {table} (domain text, active_users int, seats int, last_login text)"
            )
            connection.executemany(
                f"insert into {table} values (?, ?, ?, ?)",
                [(d, a, s, t.isoformat()) for d, a, s, t in ROWS],
            )
        where = f"url: sqlite:///{path}"  # no password: allowed in the playbook
    book = tmp_path / "usage.yaml"
    book.write_text(PLAYBOOK.format(where=where, table=table), encoding="utf-8")
    try:
        yield request.param, book
    finally:
        if request.param == "postgresql":
            with engine.begin() as connection:
                connection.exec_driver_sql(f"drop table {table}")
            engine.dispose()


@pytest.fixture
def crm(tmp_path: Path) -> str:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(CRM), encoding="utf-8")
    return f"file:{path}"


def test_score_uses_warehouse_columns_and_counts_what_did_not_match(
    warehouse: tuple[str, Path], crm: str
) -> None:
    dialect, book = warehouse
    result = runner.invoke(
        app, ["score", "-p", str(book), "-s", crm, "--as-of", AS_OF, "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    scores = {s["id"]: s["score"] for s in json.loads(result.stdout)}
    assert scores == EXPECTED
    assert result.stderr.strip() == f"enrich:usage ({dialect}): {COUNTS_LINE}"


def test_explain_shows_where_each_value_came_from(warehouse: tuple[str, Path], crm: str) -> None:
    dialect, book = warehouse
    origin = f"enrich:usage ({dialect})"
    text = runner.invoke(app, ["explain", "101", "-p", str(book), "-s", crm, "--as-of", AS_OF])
    assert text.exit_code == 0, text.output
    assert f"active_users = '40' from {origin}" in text.output
    assert f"active_users = '40' ({origin})" in text.output  # in the rule's row
    assert "score 80 →" in text.output

    data = runner.invoke(
        app, ["explain", "103", "-p", str(book), "-s", crm, "--as-of", AS_OF, "--json"]
    )
    payload = json.loads(data.stdout)
    assert payload["score"] == 0.0
    assert payload["enriched"]["active_users"] == {"value": None, "from": origin}
    assert set(payload["enriched"]) == {"active_users", "seats", "last_login"}


@pytest.mark.usefixtures("prefect_harness")
def test_run_summary_counts_unmatched_rows_and_accounts(
    warehouse: tuple[str, Path], crm: str, tmp_path: Path
) -> None:
    dialect, book = warehouse
    db = f"sqlite:///{tmp_path / 'history.db'}"
    common = ["run", "-p", str(book), "-s", crm, "--db", db, "--as-of", AS_OF]
    text = runner.invoke(app, common)
    assert text.exit_code == 0, text.output
    assert f"enrich:usage ({dialect}): {COUNTS_LINE}" in text.output

    rerun = runner.invoke(app, [*common, "--json"])
    summary = json.loads(rerun.stdout)
    assert summary["enrichment"] == [
        {
            "name": "usage",
            "origin": f"enrich:usage ({dialect})",
            "rows": 3,
            "matched_rows": 2,
            "unmatched_rows": 1,
            "unmatched_keys": ["ghost.org"],
            "scored_accounts": 4,
            "unmatched_accounts": 2,
        }
    ]
    from healthscore.history import open_store

    with open_store(db) as store:
        assert store.account_history("101", "Usage health", 1)[0].score == 80.0
        assert store.account_history("102", "Usage health", 1)[0].score == 12.5


def test_the_markdown_report_names_the_counts(warehouse: tuple[str, Path], crm: str) -> None:
    from healthscore.core.scoring import Scorer
    from healthscore.core.trends import Baseline, compare
    from healthscore.sources import load_snapshot

    dialect, book = warehouse
    playbook = load_playbook(book)
    enriched = enrich(load_snapshot(crm, playbook), playbook)
    scores = Scorer(playbook).score_snapshot(enriched.snapshot, datetime(2026, 3, 1, 9, tzinfo=UTC))
    comparisons = compare(scores, Baseline(), 3)
    summary = summarize(
        playbook,
        comparisons,
        as_of=AS_OF,
        source=crm,
        dry_run=True,
        run_id=None,
        enrichment=enriched.counts,
    )
    assert f"- enrich:usage ({dialect}): {COUNTS_LINE}\n" in markdown_report(playbook, summary)


# ---------------------------------------------------------------- files and errors


def _file_playbook(tmp_path: Path, file: str, column: str = "company_id") -> Path:
    book = tmp_path / "files.yaml"
    book.write_text(
        f"""
name: File usage
enrich:
  - name: usage
    file: {file}
    key: {{account: hs_object_id, column: {column}}}
groups:
  - name: Usage
    rules:
      - {{property: usage_ratio, scale: {{from: [0, 1], to: [0, 100]}}}}
""",
        encoding="utf-8",
    )
    return book


def _accounts() -> CrmSnapshot:
    return CrmSnapshot(
        objects={"companies": [CrmRecord("101", {"name": "Acme"}), CrmRecord("102", {})]}
    )


def test_a_parquet_file_joins_by_record_id_with_hubspot_strings(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "company_id": [101, 102, 999],
            "usage_ratio": [0.75, 1.0, 0.5],
            "renewal": [date(2026, 6, 30), None, date(2027, 1, 1)],
            "active": [True, False, True],
        }
    ).write_parquet(tmp_path / "usage.parquet")
    playbook = load_playbook(_file_playbook(tmp_path, "usage.parquet"))  # relative to it
    enriched = enrich(_accounts(), playbook)
    props = {r.id: r.properties for r in enriched.snapshot.records("companies")}
    assert props["101"] == {
        "name": "Acme",
        "usage_ratio": "0.75",
        "renewal": "2026-06-30",
        "active": "true",
    }
    assert props["102"] == {"usage_ratio": "1", "active": "false"}  # NULL: unset, unknown
    (counts,) = enriched.counts
    assert (counts.origin, counts.rows, counts.matched_rows, counts.unmatched_keys) == (
        "enrich:usage (usage.parquet)",
        3,
        2,
        ("999",),
    )


def test_a_csv_file_keeps_text_as_written(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").write_text(
        "Company_ID,usage_ratio,plan\n101,0.50,007\n102,,gold\n", encoding="utf-8"
    )
    playbook = load_playbook(_file_playbook(tmp_path, "usage.csv"))
    enriched = enrich(_accounts(), playbook)  # key column found ignoring case
    props = {r.id: r.properties for r in enriched.snapshot.records("companies")}
    assert props["101"]["usage_ratio"] == "0.50" and props["101"]["plan"] == "007"
    assert props["102"].get("usage_ratio") is None


def test_a_key_on_two_rows_or_a_missing_key_column_names_the_entry(tmp_path: Path) -> None:
    (tmp_path / "twice.csv").write_text("company_id,usage_ratio\n101,1\n101,2\n", "utf-8")
    book = _file_playbook(tmp_path, "twice.csv")
    with pytest.raises(SourceError) as twice:
        enrich(_accounts(), load_playbook(book))
    assert str(twice.value) == (
        f"{book}:4: enrich:usage: two rows have the key '101' in column 'company_id'; "
        "return one row per account (e.g. GROUP BY the key)"
    )
    book = _file_playbook(tmp_path, "twice.csv", column="account")
    with pytest.raises(SourceError, match=r":4: enrich:usage: no column 'account' \(key.column\)"):
        enrich(_accounts(), load_playbook(book))


def test_an_unset_url_env_says_which_variable_and_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crm: str
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    book = tmp_path / "unset.yaml"
    book.write_text(PLAYBOOK.format(where=f"url_env: {ENV}", table="t"), encoding="utf-8")
    result = runner.invoke(app, ["score", "-p", str(book), "-s", crm])
    assert result.exit_code == 2
    assert f"{book}:4: enrich:usage: the environment variable {ENV} is not set" in result.stderr
    assert "'h16b-test-warehouse-url'" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (12.0, "12"),
        (0.1, "0.1"),
        (float("nan"), None),
        (True, "true"),
        (7, "7"),
        (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "2026-01-02T03:04:00+00:00"),
        (date(2026, 1, 2), "2026-01-02"),
    ],
)
def test_cell_values_become_hubspot_strings(value: Any, text: str | None) -> None:
    assert cell_string(value) == text


# ---------------------------------------------------------------- write-back of joined columns

WRITEBACK = """
name: Usage health
enrich:
  - name: usage
    url: sqlite:///{path}
    query: select domain, active_users, plan from usage
    key: {{account: domain, column: domain}}
    writeback: [active_users]
groups:
  - name: Usage
    rules:
      - {{when: [{{property: active_users, op: gte, value: 10}}], points: 30}}
"""


@pytest.mark.usefixtures("prefect_harness")
def test_joined_columns_are_written_back_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubspot import HubSpot

    from flows.score_accounts import score_accounts
    from healthscore.sandbox import running_sandbox

    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as connection:
        connection.execute("create table usage (domain text, active_users int, plan text)")
        connection.executemany(
            "insert into usage values (?, ?, ?)", [("acme.com", 40, "gold"), ("beta.io", 5, "free")]
        )
    book = tmp_path / "usage.yaml"
    book.write_text(WRITEBACK.format(path=path), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'history.db'}"

    def held(urls: Any) -> dict[str, str | None]:
        api = HubSpot(access_token="t", host=urls.hubspot_url).crm.companies.basic_api
        return {
            i: api.get_by_id(i, properties=["usage_health_active_users"]).properties.get(
                "usage_health_active_users"
            )
            for i in ("101", "102", "103")
        }

    with running_sandbox(seed=CRM) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        first = score_accounts(str(book), source="sandbox", as_of=AS_OF, db_url=db)
        # 4 companies: score, status, trend and the group on each, plus active_users on
        # the two with a row (nothing to clear on the others)
        assert (first["written_records"], first["written_values"]) == (4, 4 * 4 + 2)
        assert held(urls) == {"101": "40", "102": "5", "103": None}

        with sqlite3.connect(path) as connection:  # Acme grows, Beta's row disappears
            connection.execute("update usage set active_users = 41 where domain = 'acme.com'")
            connection.execute("delete from usage where domain = 'beta.io'")
        second = score_accounts(str(book), source="sandbox", as_of="2026-03-02T09:00Z", db_url=db)
        assert held(urls)["101"] == "41"
        assert held(urls)["102"] in (None, "")  # cleared: the warehouse has no row any more
        assert second["enrichment"][0]["unmatched_accounts"] == 3


def test_doctor_knows_the_columns_come_from_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from healthscore.sandbox import running_sandbox

    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as connection:
        connection.execute("create table usage (domain text, active_users int, plan text)")
    book = tmp_path / "usage.yaml"
    text = WRITEBACK.format(path=path)
    book.write_text(text, encoding="utf-8")
    typo = tmp_path / "typo.yaml"  # a column the query does not return: HubSpot lacks it too
    typo.write_text(text.replace("property: active_users", "property: active_userz"), "utf-8")
    with running_sandbox(seed=CRM) as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        fine = runner.invoke(app, ["doctor", "-p", str(book), "-s", "sandbox"])
        assert fine.exit_code == 0, fine.output
        bad = runner.invoke(app, ["doctor", "-p", str(typo), "-s", "sandbox"])
    assert bad.exit_code == 2
    assert "companies: property active_userz does not exist in HubSpot" in bad.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_a_scheduled_run_finds_the_url_in_a_prefect_secret_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crm: str
) -> None:
    from prefect.blocks.system import Secret

    from flows.score_accounts import score_accounts

    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as connection:
        connection.execute("create table usage (domain text, active_users int, seats int, x text)")
        connection.executemany(
            "insert into usage values (?, ?, ?, ?)", [(d, a, s, "") for d, a, s, _ in ROWS]
        )
    env = "H16B_TEST_BLOCK_URL"
    monkeypatch.delenv(env, raising=False)
    Secret(value=f"sqlite:///{path}").save("h16b-test-block-url", overwrite=True)
    book = tmp_path / "usage.yaml"
    book.write_text(
        PLAYBOOK.format(where=f"url_env: {env}", table="usage").replace("last_login", "x"),
        encoding="utf-8",
    )
    summary = score_accounts(
        str(book), source=crm, as_of=AS_OF, db_url=f"sqlite:///{tmp_path / 'h.db'}", dry_run=True
    )
    (entry,) = summary["enrichment"]
    assert (entry["origin"], entry["matched_rows"], entry["unmatched_accounts"]) == (
        "enrich:usage (sqlite)",
        2,
        2,
    )
    # Acme: 30 + 40 + 0 (its login column is empty now) = 70, Neutral; Beta 12.5; the rest 0
    assert summary["counts"] == {"Healthy": 0, "Neutral": 1, "At-risk": 3}
