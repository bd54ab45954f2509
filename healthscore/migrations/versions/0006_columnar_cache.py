"""The CRM cache stored as columns: `crm_cache.snapshot` becomes binary.

The cached snapshot was one JSON text of every record (159 of the history
database's 228 MB at 50k companies, and a whole portal of Python objects to write
or read it). It is now the ZIP of Parquet files of `healthscore.history.cache`.
A cache is only the base of the next incremental pull, so the old rows are
dropped: the first run after the upgrade pulls fully, as after a playbook edit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM crm_cache")
    with op.batch_alter_table("crm_cache") as batch:
        batch.drop_column("snapshot")
        batch.add_column(sa.Column("snapshot", sa.LargeBinary(), nullable=False))


def downgrade() -> None:
    op.execute("DELETE FROM crm_cache")
    with op.batch_alter_table("crm_cache") as batch:
        batch.drop_column("snapshot")
        batch.add_column(sa.Column("snapshot", sa.Text(), nullable=False))
