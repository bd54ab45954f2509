"""`healthscore calibrate`: the measures against numbers worked out by hand, the CSV
source's errors, and the telco example end to end (AUC, suggestion, its YAML)."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import rankdata
from typer.testing import CliRunner

from healthscore.actions import load_playbook, parse_playbook
from healthscore.calibration.calibrate import calibrate, health_auc, roc_auc
from healthscore.cli import app
from healthscore.core.scoring import Scorer
from healthscore.core.values import parse_as_of
from healthscore.sources import SourceError
from healthscore.sources.table import load_csv

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
# Shipped next to its example playbook, so the figures are checked from any clone.
TELCO = Path(__file__).resolve().parents[1] / "playbooks" / "examples" / "telco-customer-churn.csv"
TELCO_PLAYBOOK = REPO / "playbooks" / "examples" / "telco.yaml"
AS_OF = "2026-01-01T00:00:00Z"

TINY_PLAYBOOK = """\
name: "Tiny <script>alert(1)</script>"
object: companies
combine: sum
groups:
  - name: Usage
    rules:
      - name: Active
        when: [{property: active, op: eq, value: "yes"}]
        points: 50
  - name: Sentiment
    rules:
      - name: NPS
        property: nps
        points_each: {promoter: 30, passive: 10}
thresholds:
  - {min: 70, label: Healthy, color: green}
  - {min: 40, label: Neutral, color: yellow}
  - {min: 0, label: At-risk, color: red}
