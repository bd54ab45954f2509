"""Reading a playbook file: bytes to a YAML tree that remembers every node's line.

ruamel's round-trip loader keeps line and column marks on each mapping and list
(`issues.position_of` reads them). Any YAML problem (bad indent, tab, unclosed
quote, duplicate key, control character, impossible date) becomes one
PlaybookIssue on the line where the author made the mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from healthscore.core.playbook.issues import PlaybookError, PlaybookIssue


def read_text(path: Path) -> str:
    """The file's text (undecodable bytes replaced); a missing file is a PlaybookError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlaybookError(
            [PlaybookIssue(str(path), 0, "", "no such file", "check the path")]
        ) from None
    except IsADirectoryError:
        raise PlaybookError(
            [PlaybookIssue(str(path), 0, "", "is a directory, not a playbook file")]
        ) from None
    return raw.decode("utf-8", errors="replace")


def load_yaml(text: str, filename: str) -> Any:
    """The YAML tree with line numbers; any YAML problem becomes one PlaybookIssue."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        issue = _yaml_issue(exc, text)
    except ReaderError as exc:  # control characters: not marked, but positioned
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        issue = (
            line,
            f"not valid YAML: character #x{exc.character:04x} is not allowed",
            "delete the invisible control character (often pasted from another tool)",
        )
    except YAMLError as exc:
        issue = (1, f"not valid YAML: {exc}", None)
    except ValueError as exc:  # the constructor: a date that does not exist (2024-02-30)
        issue = _bad_date_issue(yaml, text, exc)
    line, message, hint = issue
    raise PlaybookError([PlaybookIssue(filename, line, "", message, hint)]) from None


def _yaml_issue(exc: MarkedYAMLError, text: str) -> tuple[int, str, str | None]:
    problem = exc.problem or "not valid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    opened = exc.context_mark
    unclosed = context.startswith(("while scanning a quoted", "while parsing a flow"))
    if opened is not None and unclosed:
        # An unclosed quote or bracket is reported where the file ends or where the next
        # line starts; the mistake is on the line that opened it.
        lines = text.splitlines()
        row = lines[opened.line] if opened.line < len(lines) else ""
        char = row[opened.column] if opened.column < len(row) else ""
        if context.startswith("while scanning a quoted"):
            return (
                opened.line + 1,
                f"not valid YAML: the quote {char} opened here is never closed",
                f"close the quote with a matching {char}",
            )
        closing = {"[": "]", "{": "}"}.get(char, "]")
        return (
            opened.line + 1,
            f"not valid YAML: the `{char}` opened here is not closed where expected "
            f"({problem} on line {line})",
            f"close it with `{closing}` and separate the items with commas",
        )
    if "'\\t'" in problem:
        return (
            line,
            "not valid YAML: a tab character; YAML indents with spaces only",
            "replace the tab with spaces",
        )
    if problem.startswith("found duplicate key"):
        return (
            line,
            f"not valid YAML: {problem.removeprefix('found ')}",
            "a key may appear only once in the same mapping: keep one of them",
        )
    return (
        line,
        f"not valid YAML: {problem}",
        "check indentation, colons and quotes on this line or the one before",
    )


def _bad_date_issue(yaml: YAML, text: str, exc: ValueError) -> tuple[int, str, str | None]:
    """Find the date-looking scalar the constructor choked on, for its line."""
    stack = [yaml.compose(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            if node.tag == "tag:yaml.org,2002:timestamp":
                try:
                    yaml.constructor.construct_yaml_timestamp(node)
                except ValueError as problem:
                    return (
                        node.start_mark.line + 1,
                        f"not valid YAML: {node.value} is not a valid date ({problem})",
                        "fix the date, or quote it to keep it as text",
                    )
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
    return (1, f"not valid YAML: {exc}", None)
