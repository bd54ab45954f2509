"""The playbook: load a YAML file, validate it with line-precise errors, build the model.

    model.py      the frozen dataclasses a playbook becomes (Playbook, Group, Rule, Action...)
    load.py       the file to a YAML tree that keeps every node's line
    structure.py  the tree against the JSON Schema (`jsonschema`), errors in an author's words
    check.py      what the schema cannot say (one kind per rule, thresholds cover 0...)
    hints.py      did-you-mean, operator synonyms, numbers in quotes
    issues.py     PlaybookIssue (file:line, field path, message, hint) and PlaybookError
    build.py      the validated tree to the model

The core knows no action kind: without `kinds`, an action's kind-specific keys
pass unchecked into `Action.options`. The product loads playbooks through
`healthscore.actions.load_playbook`, which passes every registered kind's
schema fragment; scoring-only readers (calibration re-reading the playbook it
wrote) may use these directly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from healthscore.core.playbook.build import build
from healthscore.core.playbook.check import validate
from healthscore.core.playbook.issues import PlaybookError, PlaybookIssue
from healthscore.core.playbook.load import load_yaml, read_text
from healthscore.core.playbook.model import Action, Band, Condition, Group, Playbook, Rule, Trigger
from healthscore.core.schema import KindSchemas, playbook_schema

__all__ = [
    "Action",
    "Band",
    "Condition",
    "Group",
    "Playbook",
    "PlaybookError",
    "PlaybookIssue",
    "Rule",
    "Trigger",
    "load_playbook",
    "parse_playbook",
]


def load_playbook(path: str | Path, kinds: KindSchemas | None = None) -> Playbook:
    """Read, validate and build a playbook; raises PlaybookError listing every problem.

    `kinds`: action kind name -> JSON Schema fragment of its keys (see
    `healthscore.core.schema.action_schema`); None leaves action options unchecked.
    """
    path = Path(path)
    return parse_playbook(read_text(path), str(path), kinds)


def parse_playbook(
    text: str, filename: str = "<playbook>", kinds: KindSchemas | None = None
) -> Playbook:
    """`load_playbook` of text already read; `filename` names it in the issues."""
    data = load_yaml(text, filename)
    if data is None:
        raise PlaybookError([PlaybookIssue(filename, 1, "", "the file is empty")])
    issues = validate(data, playbook_schema(kinds), filename)
    if issues:
        raise PlaybookError(issues)
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return build(data, filename, content_hash, kinds)