"""

# score = 50 if active + 30 promoter / 10 passive / 0 detractor
TINY_CSV = """\
id,active,nps,churned
a1,yes,promoter,no
a2,yes,promoter,no
a3,yes,passive,no
a4,yes,passive,yes
a5,yes,detractor,no
a6,no,promoter,no
a7,no,promoter,yes
a8,no,passive,yes
a9,no,detractor,yes
a10,no,detractor,no
"""
TINY_SCORES = {
    "a1": 80,
    "a2": 80,
    "a3": 60,
    "a4": 60,
    "a5": 50,
    "a6": 30,
    "a7": 30,
    "a8": 10,
    "a9": 0,
    "a10": 0,
}
TINY_CHURNED = {"a4", "a7", "a8", "a9"}


def pairwise_auc(points: dict[str, float], churned: set[str]) -> float:
    """By definition: over every (churned, retained) pair, 1 if the churned one scored
    lower, 1/2 on a tie, 0 otherwise; averaged."""
    total = 0.0
    pairs = 0
    for p, n in itertools.product(churned, set(points) - churned):
        pairs += 1
        total += 1.0 if points[p] < points[n] else 0.5 if points[p] == points[n] else 0.0
    return total / pairs


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    playbook = tmp_path / "tiny.yaml"
    playbook.write_text(TINY_PLAYBOOK, encoding="utf-8")
    table = tmp_path / "tiny.csv"
    table.write_text(TINY_CSV, encoding="utf-8")
    return playbook, table


def tiny_args(playbook: Path, table: Path) -> list[str]:
    return ["calibrate", "-p", str(playbook), "-s", f"csv:{table}", "--outcome", "churned=yes"]


def calibrate_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["calibrate", "--as-of", AS_OF, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# ---------------------------------------------------------------- the measures


def test_tiny_table_scores_as_written_by_hand(tiny: tuple[Path, Path]) -> None:
    playbook, table = tiny
    book = load_playbook(playbook)
    scores = Scorer(book).score_snapshot(load_csv(table), parse_as_of(AS_OF))
    assert {s.id: s.score for s in scores} == TINY_SCORES


def test_auc_counts_ties_as_half(tiny: tuple[Path, Path]) -> None:
    playbook, table = tiny
    report = calibrate_json("-p", str(playbook), "-s", f"csv:{table}", "--outcome", "churned=yes")
    # a4 (60) beats a1, a2 and ties a3: 2.5; a7 (30): 4 + tie with a6: 4.5;
    # a8 (10): 5; a9 (0): 5 + tie with a10: 5.5. 17.5 of 4 * 6 pairs.
    assert pairwise_auc(TINY_SCORES, TINY_CHURNED) == pytest.approx(17.5 / 24)
    assert report["auc"] == pytest.approx(17.5 / 24, abs=1e-12)
    assert report["accounts"] == 10
    assert report["positives"] == 4


def test_status_churn_lift_and_alert_table(tiny: tuple[Path, Path]) -> None:
    playbook, table = tiny
    report = calibrate_json("-p", str(playbook), "-s", f"csv:{table}", "--outcome", "churned=YES")
    overall = 4 / 10
    by_status = {row["status"]: row for row in report["by_status"]}
    assert [row["status"] for row in report["by_status"]] == ["Healthy", "Neutral", "At-risk"]
    # Healthy a1 a2; Neutral a3 a4 a5 (a4 churned); At-risk a6..a10 (a7 a8 a9 churned).
    assert by_status["Healthy"]["accounts"] == 2
    assert by_status["Healthy"]["churn_rate"] == 0
    assert by_status["Healthy"]["lift"] == 0
    assert by_status["Neutral"]["accounts"] == 3
    assert by_status["Neutral"]["churn_rate"] == pytest.approx(1 / 3)
    assert by_status["Neutral"]["lift"] == pytest.approx((1 / 3) / overall)
    assert by_status["At-risk"]["accounts"] == 5
    assert by_status["At-risk"]["churn_rate"] == pytest.approx(3 / 5)
    assert by_status["At-risk"]["lift"] == pytest.approx(1.5)
    at_risk, with_neutral = report["alerts"]
    assert at_risk["statuses"] == ["At-risk"]
    assert (at_risk["flagged"], at_risk["caught"]) == (5, 3)
    assert at_risk["precision"] == pytest.approx(3 / 5)
    assert at_risk["recall"] == pytest.approx(3 / 4)
    assert with_neutral["statuses"] == ["At-risk", "Neutral"]
    assert with_neutral["precision"] == pytest.approx(4 / 8)
    assert with_neutral["recall"] == pytest.approx(1.0)


def test_rule_and_group_stats(tiny: tuple[Path, Path]) -> None:
    playbook, table = tiny
    report = calibrate_json("-p", str(playbook), "-s", f"csv:{table}", "--outcome", "churned=yes")
    active = report["rules"]["Usage"]["Active"]
    active_points = {a: 50.0 if a in {"a1", "a2", "a3", "a4", "a5"} else 0.0 for a in TINY_SCORES}
    assert active["auc"] == pytest.approx(pairwise_auc(active_points, TINY_CHURNED))
    assert active["auc"] == pytest.approx(17 / 24)
    assert active["fires"] == pytest.approx(0.5)
    assert active["churn_rate_fires"] == pytest.approx(1 / 5)  # a4
    assert active["churn_rate_otherwise"] == pytest.approx(3 / 5)  # a7 a8 a9
    nps_points = {"a1": 30, "a2": 30, "a3": 10, "a4": 10, "a5": 0}
    nps_points |= {"a6": 30, "a7": 30, "a8": 10, "a9": 0, "a10": 0}
    nps = report["rules"]["Sentiment"]["NPS"]
    assert nps["auc"] == pytest.approx(pairwise_auc(nps_points, TINY_CHURNED))
    assert nps["fires"] == pytest.approx(0.7)
    assert report["groups"]["Sentiment"]["auc"] == pytest.approx(nps["auc"])
    assert report["suggested"] is None


def test_auc_matches_the_pair_definition_on_random_ties() -> None:
    rng = np.random.default_rng(5)
    points = rng.integers(0, 6, size=40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    by_id = {str(i): float(p) for i, p in enumerate(points)}
    churned = {str(i) for i in np.flatnonzero(labels)}
    assert health_auc(points, labels) == pytest.approx(pairwise_auc(by_id, churned))
    assert roc_auc(points, labels) == pytest.approx(1 - pairwise_auc(by_id, churned))
    # and the Mann-Whitney U with average ranks (ties share the mean of their positions)
    assert rankdata([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    u = rankdata(points)[labels].sum() - n_pos * (n_pos + 1) / 2
    assert roc_auc(points, labels) == pytest.approx(u / (n_pos * n_neg))


def test_html_report_is_offline_and_escaped(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    playbook, table = tiny
    html = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [*tiny_args(playbook, table), "--as-of", AS_OF, "--html", str(html)],
    )
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r"<script[^>]+src=", text)  # plotly is inlined, no CDN
    assert "Plotly" in text and "ROC" in text and "Churn rate by status" in text


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("churned", "PROPERTY=VALUE"),
        ("churn=yes", "did you mean 'churned'"),
        ("churned=maybe", "no account of the 10"),
        ("CHURNED=yes", "did you mean 'churned'"),
        ("=yes", "PROPERTY=VALUE"),
    ],
)
def test_bad_outcome_exits_2(tiny: tuple[Path, Path], outcome: str, message: str) -> None:
    playbook, table = tiny
    result = runner.invoke(
        app, ["calibrate", "-p", str(playbook), "-s", f"csv:{table}", "--outcome", outcome]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_outcome_with_only_positives_exits_2(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    playbook, _ = tiny
    table = tmp_path / "all.csv"
    table.write_text("id,active,nps,churned\na1,yes,promoter,yes\na2,no,passive,yes\n")
    result = runner.invoke(
        app, ["calibrate", "-p", str(playbook), "-s", f"csv:{table}", "--outcome", "churned=yes"]
    )
    assert result.exit_code == 2
    assert "every account of the 2" in result.output


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.csv: no such file"):
        load_csv(tmp_path / "nope.csv")


def test_csv_unknown_id_column_lists_columns_and_close_match(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("customerID,tenure\nx,1\n")
    with pytest.raises(SourceError) as info:
        load_csv(table, id_column="customer_id")
    message = str(info.value)
    assert f"{table}:1: no id column 'customer_id'" in message
    assert "did you mean 'customerID'" in message
    assert "customerID, tenure" in message


def test_csv_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,x\na,1\nb,2\na,3\n")
    with pytest.raises(SourceError, match=r"t\.csv:4: duplicate id 'a' \(first on line 2\)"):
        load_csv(table)


def test_csv_ragged_row_names_its_line(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text('id,x,y\na,1,2\nb,"multi\nline",3\nc,1\n')
    with pytest.raises(SourceError, match=r"t\.csv:5: 2 fields, but the header has 3"):
        load_csv(table)


def test_csv_source_error_exits_2_through_the_cli(tiny: tuple[Path, Path]) -> None:
    playbook, table = tiny
    result = runner.invoke(
        app,
        [*tiny_args(playbook, table), "--id-column", "ID_"],
    )
    assert result.exit_code == 2
    assert "no id column 'ID_'" in result.output


def test_csv_bom_crlf_and_default_id_column(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_bytes(b"\xef\xbb\xbfname,customerID,TotalCharges\r\nAcme,c-1, \r\nBeta,c-2,5\r\n")
    snapshot = load_csv(table, object_type="contacts")
    records = snapshot.records("contacts")
    assert [r.id for r in records] == ["c-1", "c-2"]
    assert records[0].properties == {"name": "Acme", "customerID": "c-1", "TotalCharges": " "}


# ---------------------------------------------------------------- the telco example


TELCO_AUC = 0.8145  # measured; deterministic (no randomness in scoring)


@pytest.fixture(scope="module")
def telco(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One CLI run for the whole module: the suggestion's fit and 5-fold CV."""
    out = tmp_path_factory.mktemp("telco") / "telco.calibrated.yaml"
    report = calibrate_json(
        "-p",
        str(TELCO_PLAYBOOK),
        "-s",
        f"csv:{TELCO}",
        "--outcome",
        "Churn=Yes",
        "--suggest",
        str(out),
    )
    return report, out


