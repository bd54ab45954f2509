"""Playbook actions: the kinds registry, planning, the ledger protocol, dispatching.

`load_playbook`/`parse_playbook` here are how the product reads a playbook: the
core's loader with every registered kind's schema, so a `do:` name, a missing
`message` or a bad template is reported on its line like any other mistake.
`playbook_schema()` is the published JSON Schema (`healthscore schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthscore.actions.kinds import KIND_SCHEMAS
from healthscore.core import playbook as core
from healthscore.core.playbook import Playbook
from healthscore.core.schema import playbook_schema as core_schema

__all__ = ["load_playbook", "parse_playbook", "playbook_schema"]


def load_playbook(path: str | Path) -> Playbook:
    """Read, validate (action kinds included) and build; raises PlaybookError."""
    return core.load_playbook(path, KIND_SCHEMAS)


def parse_playbook(text: str, filename: str = "<playbook>") -> Playbook:
    """`load_playbook` of text already read; `filename` names it in the issues."""
    return core.parse_playbook(text, filename, KIND_SCHEMAS)


def playbook_schema() -> dict[str, Any]:
    """The published playbook JSON Schema: the core format with every kind's keys."""
    return core_schema(KIND_SCHEMAS)
