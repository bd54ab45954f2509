"""The CLI as a new user meets it: sample data in, scores out, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthscore.actions import load_playbook
from healthscore.cli import app
from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.core.values import parse_as_of

runner = CliRunner()
PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
AS_OF = "2026-11-01T00:00:00Z"


def scoring(sample_file: Path, command: str, *extra: str) -> list[str]:
    """`healthscore COMMAND` on the default playbook and the sample, as of AS_OF."""
    playbook = str(PLAYBOOKS / "default.yaml")
    return [command, *extra, "-p", playbook, "-s", f"file:{sample_file}", "--as-of", AS_OF]


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crm") / "crm.json"
    result = runner.invoke(app, ["sample", "--accounts", "300", "--seed", "3", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_score_json_has_one_entry_per_in_segment_account(sample_file: Path) -> None:
    result = runner.invoke(app, scoring(sample_file, "score", "-f", "json"))
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    snapshot = json.loads(sample_file.read_text())
    customers = [
        c["id"]
        for c in snapshot["companies"]
        if c["properties"].get("lifecyclestage", "").strip().lower() == "customer"
    ]
    assert [e["id"] for e in entries] == customers
    playbook = load_playbook(PLAYBOOKS / "default.yaml")
    group_names = [g.name for g in playbook.groups]
    for entry in entries:
        assert set(entry) == {"id", "name", "score", "status", "groups", "rules"}
        assert list(entry["groups"]) == group_names
        assert list(entry["rules"]) == group_names
        assert entry["status"] in {"Healthy", "Neutral", "At-risk"}
        assert entry["score"] == round(entry["score"], 2)
    # the CLI prints exactly what the engine computes
    scores = Scorer(playbook).score_snapshot(CrmSnapshot.load(sample_file), parse_as_of(AS_OF))
    assert entries == [s.to_json() for s in scores]


def test_score_csv_and_table(sample_file: Path) -> None:
    args = scoring(sample_file, "score")
    csv_out = runner.invoke(app, [*args, "-f", "csv"])
    assert csv_out.exit_code == 0
    header, *rows = csv_out.stdout.strip().splitlines()
    assert header.startswith("id,name,owner_id,score,status,")
    table = runner.invoke(app, args)
    assert table.exit_code == 0
    assert "Healthy:" in table.stdout and "At-risk:" in table.stdout
    assert len(rows) > 100


def test_explain_shows_every_rule_and_the_same_score(sample_file: Path) -> None:
    scored = json.loads(runner.invoke(app, scoring(sample_file, "score", "-f", "json")).stdout)
    first = scored[0]
    args = scoring(sample_file, "explain", first["id"])
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    for group, rules in first["rules"].items():
        assert group in text.stdout
        for rule in rules:
            assert rule in text.stdout
    as_json = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert as_json["score"] == first["score"] and as_json["in_segment"] is True
    assert [r["name"] for g in as_json["breakdown"] for r in g["rules"]] == [
        r for g in first["rules"].values() for r in g
    ]


def test_explain_unknown_account_is_a_clear_error(sample_file: Path) -> None:
    result = runner.invoke(
        app, ["explain", "nope", "-p", str(PLAYBOOKS / "default.yaml"), "-s", f"file:{sample_file}"]
    )
    assert result.exit_code == 2
    assert "no companies record with id 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("file:/does/not/exist.json", "no such file"),
        ("ftp:x", "unknown source 'ftp:x'"),
        ("file:", "file: needs a path"),
    ],
)
def test_bad_source_exits_2_without_traceback(source: str, message: str) -> None:
    result = runner.invoke(app, ["score", "-p", str(PLAYBOOKS / "default.yaml"), "-s", source])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_snapshot_json_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"companies": [\n  {"id": "1",}\n]}')
    result = runner.invoke(
        app, ["score", "-p", str(PLAYBOOKS / "default.yaml"), "-s", f"file:{bad}"]
    )
    assert result.exit_code == 2
    assert f"{bad}:2: not valid JSON" in result.stderr


def test_bad_as_of_exits_2(sample_file: Path) -> None:
    result = runner.invoke(app, [*scoring(sample_file, "score"), "--as-of", "last tuesday"])
    assert result.exit_code == 2
    assert "--as-of 'last tuesday' is not a date" in result.stderr


def test_sample_is_deterministic(tmp_path: Path) -> None:
    one, two = tmp_path / "a.json", tmp_path / "b.json"
    for path in (one, two):
        assert (
            runner.invoke(app, ["sample", "-n", "50", "--seed", "11", "--out", str(path)]).exit_code
            == 0
        )
    assert one.read_bytes() == two.read_bytes()


def test_schema_command_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "healthscore playbook"
    assert "rule" in schema["$defs"]
