"""The published JSON Schema: valid, up to date, and agreeing with the validator.

Editors autocomplete playbooks from healthscore/data/playbook.schema.json (through
the `# yaml-language-server: $schema=` line at the top of each playbook), so the
file must be the schema the validator walks, and every shipped playbook must pass
both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from typer.testing import CliRunner

from healthscore.actions import load_playbook, playbook_schema
from healthscore.cli import app

PLAYBOOK_SCHEMA = playbook_schema()

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "healthscore" / "data" / "playbook.schema.json"
PLAYBOOKS = sorted((REPO / "playbooks").rglob("*.yaml"))
MALFORMED = REPO / "tests" / "playbooks" / "malformed"
SCHEMA_LINE = "# yaml-language-server: $schema="
REGENERATE = "run `healthscore schema --out healthscore/data/playbook.schema.json`"

runner = CliRunner()


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(PUBLISHED.read_text(encoding="utf-8")))


def test_cli_schema_prints_a_valid_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == json.loads(json.dumps(PLAYBOOK_SCHEMA))


def test_published_schema_is_the_generated_one() -> None:
    generated = runner.invoke(app, ["schema"]).stdout
    published = PUBLISHED.read_text(encoding="utf-8")
    assert published == generated, f"{PUBLISHED.relative_to(REPO)} is stale: {REGENERATE}"


def test_cli_schema_out_writes_the_same_text(tmp_path: Path) -> None:
    target = tmp_path / "playbook.schema.json"
    result = runner.invoke(app, ["schema", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == runner.invoke(app, ["schema"]).stdout
    assert result.stdout == f"wrote {target}\n"


def test_every_field_in_the_schema_is_described_or_obvious() -> None:
    """Editors show descriptions as tooltips; every definition has one."""
    for name, definition in PLAYBOOK_SCHEMA["$defs"].items():
        if name in ("group", "threshold", "action"):
            continue  # their fields are described one by one
        assert definition.get("description"), name
    rule_fields = PLAYBOOK_SCHEMA["$defs"]["rule"]["properties"]
    undocumented = sorted(k for k, v in rule_fields.items() if "description" not in v)
    assert undocumented == ["decay", "description"]  # a $ref (described there), and itself


def test_there_are_playbooks_to_check() -> None:
    names = {p.relative_to(REPO / "playbooks").as_posix() for p in PLAYBOOKS}
    assert "default.yaml" in names
    assert any(name.startswith("examples/") for name in names)


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shipped_playbook_passes_the_validator_and_the_json_schema(path: Path) -> None:
    playbook = load_playbook(path)
    assert playbook.groups
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator().iter_errors(_yaml(path))
    ]
    assert errors == []


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shipped_playbook_points_editors_at_the_published_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(SCHEMA_LINE), f"{path.name}: the first line must be {SCHEMA_LINE}..."
    target = (path.parent / first.removeprefix(SCHEMA_LINE).strip()).resolve()
    assert target == PUBLISHED.resolve()
    assert target.is_file()


# Malformed playbooks whose mistakes are structural: the editor (JSON Schema) must
# flag them too, at the same place the validator does.
STRUCTURAL = {
    "07_top_level_typo.yaml": ("", "'treshold' was unexpected"),
    "08_unknown_rule_key.yaml": ("groups/0/rules/0", "'within_day' was unexpected"),
    "09_wrong_type_points.yaml": ("groups/0/max_points", "'ten' is not of type 'number'"),
    "10_unknown_operator.yaml": ("segment/0/op", "'equals' is not one of"),
    "23_duplicate_threshold_label.yaml": ("thresholds/2/color", "'purple' is not one of"),
    "27_action_unknown_do.yaml": ("actions/0/do", "'email' is not one of"),
    "32_object_decay_every_run.yaml": ("object", "'deals' is not valid under any of"),
    "33_mixed_structure_and_meaning.yaml": (
        "groups/1/rules/0/within_days",
        "'90' is not of type 'number'",
    ),
}
# Mistakes only the validator can see (the schema cannot say "thresholds cover 0").
SEMANTIC_ONLY = [
    "17_property_rule_no_points.yaml",
    "19_frequency_with_decay.yaml",
    "21_weighted_no_max_points.yaml",
    "22_thresholds_not_covering_zero.yaml",
    "24_duplicate_group_name.yaml",
    "29_unknown_status_label.yaml",
]


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_json_schema_flags_structural_mistakes(name: str) -> None:
    where, fragment = STRUCTURAL[name]
    errors = {
        ("/".join(map(str, e.absolute_path)), e.message)
        for e in _validator().iter_errors(_yaml(MALFORMED / name))
    }
    assert any(path == where and fragment in message for path, message in errors), errors


@pytest.mark.parametrize("name", SEMANTIC_ONLY)
def test_json_schema_accepts_what_only_the_validator_rejects(name: str) -> None:
    assert list(_validator().iter_errors(_yaml(MALFORMED / name))) == []
