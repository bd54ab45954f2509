"""What scoring returns: per account its score, status, groups and rules.

Shared by the columnar engine (`engine.py`) and the reports, the history store and
the actions that read a run; the numbers and the JSON follow docs/playbook.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from healthscore.core.records import CrmRecord
from healthscore.core.values import is_missing


@lru_cache(maxsize=1 << 16)
def round2(value: float) -> float:
    """Half away from zero on the decimal text, as a person rounds (2.675 -> 2.68).

    Memoized: a run rounds every rule's points of every account (2M values at 100k
    accounts) but rule points take few distinct values, and the decimal rounding
    costs about 2 µs a value."""
    rounded = float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return rounded + 0.0  # no "-0.0" in reports


@dataclass
class RuleScore:
    name: str
    kind: str
    points: float
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class GroupScore:
    name: str
    points: float  # after start and clamping
    raw: float  # start + sum of rules, before clamping
    rules: list[RuleScore]


class PointTables(ABC):
    """Groups that can give their rounded points without building `GroupScore`s: the
    engine's breakdown (`engine._Breakdown`), read from the run's columns. A report of
    100k accounts then builds no per-rule objects."""

    __slots__ = ()

    @abstractmethod
    def group_points(self) -> dict[str, float]:
        """`{group: points}`, rounded (`round2`)."""

    @abstractmethod
    def rule_points(self) -> dict[str, dict[str, float]]:
        """`{group: {rule: points}}`, rounded (`round2`)."""


@dataclass
class AccountScore:
    id: str
    name: str
    owner_id: str | None
    score: float  # unrounded; reports use round2
    status: str
    color: str
    groups: Sequence[GroupScore]
    properties: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def group_points(self) -> dict[str, float]:
        """Points per group, rounded (`round2`)."""
        if isinstance(self.groups, PointTables):  # the engine's breakdown reads its columns
            return self.groups.group_points()
        return {g.name: round2(g.points) for g in self.groups}

    def rule_points(self) -> dict[str, dict[str, float]]:
        """Points per rule by group, rounded (`round2`)."""
        if isinstance(self.groups, PointTables):
            return self.groups.rule_points()
        return {g.name: {r.name: round2(r.points) for r in g.rules} for g in self.groups}

    def to_json(self) -> dict[str, Any]:
        """The JSON of `healthscore score --format json` (README)."""
        return {
            "id": self.id,
            "name": self.name,
            "score": round2(self.score),
            "status": self.status,
            "groups": self.group_points(),
            "rules": self.rule_points(),
        }


NAME_PROPERTIES = ("name", "firstname", "lastname", "email")
"""The properties `account_name` reads."""


def account_name(record: CrmRecord) -> str:
    """`name`, else "firstname lastname", else `email`, else the id (`NAME_PROPERTIES`)."""
    props = record.properties
    name = props.get("name")
    if not is_missing(name):
        return str(name).strip()
    person = " ".join(
        str(props[k]).strip() for k in ("firstname", "lastname") if not is_missing(props.get(k))
    )
    return person or str(props.get("email") or "").strip() or record.id
