"""docs/playbook.md is the playbook format's reference: complete and correct.

Users read docs/playbook.md (the README, `healthscore init --help` and the
templates point there), editors read the JSON Schema. Every key the schema
accepts, at every level, must be explained in the doc (as `key`), and every YAML
example in it must pass both `healthscore validate` and the JSON Schema.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from healthscore.actions import load_playbook, playbook_schema
from healthscore.actions.kinds import KIND_SCHEMAS
from healthscore.core.conditions import OPERATORS
from healthscore.core.schema import STATUS_COLORS

PLAYBOOK_SCHEMA = playbook_schema()
ACTION_KINDS = list(KIND_SCHEMAS)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "playbook.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", TEXT, flags=re.S)


def _keys(schema: dict[str, Any], where: str) -> set[tuple[str, str]]:
    """(where, key) for every property of SCHEMA and of the objects nested in it."""
    found: set[tuple[str, str]] = set()
    for key, sub in schema.get("properties", {}).items():
        found.add((where, key))
        found |= _keys(sub, f"{where}.{key}")
    return found


def _all_keys() -> set[tuple[str, str]]:
    keys = _keys(PLAYBOOK_SCHEMA, "playbook")
    for name, definition in PLAYBOOK_SCHEMA["$defs"].items():
        keys |= _keys(definition, name)
    return keys


def test_every_schema_key_is_documented() -> None:
    keys = _all_keys()
    levels = {where.split(".")[0] for where, _ in keys}
    assert {"playbook", "group", "rule", "condition", "action", "trigger"} <= levels
    missing = sorted(f"{where}.{key}" for where, key in keys if f"`{key}" not in TEXT)
    assert missing == []


def test_every_operator_colour_and_action_kind_is_documented() -> None:
    values = [*OPERATORS, *STATUS_COLORS, *ACTION_KINDS]
    assert sorted(v for v in values if f"`{v}`" not in TEXT) == []


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) == 10  # + list membership, custom objects and enrich (issue 16)


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_doc_example_is_a_valid_playbook(number: int, tmp_path: Path) -> None:
    path = tmp_path / f"example{number}.yaml"
    path.write_text(EXAMPLES[number], encoding="utf-8")
    assert load_playbook(path).groups
    data = YAML(typ="safe").load(EXAMPLES[number])
    assert list(Draft202012Validator(PLAYBOOK_SCHEMA).iter_errors(data)) == []


def test_no_reference_outside_the_repository() -> None:
    """The README and the docs point at files users have (issue 14)."""
    for path in (REPO / "README.md", DOC):
        assert "../shared" not in path.read_text(encoding="utf-8"), path
