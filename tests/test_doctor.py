"""`healthscore doctor` against a sandbox started with a tokens table: scopes and properties,
Slack channels and scopes, Jira projects and issue types."""

from __future__ import annotations

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
    tokens = {"pat-full": FULL, "pat-reduced": REDUCED, "pat-export": [*FULL, "crm.export"]}
    with running_sandbox(seed, tokens=tokens) as urls:
        monkeypatch.setenv("HUBSPOT_BASE_URL", urls.hubspot_url)
        yield urls


def playbook(tmp_path: Path, login: str) -> str:
    path = tmp_path / "book.yaml"
    path.write_text(BOOK.format(login=login), encoding="utf-8")
    return str(path)


def doctor_as(monkeypatch: pytest.MonkeyPatch, token: str, book: str) -> Any:
    """`healthscore doctor` of `book` on the sandbox's portal, as `token`."""
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", token)
    return runner.invoke(app, ["doctor", "--playbook", book, "--source", "hubspot"])


def test_reduced_token_and_a_typo_exit_2_listing_each(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = doctor_as(monkeypatch, "pat-reduced", playbook(tmp_path, "last_login_dat"))
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
    assert result.output.splitlines()[-1] == "6 problems found."


def test_full_token_and_a_correct_playbook_exit_0(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = doctor_as(monkeypatch, "pat-full", playbook(tmp_path, "last_login_date"))
    assert result.exit_code == 0, result.output
    assert result.output.endswith("book.yaml: setup OK on hubspot\n")
    # crm.export is not needed, but without it every run pays the v4 association read
    assert [line for line in result.output.splitlines() if line.startswith("note: ")] == [
        "note: the HubSpot token has no crm.export: each run reads every account's "
        "associations with the v4 batch read (a call per 1,000 accounts and related type) "
        "instead of one export of 3 calls; add the scope to the app to save them"
    ]


def test_a_token_with_crm_export_gets_no_note(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = doctor_as(monkeypatch, "pat-export", playbook(tmp_path, "last_login_date"))
    assert result.exit_code == 0, result.output
    assert result.output == f"{tmp_path / 'book.yaml'}: setup OK on hubspot\n"


ACTIONS = """
name: Doctor actions
groups:
  - name: Usage
    rules:
      - {property: usage, scale: {from: [0, 100], to: [0, 100]}}
writeback: false
actions:
  - name: tell the owner
    do: slack
    on: {status_changed_to: At-risk}
    message: "{{ account.name }} is At-risk"
    fallback_channel: "#renewals"
  - name: tell the team
    do: slack
    on: {status_changed_to: At-risk}
    to: "#cs-alerts"
    message: "{{ account.name }} is At-risk"
  - name: tell execs
    do: slack
    on: {status_changed_to: At-risk}
    to: "#exec"
    message: "{{ account.name }} is At-risk"
  - name: ticket
    do: jira
    on: {status_changed_to: At-risk}
    project: OPS
    issue_type: Task
    summary: "{{ account.name }}"
  - name: escalate
    do: jira
    on: {status_changed_to: At-risk}
    project: NOPE
    issue_type: Task
    summary: "{{ account.name }}"
"""
READ_ONLY = """  - name: file it
    do: jira
    on: {status_changed_to: At-risk}
    project: RO
    issue_type: Task
    summary: "{{ account.name }}"
"""
SOUND_JIRA = ACTIONS.replace("project: NOPE", "project: OPS").replace(
    "issue_type: Task", "issue_type: bug"
)
# The README's Slack scopes without chat:write and im:history.
SLACK_REDUCED = [
    "users:read.email",
    "im:write",
    "channels:read",
    "channels:history",
    "groups:history",
]
SLACK_FULL = [*SLACK_REDUCED, "chat:write", "im:history", "groups:read", "channels:join"]


@pytest.fixture
def vendors(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    seed = {
        "owners": [],
        "companies": [{"id": "1", "properties": {"usage": "50", "name": "Acme"}}],
        "slack_channels": [
            {"name": "renewals", "bot_member": False},
            {"name": "exec", "is_private": True, "bot_member": True},
        ],
        "jira_projects": [
            {"key": "OPS", "name": "Operations", "issue_types": ["Bug"]},
            {"key": "RO", "name": "Read only", "issue_types": ["Task"], "can_create": False},
        ],
    }
    tokens = {"pat-full": FULL, "xoxb-reduced": SLACK_REDUCED, "xoxb-full": SLACK_FULL}
    with running_sandbox(seed, tokens=tokens) as urls:
        monkeypatch.setenv("HUBSPOT_BASE_URL", urls.hubspot_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-full")
        monkeypatch.setenv("SLACK_API_URL", urls.slack_url)
        monkeypatch.setenv("JIRA_URL", urls.jira_url)
        monkeypatch.setenv("JIRA_TOKEN", "jira-pat")
        yield urls


def doctor(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "actions.yaml"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(app, ["doctor", "--playbook", str(path), "--source", "hubspot"])


def problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem: ")]


def test_slack_scopes_channels_and_jira_projects_are_each_listed(
    vendors: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-reduced")
    result = doctor(tmp_path, ACTIONS + READ_ONLY)
    assert result.exit_code == 2, result.output
    assert problems(result.output) == [
        "problem: Slack token lacks the scope chat:write (needed for posting messages)",
        "problem: Slack token lacks the scope im:history (needed for finding a DM again after "
        "a lost answer)",
        "problem: Slack channel #exec not found (a private one needs groups:read)",
        "problem: #renewals: the Slack bot is not a member of channel "
        + vendors.state.slack.channel_by_name("renewals")["id"]
        + ": invite it (/invite @your-bot in the channel) or grant the channels:join scope so "
        "it joins public channels by itself",
        "problem: Jira project NOPE does not exist or the Jira user cannot see it "
        "(Jira answered 404)",
        "problem: Jira project OPS has no issue type Task (it has: Bug)",
        # may browse RO (its issue type is there) but not create issues in it
        "problem: the Jira user may not create issues in project RO (Jira permission "
        "CREATE_ISSUES): grant it in the project's permission scheme",
    ]
    assert result.output.splitlines()[-1] == "7 problems found."


def test_an_invalid_slack_token_is_one_problem(
    vendors: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-unknown")
    result = doctor(tmp_path, SOUND_JIRA)
    assert result.exit_code == 2, result.output
    assert problems(result.output) == [
        "problem: the Slack token is not valid (Slack answered invalid_auth)"
    ]


def test_a_missing_slack_token_is_a_problem_for_doctor(
    vendors: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    result = doctor(tmp_path, SOUND_JIRA)
    assert result.exit_code == 2, result.output
    assert problems(result.output) == [
        "problem: no Slack token: set SLACK_BOT_TOKEN (a bot token, scopes chat:write, "
        "users:read.email, im:write, channels:read, channels:history, groups:history) or the "
        "Prefect Secret block `slack-bot-token`"
    ]


def test_a_sound_slack_and_jira_setup_exits_0(
    vendors: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-full")  # groups:read and channels:join
    result = doctor(tmp_path, SOUND_JIRA)
    assert result.exit_code == 0, result.output
    assert result.output.endswith("actions.yaml: setup OK on hubspot\n")
