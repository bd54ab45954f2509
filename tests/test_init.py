"""`healthscore init`: a starter folder that works where it is written (issue 14).

The playbook validates and points its editor at the schema beside it, the schema
is `healthscore schema`'s text, prefect.yaml deploys the installed flows on a real
Prefect server, nothing is overwritten without --force, and the bundled playbooks
are found by name from any folder.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from test_deployment import PREFECT, prefect_server  # noqa: F401  (a fixture)
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.core.playbook import load_playbook
from healthscore.playbooks import BUNDLED, DEFAULT_PLAYBOOK, TEMPLATES, find_bundled

runner = CliRunner()
FILES = ["playbook.schema.json", "playbook.yaml", "prefect.yaml"]


def _init(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["init", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_init_writes_a_playbook_that_validates_beside_its_schema(
    template: str, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "folder"
    code, stdout, _ = _init(str(target), "--template", template)
    assert code == 0, stdout
    assert sorted(p.name for p in target.iterdir()) == FILES
    assert [line for line in stdout.splitlines() if line.startswith("wrote")] == [
        f"wrote {target / 'playbook.yaml'}",
        f"wrote {target / 'playbook.schema.json'}",
        f"wrote {target / 'prefect.yaml'}",
    ]

    written = (target / "playbook.yaml").read_text(encoding="utf-8")
    source = TEMPLATES[template][0].read_text(encoding="utf-8")
    assert written.splitlines()[0] == "# yaml-language-server: $schema=playbook.schema.json"
    assert written.splitlines()[1:] == source.splitlines()[1:]
    assert load_playbook(target / "playbook.yaml").groups

    schema_text = (target / "playbook.schema.json").read_text(encoding="utf-8")
    assert schema_text == runner.invoke(app, ["schema"]).stdout
    errors = Draft202012Validator(json.loads(schema_text)).iter_errors(
        YAML(typ="safe").load(written)
    )
    assert list(errors) == []

    validated = runner.invoke(app, ["validate", str(target / "playbook.yaml")])
    assert validated.exit_code == 0, validated.output


def test_hubspot_template_has_hubspots_predefined_groups() -> None:
    book = load_playbook(TEMPLATES["hubspot"][0])
    assert [g.name for g in book.groups] == [
        "1:1 engagement",
        "1:1 call engagement",
        "Support tickets",
        "CSM sentiment",
        "NPS",
    ]
    assert sum(g.max_points or 0 for g in book.groups) == 100  # as HubSpot requires
    assert book.combine == "sum"


def test_starter_template_has_the_five_categories() -> None:
    book = load_playbook(TEMPLATES["starter"][0])
    assert [g.name for g in book.groups] == [
        "Usage",
        "Support",
        "Sentiment",
        "Advocacy",
        "Engagement",
    ]
    assert sum(g.max_points or 0 for g in book.groups) == 100


def test_init_help_lists_every_template_with_its_line() -> None:
    result = runner.invoke(app, ["init", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for name, (_, line) in TEMPLATES.items():
        assert f"{name}: {line}" in result.stdout


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("mine\n", encoding="utf-8")
    code, _, stderr = _init(str(tmp_path))
    assert code == 2
    assert f"not overwriting {tmp_path / 'prefect.yaml'}; pass --force" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefect.yaml"]
    assert (tmp_path / "prefect.yaml").read_text(encoding="utf-8") == "mine\n"

    code, _, _ = _init(str(tmp_path), "--force")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    assert (tmp_path / "prefect.yaml").read_text(encoding="utf-8") != "mine\n"


def test_init_rejects_an_unknown_template_and_a_file_as_folder(tmp_path: Path) -> None:
    code, _, stderr = _init(str(tmp_path), "--template", "gainsight")
    assert code == 2
    assert "--template 'gainsight' is not one of: starter, hubspot, demo" in stderr
    a_file = tmp_path / "notes.txt"
    a_file.write_text("", encoding="utf-8")
    code, _, stderr = _init(str(a_file))
    assert code == 2
    assert f"{a_file} is a file, not a folder" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_bundled_playbooks_are_found_by_name_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_bundled("default") == DEFAULT_PLAYBOOK
    assert find_bundled("playbooks/default.yaml") == DEFAULT_PLAYBOOK
    assert find_bundled("examples/telco") == BUNDLED / "examples" / "telco.yaml"
    csv = "playbooks/examples/telco-customer-churn.csv"
    assert find_bundled(csv) == BUNDLED / "examples" / "telco-customer-churn.csv"
    assert find_bundled("../../etc/passwd") == Path("../../etc/passwd")
    assert find_bundled("mine.yaml") == Path("mine.yaml")  # the loader reports it

    result = runner.invoke(app, ["validate", "default", "examples/hubspot_sum"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": valid — ") == 2

    (tmp_path / "default").write_text("name: x\n", encoding="utf-8")
    assert find_bundled("default") == Path("default")  # a local file always wins


def test_init_prefect_yaml_deploys_the_installed_flows(
    prefect_server: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    folder = tmp_path / "acme health"
    assert _init(str(folder))[0] == 0

    def prefect(*args: str) -> None:
        done = subprocess.run(
            [PREFECT, *args], env=prefect_server, cwd=folder, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr

    prefect("work-pool", "create", "local", "--type", "process")
    prefect("--no-prompt", "deploy", "--all")

    api = prefect_server["PREFECT_API_URL"]
    found = httpx.get(f"{api}/deployments/name/score-accounts/daily-customer-health", timeout=10)
    assert found.status_code == 200, found.text
    deployment = found.json()
    assert deployment["entrypoint"] == "flows.score_accounts.score_accounts"
    assert deployment["parameters"] == {
        "playbook_path": "playbook.yaml",
        "source": "hubspot",
        "dry_run": False,
    }
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(folder.resolve())}}
    ]
    (schedule,) = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    digest = httpx.get(f"{api}/deployments/name/weekly-digest/weekly-leadership-digest", timeout=10)
    assert digest.status_code == 200, digest.text
    assert digest.json()["entrypoint"] == "flows.weekly_digest.weekly_digest"
