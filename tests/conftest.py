"""Test-wide setup.

Prefect's test harness isolates its database but not `$PREFECT_HOME`, so a
temporary home is set before anything imports prefect: cached results must not
leak between test sessions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="healthscore-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Flow runs write a dashboard; on PostgreSQL the default folder would be the user's data dir.
os.environ.setdefault("HEALTHSCORE_DASHBOARD_DIR", tempfile.mkdtemp(prefix="healthscore-dash-"))

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
PG_URL = os.environ.get(
    "HEALTHSCORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real, ephemeral Prefect server for the flow tests (started once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def pg_url() -> str:
    """PostgreSQL for the history store. In CI a missing server fails, never skips."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any connection failure
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    return PG_URL


def pg_schema_url(base: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test (search_path in the URL), dropped after."""
    import uuid

    import sqlalchemy

    schema = f"hs_test_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The history store's URL: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    yield from pg_schema_url(request.getfixturevalue("pg_url"))
