"""History store: runs, account snapshots, CRM cache.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("playbook", sa.String(200), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
    )
    op.create_index("ix_runs_playbook_as_of", "runs", ["playbook", "as_of"])
    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("playbook", sa.String(200), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(200), nullable=False),
        sa.Column("color", sa.String(50), nullable=False),
        sa.Column("trend", sa.String(10), nullable=False),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("delta", sa.Float(), nullable=True),
        sa.Column("previous_status", sa.String(200), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.UniqueConstraint("run_id", "account_id", name="uq_account_snapshots_run_account"),
    )
    op.create_index(
        "ix_account_snapshots_latest", "account_snapshots", ["playbook", "account_id", "as_of"]
    )
    op.create_table(
        "crm_cache",
        sa.Column("source_key", sa.String(200), primary_key=True),
        sa.Column("pulled_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.String(64), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
        ),
    )


def downgrade() -> None:
    op.drop_table("crm_cache")
    op.drop_index("ix_account_snapshots_latest", table_name="account_snapshots")
    op.drop_table("account_snapshots")
    op.drop_index("ix_runs_playbook_as_of", table_name="runs")
    op.drop_table("runs")
