"""Slack owner lookups kept across runs (migration 0005): the store side of
`healthscore.integrations.slack.messages.LookupCache`.

A daily run would otherwise ask Slack again for every CSM: `users.lookupByEmail`
(email -> user id) and `conversations.open` (user id -> DM channel), both Tier 3
(50+ calls a minute). One row per (workspace, kind, key); an answer is trusted
until `expires_at`: `FOUND_TTL` for a user or channel found, `MISSING_TTL` for
"no Slack user with this email" (so a CSM who joins Slack is found within a day).
A DM that Slack refuses as gone is forgotten by the sender (`forget`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from healthscore.history.ledger import now_naive

FOUND_TTL = timedelta(days=7)
MISSING_TTL = timedelta(days=1)
CHUNK = 500


class SlackLookup(SQLModel, table=True):
    """One remembered answer of a Slack lookup (migration 0005)."""

    __tablename__ = "slack_lookups"

    workspace: str = Field(primary_key=True, max_length=100)
    kind: str = Field(primary_key=True, max_length=20)
    key: str = Field(primary_key=True, max_length=320)
    value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    expires_at: datetime = Field(sa_type=DateTime())


LOOKUPS = SQLModel.metadata.tables["slack_lookups"]


class StoreLookupCache:
    """`LookupCache` over the history database; each call is one short transaction."""

    def __init__(
        self, engine: Engine, found_ttl: timedelta = FOUND_TTL, missing_ttl: timedelta = MISSING_TTL
    ) -> None:
        self.engine = engine
        self.found_ttl = found_ttl
        self.missing_ttl = missing_ttl

    def load(self, workspace: str) -> dict[tuple[str, str], str | None]:
        """Every unexpired answer of the workspace: (kind, key) -> value (None: not found)."""
        query = sa.select(LOOKUPS.c.kind, LOOKUPS.c.key, LOOKUPS.c.value).where(
            LOOKUPS.c.workspace == workspace, LOOKUPS.c.expires_at > now_naive()
        )
        with self.engine.connect() as connection:
            return {(row.kind, row.key): row.value for row in connection.execute(query)}

    def save(
        self,
        workspace: str,
        found: Mapping[tuple[str, str], str | None],
        forget: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Replace the rows of `found` (fresh expiry) and delete those of `forget`."""
        now = now_naive()
        gone = set(forget) | set(found)
        rows = [
            {
                "workspace": workspace,
                "kind": kind,
                "key": key,
                "value": value,
                "expires_at": now + (self.found_ttl if value is not None else self.missing_ttl),
            }
            for (kind, key), value in found.items()
        ]
        with self.engine.begin() as connection:
            by_kind: dict[str, list[str]] = {}
            for kind, key in gone:
                by_kind.setdefault(kind, []).append(key)
            for kind, keys in by_kind.items():
                for start in range(0, len(keys), CHUNK):
                    connection.execute(
                        sa.delete(LOOKUPS).where(
                            LOOKUPS.c.workspace == workspace,
                            LOOKUPS.c.kind == kind,
                            LOOKUPS.c.key.in_(keys[start : start + CHUNK]),
                        )
                    )
            if rows:
                connection.execute(sa.insert(LOOKUPS), rows)