def test_telco_example_playbook_auc(telco: tuple[dict[str, Any], Path]) -> None:
    report, _ = telco
    assert report["accounts"] == 7043
    assert report["positives"] == 1869
    assert round(report["auc"], 4) == TELCO_AUC
    at_risk = report["by_status"][-1]
    assert at_risk["status"] == "At-risk" and at_risk["lift"] > 1.5


def test_telco_suggestion_beats_the_original_out_of_sample(
    telco: tuple[dict[str, Any], Path],
) -> None:
    suggested = telco[0]["suggested"]
    assert suggested["cv_auc"] >= 0.82
    assert suggested["original_cv_auc"] == pytest.approx(TELCO_AUC, abs=0.005)
    assert suggested["cv_auc"] > suggested["original_cv_auc"]
    assert len(suggested["fold_aucs"]) == 5


def test_telco_suggested_yaml_validates_and_rescores_to_the_reported_auc(
    telco: tuple[dict[str, Any], Path],
) -> None:
    report, path = telco
    suggested = report["suggested"]
    assert suggested["path"] == str(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    assert "Suggested by `healthscore calibrate`" in text
    book = load_playbook(path)
    original = load_playbook(TELCO_PLAYBOOK)
    assert book.combine == "sum"
    assert [g.name for g in book.groups][-1] == "Calibrated bins"
    assert {g.name for g in book.groups} - {g.name for g in original.groups} == {"Calibrated bins"}
    rules = [r for g in book.groups for r in g.rules]
    original_rules = sum(len(g.rules) for g in original.groups)
    assert len(rules) == suggested["rules"]
    assert len(rules) <= original_rules + suggested["bins_kept"]
    for rule in rules:
        assert rule.name and not rule.name.startswith(("Contract value", "tenure scale"))
        values = [rule.points] if rule.points is not None else []
        values += list(rule.points_each.values()) + list(rule.scale_to or ())
        assert values and all(v is not None and float(v).is_integer() for v in values)
        assert any(values)
    scores = Scorer(book).score_snapshot(load_csv(TELCO), parse_as_of(AS_OF))
    labels = [s.properties["Churn"] == "Yes" for s in scores]
    assert health_auc([s.score for s in scores], labels) == suggested["auc"]
    # the statuses keep (about) the original's shares
    shares = {row["status"]: row["accounts"] / 7043 for row in report["by_status"]}
    for label, share in shares.items():
        new_share = sum(s.status == label for s in scores) / len(scores)
        assert math.isclose(new_share, share, abs_tol=0.03), (label, new_share, share)


def test_suggested_yaml_round_trips_through_the_parser(
    telco: tuple[dict[str, Any], Path],
) -> None:
    _, path = telco
    assert parse_playbook(path.read_text(encoding="utf-8"), str(path)).name.endswith("(calibrated)")


def test_engine_calibrate_without_suggestion_is_the_cli_number(
    telco: tuple[dict[str, Any], Path],
) -> None:
    book = load_playbook(TELCO_PLAYBOOK)
    report = calibrate(book, load_csv(TELCO), "Churn=Yes", parse_as_of(AS_OF))
    assert report.auc == telco[0]["auc"]
    assert report.suggested is None


# ---------------------------------------------------------------- backtest from history


def test_backtest_uses_the_score_stored_lead_days_before_the_outcome(
    tiny: tuple[Path, Path],
) -> None:
    from datetime import UTC, datetime

    from healthscore.calibration.calibrate import backtest
    from healthscore.core.crm import CrmRecord, CrmSnapshot
    from healthscore.core.trends import PastScore

    book = load_playbook(tiny[0])
    day = lambda d: datetime(2026, 1, d, tzinfo=UTC)  # noqa: E731
    # (account, stored at, score, status)
    history = [
        ("c1", day(1), 20.0, "At-risk"),
        ("c1", day(10), 90.0, "Healthy"),  # after c1's cutoff: must not be used
        ("c2", day(1), 75.0, "Healthy"),
        ("r1", day(1), 10.0, "At-risk"),
        ("r1", day(15), 80.0, "Healthy"),
        ("r2", day(15), 60.0, "Neutral"),
        ("r3", day(25), 50.0, "Neutral"),  # after the retained cutoff: left out
    ]
    calls: list[datetime] = []

    def lookup(moment: datetime) -> dict[str, PastScore]:
        calls.append(moment)
        latest: dict[str, PastScore] = {}
        for account, at, score, status in sorted(history, key=lambda h: h[1]):
            if at <= moment:
                latest[account] = PastScore(score, status, at)
        return latest

    records = [
        CrmRecord("c1", {"churned": "yes", "churn_date": "2026-01-12"}),
        CrmRecord("c2", {"churned": "yes", "churn_date": "2026-01-08"}),
        CrmRecord("c3", {"churned": "yes"}),  # no date: left out
        CrmRecord("r1", {"churned": "no"}),
        CrmRecord("r2", {"churned": "no"}),
        CrmRecord("r3", {"churned": "no"}),
    ]
    report = backtest(
        book,
        CrmSnapshot(objects={"companies": records}),
        "churned=yes",
        day(27),
        lookup,
        lead_days=7,
    )
    # cutoffs: c1 Jan 5 -> 20; c2 Jan 1 -> 75; retained Jan 20 -> r1 80, r2 60.
    scores = {"c1": 20.0, "c2": 75.0, "r1": 80.0, "r2": 60.0}
    assert report.accounts == 4 and report.positives == 2
    assert report.auc == pytest.approx(pairwise_auc(scores, {"c1", "c2"}))
    assert report.auc == pytest.approx(3 / 4)
    assert sorted(calls) == [day(1), datetime(2026, 1, 5, tzinfo=UTC), day(20)]
    assert len(report.warnings) == 2  # c3 undated, r3 not stored in time
    by_status = {row.status: row for row in report.by_status}
    assert (by_status["At-risk"].accounts, by_status["At-risk"].positives) == (1, 1)
    assert (by_status["Healthy"].accounts, by_status["Healthy"].positives) == (2, 1)
