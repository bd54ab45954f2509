"""`healthscore doctor` against a sandbox started with a tokens table: scopes and properties."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.sandbox import running_sandbox

runner = CliRunner()
BOOK = """
name: Doctor check
groups:
  - name: Usage
    rules:
      - {{property: usage, scale: {{from: [0, 100], to: [0, 80]}}}}
      - {{points: -10, when: [{{property: {login}, op: older_than_days, value: 30}}]}}
actions:
  - name: follow up
    do: hubspot_task
    on: {{status_changed_to: At-risk}}
    subject: Call them
"""
FULL = [
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.objects.owners.read",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
]
# What the README used to list for tasks: `crm.objects.tasks.write`, a scope HubSpot's
# spec does not name for POST /crm/v3/objects/tasks (it names the contacts scopes).
REDUCED = ["crm.objects.companies.read", "crm.schemas.companies.read", "crm.objects.tasks.write"]


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    seed = {
        "owners": [],
        "companies": [
            {"id": "1", "properties": {"usage": "50", "last_login_date": "2026-01-01"}},
        ],
    }
    with running_sandbox(seed, tokens={"pat-full": FULL, "pat-reduced": REDUCED}) as urls:
        monkeypatch.setenv("HUBSPOT_BASE_URL", urls.hubspot_url)
        yield urls


def playbook(tmp_path: Path, login: str) -> str:
    path = tmp_path / "book.yaml"
    path.write_text(BOOK.format(login=login), encoding="utf-8")
    return str(path)


def test_reduced_token_and_a_typo_exit_2_listing_each(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-reduced")
    started = time.monotonic()
    result = runner.invoke(
        app, ["doctor", "--playbook", playbook(tmp_path, "last_login_dat"), "--source", "hubspot"]
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("problem: ")]
    assert lines == [
        "problem: HubSpot token lacks the scope crm.objects.companies.write (needed for "
        "write-back)",
        "problem: HubSpot token lacks the scope crm.objects.contacts.read (needed for action "
        "'follow up' (task search))",
        "problem: HubSpot token lacks the scope crm.objects.contacts.write (needed for action "
        "'follow up' (tasks))",
        "problem: HubSpot token lacks the scope crm.objects.owners.read (needed for owner names "
        "and emails)",
        "problem: HubSpot token lacks the scope crm.schemas.companies.write (needed for "
        "write-back (creating its properties))",
        "problem: companies: property last_login_dat does not exist in HubSpot; did you mean "
        "`last_login_date`?",
    ]
    assert "5 problems" not in result.output and "6 problems found." in result.output
    assert elapsed < 5


def test_full_token_and_a_correct_playbook_exit_0(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-full")
    result = runner.invoke(
        app, ["doctor", "--playbook", playbook(tmp_path, "last_login_date"), "--source", "hubspot"]
    )
    assert result.exit_code == 0, result.output
    assert "HubSpot setup OK on hubspot" in result.output
