"""The Prefect table artifacts hold the lowest scores, at most `TABLE_ARTIFACT_ROWS`.

A 100k-account portfolio would otherwise post two 20 MB tables to the Prefect API on
every run; the whole portfolio is in the dashboard.
"""

from __future__ import annotations

from healthscore.actions import load_playbook
from healthscore.core.crm import CrmSnapshot
from healthscore.core.scoring import Scorer
from healthscore.core.trends import Baseline, compare
from healthscore.demo.sample import DEFAULT_AS_OF, generate_snapshot
from healthscore.reports.run_summary import TABLE_ARTIFACT_ROWS, table_rows
from tests.conftest import PLAYBOOKS


def test_the_scores_table_keeps_the_lowest_scores_in_order() -> None:
    playbook = load_playbook(PLAYBOOKS / "default.yaml")
    snapshot = CrmSnapshot.from_json(generate_snapshot(1_400, seed=5))
    scores = Scorer(playbook).score_snapshot(snapshot, DEFAULT_AS_OF)
    comparisons = compare(scores, Baseline(), playbook.trend.flat_band)
    assert len(comparisons) > TABLE_ARTIFACT_ROWS == 1_000
    rows = table_rows(comparisons)
    expected = sorted(comparisons, key=lambda c: (c.rounded, c.id))[:TABLE_ARTIFACT_ROWS]
    assert [r["id"] for r in rows] == [c.id for c in expected]
    assert [r["id"] for r in table_rows(comparisons, limit=3)] == [c.id for c in expected[:3]]
    small = comparisons[:10]
    assert len(table_rows(small)) == 10
