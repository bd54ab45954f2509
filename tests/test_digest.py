"""The weekly digest flow under Prefect: one Slack message per run, numbers equal to the store.

The expected numbers come from direct SQL on the history database, never from the
digest's own code; the message is read back from the Slack sandbox's inspection API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from healthscore.reports.digest import slack_escape
from healthscore.sandbox import running_sandbox
from tests.portfolio_history import CHANNEL, HOSTILE, make_history

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with running_sandbox() as urls:
        monkeypatch.setenv("HEALTHSCORE_SANDBOX_URL", urls.hubspot_url)
        yield urls


def leadership_messages(urls: Any) -> list[dict[str, Any]]:
    messages = httpx.get(urls.base_url + "/_sandbox/slack/messages").json()["messages"]
    return [m for m in messages if m.get("channel_name") == "cs-leadership"]


def message_text(message: dict[str, Any]) -> str:
    parts = [message["text"]]
    for block in message.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(parts)


def expected_from_sql(url: str) -> dict[str, Any]:
    """The digest's numbers, straight from the tables."""
    engine = sa.create_engine(url)
    with engine.connect() as c:
        latest = c.execute(
            sa.text("SELECT id, as_of, owners FROM runs ORDER BY as_of DESC, id DESC LIMIT 1")
        ).one()
        runs = c.execute(sa.text("SELECT id, as_of FROM runs")).all()
        cutoff = _moment(latest.as_of) - timedelta(days=7)
        week_ago = max(
            (r for r in runs if _moment(r.as_of) <= cutoff), key=lambda r: (_moment(r.as_of), r.id)
        ).id
        counts = dict(
            c.execute(
                sa.text(
                    "SELECT status, count(*) FROM account_snapshots WHERE run_id = :r "
                    "GROUP BY status"
                ),
                {"r": latest.id},
            ).all()
        )
        owners = c.execute(
            sa.text(
                "SELECT owner_id, count(*) AS n, avg(score) AS average, "
                "sum(CASE WHEN status = 'At-risk' THEN 1 ELSE 0 END) AS at_risk "
                "FROM account_snapshots WHERE run_id = :r GROUP BY owner_id"
            ),
            {"r": latest.id},
        ).all()
        new_at_risk = [
            row.name
            for row in c.execute(
                sa.text(
                    "SELECT now.name FROM account_snapshots AS now "
                    "LEFT JOIN account_snapshots AS before "
                    "  ON before.account_id = now.account_id AND before.run_id = :w "
                    "WHERE now.run_id = :r AND now.status = 'At-risk' "
                    "  AND (before.status IS NULL OR before.status != 'At-risk')"
                ),
                {"r": latest.id, "w": week_ago},
            )
        ]
    engine.dispose()
    names = latest.owners if isinstance(latest.owners, dict) else json.loads(latest.owners)
    return {"counts": counts, "owners": owners, "names": names, "new_at_risk": new_at_risk}


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_digest_posts_one_message_whose_numbers_match_the_store(
    sandbox: Any, tmp_path: Path
) -> None:
    from flows.weekly_digest import weekly_digest

    url = f"sqlite:///{tmp_path / 'history.db'}"
    make_history(url, tmp_path)
    expected = expected_from_sql(url)
    assert len(expected["new_at_risk"]) == 2  # the fixture's story: two accounts turned red

    result = weekly_digest(db_url=url, channel="#cs-leadership", source="sandbox")
    messages = leadership_messages(sandbox)
    assert len(messages) == 1
    assert result["ts"] == messages[0]["ts"]
    text = message_text(messages[0])

    total = sum(expected["counts"].values())
    for status in ("Healthy", "Neutral", "At-risk"):
        n = expected["counts"].get(status, 0)
        assert f"*{status}*: {n} ({100 * n / total:.0f}%)" in text
    for row in expected["owners"]:
        name = expected["names"].get(row.owner_id, row.owner_id) if row.owner_id else "(no owner)"
        line = next(x for x in text.splitlines() if x.startswith(f"• *{slack_escape(name)}*:"))
        assert f": {row.n} account" in line
        assert f"avg {row.average:.1f}" in line
        assert f"🟥 {row.at_risk} At-risk" in line
    assert f"*New At-risk this week: {len(expected['new_at_risk'])}*" in text
    for name in expected["new_at_risk"]:
        assert slack_escape(name) in text

    # CRM text is inert in Slack: no mention, no markup
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; Co" in text
    assert HOSTILE not in text and CHANNEL not in text

    weekly_digest(db_url=url, channel="#cs-leadership", source="sandbox")
    assert len(leadership_messages(sandbox)) == 2  # exactly one more per run


def test_digest_of_an_empty_store_fails_clearly(sandbox: Any, tmp_path: Path) -> None:
    from flows.weekly_digest import weekly_digest
    from healthscore.history import open_store
    from healthscore.reports.portfolio import NoHistoryError

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
    with pytest.raises(NoHistoryError, match="no runs"):
        weekly_digest(db_url=url, channel="#cs-leadership", source="sandbox")
    assert leadership_messages(sandbox) == []


def test_digest_has_its_own_weekly_schedule() -> None:
    """Monday morning, in a named timezone, on the digest flow (prefect deploy is tested
    for the whole file in test_deployment.py)."""
    from ruamel.yaml import YAML

    from tests.conftest import REPO

    spec = YAML(typ="safe").load((REPO / "deployments" / "prefect.yaml").read_text())
    digest = next(d for d in spec["deployments"] if d["name"] == "weekly-leadership-digest")
    assert digest["entrypoint"] == "flows/weekly_digest.py:weekly_digest"
    (schedule,) = digest["schedules"]
    _minute, _hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "1")
    assert schedule["timezone"] == "Europe/Berlin"
    assert digest["parameters"]["channel"] == "#cs-leadership"
