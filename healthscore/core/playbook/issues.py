"""Problems of a playbook file: each with file, line, field path and a hint.

CS ops edit playbooks by hand, so validation reports every problem of a file at
once, each with file, line, field path (`groups[1].rules[0].op`) and a hint, the
way dbt reports a bad `schema.yml`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from healthscore.errors import UserError

Path_ = tuple[str | int, ...]
"""A field path as keys and list indexes: ("groups", 1, "rules", 0, "op")."""


@dataclass(frozen=True)
class PlaybookIssue:
    file: str
    line: int
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: {self.path or '(top level)'}: {self.message}"
        return f"{where}\n    hint: {self.hint}" if self.hint else where


class PlaybookError(UserError):
    """A playbook with one or more problems; `issues` lists all of them."""

    def __init__(self, issues: Sequence[PlaybookIssue]) -> None:
        self.issues = list(issues)
        count = len(self.issues)
        header = f"{count} problem{'s' if count != 1 else ''} in the playbook"
        super().__init__(header + ":\n" + "\n".join(str(i) for i in self.issues))


def format_path(path: Path_) -> str:
    """("groups", 1, "rules", 0, "op") -> "groups[1].rules[0].op"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def position_of(root: Any, path: Path_) -> tuple[int, int]:
    """1-based (line, column) of the deepest node of `path` that exists in the YAML tree.

    The column orders issues that share a line (a flow mapping `{a: 1, b: 2}`)
    the way they appear in the file.
    """
    node, line, column = root, 1, 0
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        line, column = node.lc.line + 1, node.lc.col + 1
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            row, col = node.lc.key(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            row, col = node.lc.item(part)
            node = node[part]
        else:
            break
        line, column = row + 1, col + 1
    return line, column
