"""Slack owner lookups remembered across runs (`healthscore.history.lookups`).

`slack_lookups`: (workspace, kind, key) -> value until `expires_at`; kind `user`
(email -> Slack user id, NULL: no such user) or `dm` (user id -> DM channel).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_lookups",
        sa.Column("workspace", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_lookups")
