"""History store and trend rules: exact numbers on hand-made histories, SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from healthscore.actions import parse_playbook
from healthscore.core.scoring import AccountScore, GroupScore
from healthscore.core.trends import (
    Baseline,
    PastScore,
    Transition,
    WindowRange,
    biggest_movers,
    compare,
    dropped_by,
    rose_by,
    transition_of,
    trend_of,
)
from healthscore.history import (
    CacheEntry,
    HistoryStore,
    RunInfo,
    StoreError,
    data_dir,
    default_db_url,
    open_store,
    store_exists,
)

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
PLAYBOOK = parse_playbook(
    """
name: Test health
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 80]}}
trend: {compare_days: 30, flat_band: 3}
actions:
  - name: Drop
    on: {score_dropped_by: 15, within_days: 30}
    do: jira
    project: CS
    summary: "drop"
"""
)


@pytest.fixture
def store(db_url: str) -> Iterator[HistoryStore]:
    with open_store(db_url) as opened:
        yield opened


def account(account_id: str, score: float, status: str | None = None) -> AccountScore:
    status = status or ("Healthy" if score >= 80 else "Neutral" if score >= 60 else "At-risk")
    return AccountScore(
        id=account_id,
        name=f"Account {account_id}",
        owner_id="1",
        score=score,
        status=status,
        color={"Healthy": "green", "Neutral": "yellow"}.get(status, "red"),
        groups=[GroupScore("Usage", score, score, [])],
    )


def record(store: HistoryStore, as_of: datetime, scores: dict[str, float]) -> int:
    """Store one run the way the flow does: compare with the stored past, then record."""
    accounts = [account(i, s) for i, s in scores.items()]
    comparisons = compare(accounts, store.baseline(PLAYBOOK, as_of), PLAYBOOK.trend.flat_band)
    run = RunInfo(PLAYBOOK.name, PLAYBOOK.content_hash, as_of, "file:test.json", as_of)
    return store.record_run(run, comparisons)


# ---------------------------------------------------------------- pure rules


def test_trend_rule_is_inclusive_at_flat_band() -> None:
    assert trend_of(73.0, 70.0, 3) == "up"
    assert trend_of(72.99, 70.0, 3) == "flat"
    assert trend_of(67.0, 70.0, 3) == "down"
    assert trend_of(67.01, 70.0, 3) == "flat"
    assert trend_of(70.3, 70.0, 0.3) == "up"  # no float noise: 70.3 - 70.0 = 0.29999...
    assert trend_of(50.0, None, 3) == "new"


def test_transition_includes_first_score() -> None:
    assert transition_of(None, "Healthy") == Transition(None, "Healthy")
    assert transition_of("Healthy", "Healthy") is None
    assert transition_of("Healthy", "At-risk") == Transition("Healthy", "At-risk")


def test_drop_and_rise_over_a_window() -> None:
    assert dropped_by(60.0, 75.0, 15)
    assert not dropped_by(60.01, 75.0, 15)
    assert rose_by(80.0, 65.0, 15)
    assert not rose_by(79.99, 65.0, 15)


def test_compare_uses_previous_for_trend_and_last_run_for_status() -> None:
    baseline = Baseline(
        previous={"a": PastScore(70.0, "Neutral", T0)},
        last_run={"a": PastScore(85.0, "Healthy", T0 + timedelta(days=20))},
        windows={30.0: {"a": WindowRange(high=85.0, low=70.0)}},
    )
    (c,) = compare([account("a", 69.996)], baseline, 3)
    assert c.rounded == 70.0
    assert (c.previous, c.delta, c.trend) == (70.0, 0.0, "flat")
    assert c.transition == Transition("Healthy", "Neutral")
    assert c.dropped_by(15, 30) and not c.dropped_by(15.01, 30)
    assert not c.rose_by(1, 30)
    assert not c.dropped_by(1, 7)  # no stored score in that window: never fires


def test_biggest_movers_by_absolute_delta() -> None:
    baseline = Baseline(
        previous={i: PastScore(50.0, "At-risk", T0) for i in "abc"},
        last_run={},
    )
    comparisons = compare([account("a", 55), account("b", 30), account("c", 50)], baseline, 3)
    assert [c.id for c in biggest_movers(comparisons)] == ["b", "a"]


# ---------------------------------------------------------------- the store


def test_three_runs_give_exact_trends_transitions_and_windows(store: HistoryStore) -> None:
    record(store, T0, {"a": 90.0, "b": 50.0, "c": 70.0})
    record(store, T0 + timedelta(days=14), {"a": 85.0, "b": 65.0, "c": 70.0})
    record(store, T0 + timedelta(days=28), {"a": 82.0, "b": 66.0, "c": 71.0})

    as_of = T0 + timedelta(days=42)
    baseline = store.baseline(PLAYBOOK, as_of)
    # at least 30 days old: the run of day 0 (day 14 is only 28 days old)
    assert {k: v.score for k, v in baseline.previous.items()} == {"a": 90.0, "b": 50.0, "c": 70.0}
    assert {k: v.status for k, v in baseline.last_run.items()} == {
        "a": "Healthy",
        "b": "Neutral",
        "c": "Neutral",
    }
    # window [day 12, day 42]: runs of day 14 and 28
    assert baseline.windows[30.0]["a"] == WindowRange(85.0, 82.0)

    comparisons = {
        c.id: c
        for c in compare(
            [account("a", 68.0), account("b", 52.5), account("c", 72.99), account("d", 10)],
            baseline,
            3,
        )
    }
    a, b, c, d = (comparisons[k] for k in "abcd")
    assert (a.previous, a.delta, a.trend) == (90.0, -22.0, "down")
    assert a.transition == Transition("Healthy", "Neutral")
    assert a.dropped_by(15, 30) and not a.dropped_by(17.01, 30)
    assert (b.delta, b.trend, b.transition) == (2.5, "flat", Transition("Neutral", "At-risk"))
    assert (c.delta, c.trend, c.transition) == (2.99, "flat", None)
    assert (d.previous, d.trend, d.transition) == (None, "new", Transition(None, "At-risk"))


def test_stored_snapshot_carries_the_comparison(store: HistoryStore) -> None:
    record(store, T0, {"a": 90.0})
    run_id = record(store, T0 + timedelta(days=30), {"a": 79.995})  # rounds to 80.0
    (latest, first) = store.account_history("a", PLAYBOOK.name)
    assert latest.run_id == run_id
    assert (latest.score, latest.previous_score, latest.delta) == (80.0, 90.0, -10.0)
    # the status reads the unrounded score (79.995 < 80), the report the rounded one
    assert (latest.trend, latest.status, latest.previous_status) == ("down", "Neutral", "Healthy")
    assert latest.groups == {"Usage": 80.0}
    assert (first.trend, first.previous_status) == ("new", None)
    assert store.run(run_id).counts == {"Neutral": 1}
    assert store.run(run_id).outcome == "running"
    store.finish_run(run_id, "succeeded")
    assert store.run(run_id).outcome == "succeeded"


def test_rerun_at_same_as_of_is_the_previous_run(store: HistoryStore) -> None:
    record(store, T0, {"a": 50.0})
    record(store, T0, {"a": 65.0})
    latest = store.latest_per_account(PLAYBOOK.name, T0)
    assert latest["a"].score == 65.0


def test_latest_per_account_is_one_query(store: HistoryStore) -> None:
    for week in range(6):
        record(store, T0 + timedelta(days=7 * week), {str(i): float(i + week) for i in range(50)})
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        latest = store.latest_per_account(PLAYBOOK.name, T0 + timedelta(days=20))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert "row_number() OVER" in statements[0]
    assert len(latest) == 50
    assert latest["7"].score == 7.0 + 2  # the run of day 14
    assert latest["7"].as_of == T0 + timedelta(days=14)


def test_a_failed_write_leaves_no_half_run(store: HistoryStore) -> None:
    record(store, T0, {"a": 50.0})
    duplicate = [account("x", 10.0), account("x", 20.0)]  # violates one-per-account-per-run
    comparisons = compare(duplicate, Baseline(), 3)
    run = RunInfo(PLAYBOOK.name, "h", T0 + timedelta(days=1), "file:x", T0)
    with pytest.raises(sa.exc.IntegrityError):
        store.record_run(run, comparisons, CacheEntry("k", T0, b"{}"))
    assert len(store.runs()) == 1
    assert store.snapshot_count() == 1
    assert store.load_cache("k") is None


def test_crm_cache_round_trip_and_replace(store: HistoryStore) -> None:
    run = RunInfo(PLAYBOOK.name, "h", T0, "sandbox", T0)
    store.record_run(run, [], CacheEntry("sandbox:abc", T0, b"\x00one", "sig1"))
    later = T0 + timedelta(hours=1, microseconds=5)
    store.record_run(run, [], CacheEntry("sandbox:abc", later, b"\x00two", "sig2"))
    cached = store.load_cache("sandbox:abc")
    assert cached == CacheEntry("sandbox:abc", later, b"\x00two", "sig2")


def test_playbooks_do_not_mix(store: HistoryStore) -> None:
    record(store, T0, {"a": 50.0})
    assert store.latest_per_account("Another playbook", T0) == {}


# ---------------------------------------------------------------- opening


def test_default_url_follows_env_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEALTHSCORE_DB_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert data_dir() == tmp_path / "xdg" / "healthscore"
        assert default_db_url() == f"sqlite:///{tmp_path / 'xdg' / 'healthscore' / 'history.db'}"
    monkeypatch.setenv("HEALTHSCORE_DB_URL", "postgresql+psycopg://u@h/db")
    assert default_db_url() == "postgresql+psycopg://u@h/db"


def test_open_creates_folder_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'h.db'}"
    assert not store_exists(url)
    with open_store(url) as first:
        record(first, T0, {"a": 1.0})
    with open_store(url) as again:
        assert len(again.runs()) == 1
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    from importlib import resources

    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(resources.files("healthscore") / "migrations"))
    assert version == scripts.get_current_head()  # whatever the newest revision is


def test_bad_urls_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("nonsense://")
    with pytest.raises(StoreError, match="cannot open"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_migrations_ship_in_the_wheel_and_run_from_it(tmp_path: Path) -> None:
    """Build the wheel, unpack it and open a store from the unpacked copy only."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("healthscore-*.whl")
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    assert (installed / "healthscore/migrations/versions/0001_history.py").is_file()
    assert (installed / "flows/score_accounts.py").is_file()
    check = (
        "import healthscore, sys; from healthscore.history import open_store;"
        f"assert healthscore.__file__.startswith({str(installed)!r}), healthscore.__file__;"
        f"open_store('sqlite:///{tmp_path / 'h.db'}').runs()"
    )
    subprocess.run(
        [sys.executable, "-c", check],
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
    )
