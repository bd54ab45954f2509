"""`healthscore run` and `healthscore history` as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthscore.cli import app

runner = CliRunner()
PLAYBOOK = """
name: CLI health
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
trend: {compare_days: 14, flat_band: 3}
"""


def crm(tmp_path: Path, usage: str) -> str:
    path = tmp_path / f"crm-{usage}.json"
    company = {"id": "101", "properties": {"name": "Acme", "usage": usage}}
    path.write_text(json.dumps({"owners": [], "companies": [company]}), encoding="utf-8")
    return f"file:{path}"


@pytest.mark.usefixtures("prefect_harness")
def test_run_twice_then_history_shows_trend_and_status(tmp_path: Path) -> None:
    book = tmp_path / "cli.yaml"
    book.write_text(PLAYBOOK, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    common = ["run", "--playbook", str(book), "--db", db]
    first = runner.invoke(app, [*common, "--source", crm(tmp_path, "85"), "--as-of", "2026-01-01"])
    assert first.exit_code == 0, first.output
    assert "CLI health: 1 accounts" in first.output and "stored as run 1" in first.output
    second = runner.invoke(
        app, [*common, "--source", crm(tmp_path, "70"), "--as-of", "2026-01-15", "--json"]
    )
    assert second.exit_code == 0, second.output
    summary = json.loads(second.output[second.output.index("{") :])
    assert summary["changes"] == [
        {"id": "101", "name": "Acme", "before": "Healthy", "after": "Neutral", "score": 70.0}
    ]

    shown = runner.invoke(app, ["history", "101", "--db", db, "--playbook", str(book)])
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if "2026-01" in line]
    assert "↘️ down" in lines[0] and "-15" in lines[0] and "(was Healthy)" in lines[0]
    assert "🆕 new" in lines[1] and "🟩 Healthy" in lines[1]

    dry = runner.invoke(
        app, [*common, "--source", crm(tmp_path, "10"), "--as-of", "2026-02-01", "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "stored as run" not in dry.output
    assert len(runner.invoke(app, ["history", "101", "--db", db]).output.splitlines()) < 12

    bad_db = runner.invoke(
        app, ["run", "-p", str(book), "-s", crm(tmp_path, "1"), "--db", "nonsense://x"]
    )
    assert bad_db.exit_code == 2 and "not a database URL" in bad_db.output


def test_user_errors_exit_2(tmp_path: Path) -> None:
    book = tmp_path / "cli.yaml"
    book.write_text(PLAYBOOK, encoding="utf-8")
    missing = runner.invoke(app, ["history", "101", "--db", f"sqlite:///{tmp_path / 'no.db'}"])
    assert missing.exit_code == 2 and "no history database" in missing.output
    bad_book = runner.invoke(
        app, ["run", "--playbook", str(tmp_path / "none.yaml"), "--source", "file:x.json"]
    )
    assert bad_book.exit_code == 2 and "no such file" in bad_book.output
    bad_date = runner.invoke(
        app, ["run", "--playbook", str(book), "--source", "file:x", "--as-of", "soon"]
    )
    assert bad_date.exit_code == 2
