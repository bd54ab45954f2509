"""Scoring: records + playbook + as-of -> scores with a per-rule breakdown. No I/O.

The product's one engine is the columnar one (`engine.Scorer`): the snapshot is
held as columns (`frame.CrmFrame`) and every rule is evaluated for all accounts
at once, so a run costs a few array passes instead of millions of Python objects.
The numbers follow docs/playbook.md exactly; they are what users compare with
HubSpot's health score. This module is the stable import point for callers.
"""

from __future__ import annotations

from datetime import datetime

from healthscore.core.crm import CrmSnapshot
from healthscore.core.engine import Scorer
from healthscore.core.playbook import Playbook
from healthscore.core.results import AccountScore, GroupScore, RuleScore, account_name, round2

__all__ = [
    "AccountScore",
    "GroupScore",
    "RuleScore",
    "Scorer",
    "account_name",
    "round2",
    "score_snapshot",
]


def score_snapshot(
    playbook: Playbook, snapshot: CrmSnapshot, as_of: datetime
) -> list[AccountScore]:
    return Scorer(playbook).score_snapshot(snapshot, as_of)
