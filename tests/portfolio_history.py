"""A small hand-made score history for the dashboard, artifact and digest tests.

Scored by the real engine (`Scorer`, `compare`) and recorded the way the flow records
it, so the reports read exactly what a real run stores; names are hostile on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthscore.actions import load_playbook
from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.scoring import Scorer
from healthscore.core.trends import compare
from healthscore.history import RunInfo, open_store

PLAYBOOK_YAML = """
name: Digest test health
object: companies
groups:
  - name: Usage
    rules:
      - {name: Usage scale, property: usage, scale: {from: [0, 100], to: [0, 70]}}
  - name: Sentiment
    rules:
      - {name: CSM pulse, property: csm_pulse, points_each: {green: 30, yellow: 15, red: 0}}
trend: {compare_days: 7, flat_band: 3}
"""
HOSTILE = "<script>alert(1)</script>"
CHANNEL = "<!channel> & Co <!--hs-data-->"  # also the dashboard's data slot
OWNERS = [
    {"id": "1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Ruiz"},
    {"id": "2", "email": "bo@example.com", "firstName": "<b>Bo</b>", "lastName": "Lee"},
]
NAMES = {
    "101": "Acme",
    "102": HOSTILE,
    "103": CHANNEL,
    "104": "Delta | Pipes *bold*",
    "105": "Echo",
    "106": "Foxtrot",
}
OWNER_OF = {"101": "1", "102": "1", "103": "2", "104": "2", "105": "2", "106": None}
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
# usage per account per week; csm_pulse green throughout except where noted
WEEKS: list[Mapping[str, tuple[float, str]]] = [
    {
        "101": (90, "green"),
        "102": (70, "green"),
        "103": (50, "green"),
        "104": (20, "red"),
        "105": (95, "green"),
        "106": (60, "yellow"),
    },
    {
        "101": (95, "green"),
        "102": (30, "yellow"),  # Healthy-ish -> At-risk this week
        "103": (20, "yellow"),  # Neutral -> At-risk
        "104": (20, "red"),  # At-risk both weeks: not new
        "105": (90, "green"),
        "106": (75, "green"),
    },
]


def playbook(folder: Path) -> Playbook:
    path = folder / "digest-test.yaml"
    path.write_text(PLAYBOOK_YAML, encoding="utf-8")
    return load_playbook(path)


def snapshot(week: Mapping[str, tuple[float, str]]) -> CrmSnapshot:
    companies = []
    for company_id, (usage, pulse) in week.items():
        props = {"name": NAMES[company_id], "usage": str(usage), "csm_pulse": pulse}
        if OWNER_OF[company_id]:
            props["hubspot_owner_id"] = OWNER_OF[company_id] or ""
        companies.append({"id": company_id, "properties": props})
    return CrmSnapshot.from_json({"owners": OWNERS, "companies": companies}, "test")


def make_history(url: str, folder: Path, weeks: int = len(WEEKS)) -> Playbook:
    """Record `weeks` weekly runs (7 days apart) of the test playbook in the store at `url`."""
    book = playbook(folder)
    scorer = Scorer(book)
    with open_store(url) as store:
        for i, week in enumerate(WEEKS[:weeks]):
            as_of = T0 + timedelta(days=7 * i)
            crm = snapshot(week)
            scores = scorer.score_snapshot(crm, as_of)
            comparisons = compare(scores, store.baseline(book, as_of), book.trend.flat_band)
            owners = {o.id: o.display_name for o in crm.owners}
            run = RunInfo(book.name, book.content_hash, as_of, "file:test", as_of, owners=owners)
            store.finish_run(store.record_run(run, comparisons), "succeeded")
    return book
