"""The CRM cache remembers what the write-back wrote after the cached pull.

`crm_cache.writes`: JSON (`OwnWrites`: per record, the modification date HubSpot's
batch update answered and the values sent), set by the run's write-back and
cleared when the next run stores its cache. The next incremental pull leaves
our own writes out of its change search instead of reading every written record.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_cache") as batch:
        batch.add_column(sa.Column("writes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_cache") as batch:
        batch.drop_column("writes")
