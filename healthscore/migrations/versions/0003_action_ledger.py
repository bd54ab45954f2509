"""The action ledger: one row per (playbook, action, account, trigger occurrence).

A transactional outbox: due actions are inserted as `pending` in the same
transaction as the run's snapshots, then dispatched; the UNIQUE key is what
makes a re-run, a retry or a crash unable to send the same action twice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_ledger",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("playbook", sa.String(200), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("occurrence", sa.String(100), nullable=False),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("external_id", sa.String(500), nullable=True),
        sa.Column("external", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint(
            "playbook", "action", "account_id", "occurrence", name="uq_action_ledger_occurrence"
        ),
    )
    op.create_index("ix_action_ledger_state", "action_ledger", ["playbook", "state"])


def downgrade() -> None:
    op.drop_index("ix_action_ledger_state", table_name="action_ledger")
    op.drop_table("action_ledger")
