"""Runs keep the owners' display names, so reports can say "Ana Ruiz" instead of "1001".

The account snapshots only carry `owner_id` (what the CRM links), but the
dashboard and the weekly digest group by CSM and must name them; the names are
those of the run's pull, so a renamed or deactivated owner reads as they did then.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owners", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owners")
