"""Validation of malformed playbooks: every problem, on the right line, with a hint.

Each file under tests/playbooks/malformed/ is a realistic mistake a CS ops person
makes. The expected issues below were written by reading the YAML (lines counted
by hand, paths from PLAYBOOK_SPEC.md), not copied from the validator's output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthscore.actions import load_playbook, parse_playbook
from healthscore.cli import app
from healthscore.core.playbook import PlaybookError, PlaybookIssue

REPO = Path(__file__).resolve().parent.parent
MALFORMED = REPO / "tests" / "playbooks" / "malformed"
VALID_PLAYBOOKS = sorted((REPO / "playbooks").rglob("*.yaml"))

# (line, field path, message fragment, hint fragment or None when no hint is asserted)
Expected = tuple[int, str, str, str | None]

EXPECTED: dict[str, list[Expected]] = {
    "01_bad_indent.yaml": [(7, "", "not valid YAML", "indent")],
    "02_tab_indent.yaml": [(6, "", "tab", "spaces")],
    "03_unclosed_quote.yaml": [(5, "", "not valid YAML", "quote")],
    "04_unclosed_bracket.yaml": [(5, "", "not valid YAML", "`]`")],
    "05_duplicate_key.yaml": [(9, "", "duplicate key", "once")],
    "06_empty.yaml": [(1, "", "empty", None)],
    "07_top_level_typo.yaml": [
        (7, "treshold", "unknown field `treshold`", "did you mean `thresholds`?")
    ],
    "08_unknown_rule_key.yaml": [
        (7, "groups[0].rules[0].within_day", "unknown field", "`within_days`"),
        (11, "groups[0].rules[1].point", "unknown field", "`points`"),
    ],
    "09_wrong_type_points.yaml": [
        (4, "groups[0].max_points", "must be a number", None),
        (8, "groups[0].rules[0].points", "must be a number", "quotes"),
        (11, "groups[0].rules[1].points", "must be a number, not the text 'ten'", None),
    ],
    "10_unknown_operator.yaml": [
        (3, "segment[0].op", "not one of", "did you mean `eq`?"),
        (7, "groups[0].rules[0].when[0].op", "not one of", "did you mean `gte`?"),
        (10, "groups[0].rules[1].when[0].op", "not one of", "did you mean `gte`?"),
    ],
    "11_in_without_list.yaml": [
        (3, "segment[0].value", "`in` needs a non-empty list", "`value: [customer]`"),
        (
            11,
            "groups[0].rules[0].where[0].value",
            "`not_in` needs a non-empty list",
            "`value: [HIGH, URGENT]`",
        ),
    ],
    "12_between_bounds.yaml": [
        (6, "groups[0].rules[0].when[0].value", "lo 75 is above hi 25", "[25, 75]"),
        (9, "groups[0].rules[1].when[0].value", "[lo, hi]", "[10, 50]"),
    ],
    "13_known_with_value.yaml": [
        (6, "groups[0].rules[0].when[0].value", "`known` takes no value", "remove"),
        (7, "groups[0].rules[0].when[1].value", "`unknown` takes no value", "remove"),
    ],
    "14_date_op_values.yaml": [
        (5, "groups[0].rules[0].when[0].value", "number of days", "value: 30"),
        (7, "groups[0].rules[1].when[0].value", "number of days", "value: 30"),
        (9, "groups[0].rules[2].when[0]", "needs a `value`", "number of days"),
    ],
    "15_rule_no_kind.yaml": [
        (5, "groups[0].rules[0]", "no kind", "`when`"),
        (7, "groups[0].rules[1]", "no kind", "`points_each`"),
    ],
    "16_rule_two_kinds.yaml": [
        (7, "groups[0].rules[0].when", "does not belong in an event rule", "`where`"),
        (11, "groups[0].rules[1].points_each", "does not belong in a scale rule", "split"),
    ],
    "17_property_rule_no_points.yaml": [
        (5, "groups[0].rules[0]", "needs `points`", "points: 10"),
    ],
    "18_event_points_and_frequency.yaml": [
        (5, "groups[0].rules[0]", "exactly one of `points`", "frequency"),
        (11, "groups[0].rules[1]", "exactly one of `points`", "frequency"),
    ],
    "19_frequency_with_decay.yaml": [
        (11, "groups[0].rules[0].decay", "a `frequency` rule cannot have `decay`", "points"),
    ],
    "20_frequency_bands_and_limit.yaml": [
        (10, "groups[0].rules[0].frequency[1]", "exactly one of exactly, between, at_least", None),
        (11, "groups[0].rules[0].frequency[2].between", "above", "[2, 5]"),
        (12, "groups[0].rules[0].limit", "a `frequency` rule cannot have `limit`", None),
    ],
    "21_weighted_no_max_points.yaml": [
        (10, "groups[1]", "needs `max_points`", "max_points: 20"),
    ],
    "22_thresholds_not_covering_zero.yaml": [
        (7, "thresholds", "do not cover 0", "min: 0"),
    ],
    "23_duplicate_threshold_label.yaml": [
        (9, "thresholds[1].label", "`Healthy` is defined twice", None),
        (10, "thresholds[2].color", "purple is not one of", None),
    ],
    "24_duplicate_group_name.yaml": [
        (8, "groups[1].name", "group `Engagement` is defined twice", None),
    ],
    "25_duplicate_rule_name.yaml": [
        (7, "groups[0].rules[0].scale.from", "two different numbers", None),
        (8, "groups[0].rules[1].name", "`Adoption` appears twice", None),
    ],
    "26_bad_derived.yaml": [
        (3, "derived.seats_per_user", "unexpected '/'", "+ - * /"),
        (4, "derived.score_hack", "unexpected '('", "+ - * /"),
        (5, "derived.usage_share", "never closed", "+ - * /"),
    ],
    "27_action_unknown_do.yaml": [
        (10, "actions[0].do", "email is not one of", None),
        (15, "actions[1].do", "slac is not one of", "did you mean `slack`?"),
    ],
    "28_action_two_triggers.yaml": [
        (9, "actions[0].on", "found status_changed_to, score_dropped_by", None),
        (14, "actions[1].on", "needs exactly one trigger", "status_changed_to"),
    ],
    "29_unknown_status_label.yaml": [
        (9, "actions[0].on.status_changed_to", "not a status", "did you mean `At-risk`?"),
        (13, "actions[1].on.status_is", "not a status", "did you mean `Healthy`?"),
    ],
    "30_slack_without_message.yaml": [
        (8, "actions[0]", "a slack action needs `message`", None),
        (12, "actions[0].summary", "not used by a slack action", None),
    ],
    "31_template_errors.yaml": [
        (11, "actions[0].message", "unknown template variable 'acount'", "`account`"),
        (16, "actions[1].summary", "does not parse", None),
        (17, "actions[1].description", "does not parse", None),
    ],
    "32_object_decay_every_run.yaml": [
        (2, "object", "deals is not one of", "associated: deals"),
        (10, "groups[0].rules[0].decay.percent", "at most 100", None),
        (13, "actions[0].on.every_run", "only applies to level triggers", "score_at_least"),
    ],
    "33_mixed_structure_and_meaning.yaml": [
        (4, "groups[0]", "needs `max_points`", None),
        (7, "groups[0].rules[0].when[0].value", "compares numbers", "quotes"),
        (14, "groups[1].rules[0].within_days", "must be a number", "quotes"),
        (16, "thresholds", "do not cover 0", None),
    ],
    "34_segments_and_lists.yaml": [
        (4, "segments", "at most 5 items", "five segments"),
        (4, "segments", "`segment` or `segments`, not both", "one entry of `segments`"),
        (5, "segments[0][0].op", "`op` does not belong in a list condition", "member: false"),
        (6, "segments[1][0].member", "`member` only goes with `list`", "list:"),
        (14, "groups[0].rules[0].when[0].list", "needs a list name or id", None),
        (19, "actions[0].where[0].list", "an action's `where` reads the account's", "segment"),
    ],
    "35_labels_and_event_values.yaml": [
        (2, "object", "2-abc is not one of", "custom object"),
        (6, "groups[0].rules[0]", "`points_each` on an event rule needs `property`", None),
        (9, "groups[0].rules[1]", "exactly one of `points` (every time), `points_each`", None),
        (16, "groups[0].rules[2].label", "must be text or a list, not the number 5", None),
        (21, "groups[0].rules[3].label", "at least 1 item", None),
    ],
    "40_enrich_mistakes.yaml": [
        (4, "enrich[0].url", "a database password does not belong", "`url_env`"),
        (8, "enrich[1].url_env", "names an environment variable, not the URL", "WAREHOUSE_URL"),
        (12, "enrich[2].file", "reads .csv or .parquet files", "usage.csv"),
        (14, "enrich[3].name", "enrich entry `usage` appears twice", "rename"),
        (14, "enrich[3]", "a query needs exactly one of `url_env`", "WAREHOUSE_URL"),
        (19, "enrich[4].key", "missing required field `column`", None),
        (19, "enrich[4].key.colum", "unknown field `colum`", "did you mean `column`?"),
    ],
}

runner = CliRunner()


def test_every_malformed_file_has_expectations() -> None:
    on_disk = {p.name for p in MALFORMED.glob("*.yaml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 30


def _issues_of(name: str) -> list[PlaybookIssue]:
    path = MALFORMED / name
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    for issue in caught.value.issues:
        assert issue.file == str(path)
    return caught.value.issues


def _issues(name: str) -> list[tuple[int, str, str, str | None]]:
    return [(i.line, i.path, i.message, i.hint) for i in _issues_of(name)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_playbook_reports_exactly_the_expected_issues(name: str) -> None:
    actual = _issues(name)
    expected = EXPECTED[name]
    # Exactly one reported issue per expected one, in file order.
    assert [(line, path) for line, path, *_ in actual] == [
        (line, path) for line, path, *_ in expected
    ], actual
    for (line, path, message, hint), (_, _, want_message, want_hint) in zip(
        actual, expected, strict=True
    ):
        assert want_message in message, (line, path, message)
        if want_hint is not None:
            assert hint is not None and want_hint in hint, (line, path, message, hint)


def test_issue_text_names_file_line_path_and_hint() -> None:
    issue = _issues_of("07_top_level_typo.yaml")[0]
    text = str(issue)
    assert text.startswith(f"{MALFORMED / '07_top_level_typo.yaml'}:7: treshold: unknown field")
    assert text.endswith("hint: did you mean `thresholds`?")


def test_playbook_error_message_counts_problems() -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(MALFORMED / "33_mixed_structure_and_meaning.yaml")
    assert str(caught.value).startswith("4 problems in the playbook:\n")


def test_comment_only_file_is_empty() -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook("# nothing here yet\n\n", "x.yaml")
    assert [(i.line, i.path, i.message) for i in caught.value.issues] == [
        (1, "", "the file is empty")
    ]


def test_missing_file_is_a_playbook_error() -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(MALFORMED / "no_such_playbook.yaml")
    assert [(i.line, i.message) for i in caught.value.issues] == [(0, "no such file")]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("name: x\x00\n", 1, "not valid YAML"),
        ("name: x\ngroups:\n  - name: \x07bell\n", 3, "not valid YAML"),
        ("name: x\nrenewal: 2024-02-30\n", 2, "not a valid date"),
    ],
    ids=["nul", "control-character", "impossible-date"],
)
def test_unreadable_yaml_is_a_playbook_error(text: str, line: int, fragment: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "x.yaml")
    first = caught.value.issues[0]
    assert (first.line, first.path) == (line, "")
    assert fragment in first.message


@pytest.mark.parametrize("number", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_rejected(number: str) -> None:
    text = (
        "name: x\ngroups:\n  - name: g\n"
        f"    max_points: {number}\n"
        "    rules: [{when: [{property: a, op: known}], points: 1}]\n"
    )
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "x.yaml")
    assert [(i.line, i.path) for i in caught.value.issues] == [(4, "groups[0].max_points")]
    assert "finite" in caught.value.issues[0].message


# ---------------------------------------------------------------- through the CLI


ISSUE_LINE = re.compile(r"^(?P<file>[^\n:]+\.yaml):(?P<line>\d+): ", re.MULTILINE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_validate_malformed_exits_2_with_file_and_line(name: str) -> None:
    path = MALFORMED / name
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [int(m["line"]) for m in ISSUE_LINE.finditer(result.stderr)]
    assert lines == [line for line, *_ in EXPECTED[name]]
    assert f"{path}:{EXPECTED[name][0][0]}:" in result.stderr
    count = len(EXPECTED[name])
    assert result.stderr.rstrip().endswith(f"{count} problem{'s' if count > 1 else ''} found.")
    assert result.stdout == ""


def test_valid_playbooks_exist() -> None:
    assert REPO / "playbooks" / "default.yaml" in VALID_PLAYBOOKS


@pytest.mark.parametrize("path", VALID_PLAYBOOKS, ids=lambda p: p.name)
def test_cli_validate_valid_playbook_exits_0(path: Path) -> None:
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: valid")
    assert result.stderr == ""


def test_cli_validate_several_files_reports_all() -> None:
    names = ["07_top_level_typo.yaml", "12_between_bounds.yaml", "29_unknown_status_label.yaml"]
    paths = [str(MALFORMED / n) for n in names]
    default = str(REPO / "playbooks" / "default.yaml")
    result = runner.invoke(app, ["validate", paths[0], default, *paths[1:]])
    assert result.exit_code == 2
    found = [(m["file"], int(m["line"])) for m in ISSUE_LINE.finditer(result.stderr)]
    assert found == [
        (p, line) for n, p in zip(names, paths, strict=True) for line, *_ in EXPECTED[n]
    ]
    assert result.stderr.rstrip().endswith("5 problems found.")
    assert result.stdout.startswith(f"{default}: valid")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["05_duplicate_key.yaml", "19_frequency_with_decay.yaml"])
def test_cli_score_with_malformed_playbook_exits_2_and_prints_nothing(
    name: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / "crm.json"
    snapshot.write_text('{"owners": [], "companies": [{"id": "1", "properties": {}}]}')
    path = MALFORMED / name
    result = runner.invoke(
        app, ["score", "-p", str(path), "-s", f"file:{snapshot}", "--format", "json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}:{EXPECTED[name][0][0]}:" in result.stderr
    assert "Traceback" not in result.output


def test_cli_score_with_valid_playbook_writes_json(tmp_path: Path) -> None:
    snapshot = tmp_path / "crm.json"
    snapshot.write_text(
        '{"owners": [], "companies": [{"id": "1", "properties": '
        '{"name": "Acme", "lifecyclestage": "customer"}}]}'
    )
    result = runner.invoke(
        app,
        [
            "score",
            "-p",
            str(REPO / "playbooks" / "default.yaml"),
            "-s",
            f"file:{snapshot}",
            "--format",
            "json",
            "--as-of",
            "2026-01-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"id": "1"' in result.stdout


def test_installed_command_reports_every_malformed_file_without_traceback() -> None:
    """The real entry point, in a real process: exit code 2 and no Python traceback."""
    executable = Path(sys.executable).parent / "healthscore"
    files = sorted(str(p) for p in MALFORMED.glob("*.yaml"))
    done = subprocess.run(
        [str(executable), "validate", *files], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    reported = {m["file"] for m in ISSUE_LINE.finditer(done.stderr)}
    assert reported == set(files)
    total = sum(len(issues) for issues in EXPECTED.values())
    assert done.stderr.rstrip().endswith(f"{total} problems found.")
