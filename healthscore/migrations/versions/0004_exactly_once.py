"""Exactly once under faults: ledger leases, backoff and dead rows; unbounded CRM text; run owners.

- `action_ledger.lease_until` / `claimed_by`: an `attempting` row belongs to the
  process named in `claimed_by` ("host:pid") until `lease_until`; another run
  leaves it alone unless that process is gone (same host) or the lease expired.
- `action_ledger.next_attempt_at`: a `failed` row waits until then (exponential
  backoff); `state = 'dead'` rows are never tried again (attempt cap).
- `runs.host` / `runs.pid`: which process is recording a `running` run, so the
  next run can tell a crashed one (process gone) from a live one.
- CRM text columns become unbounded TEXT on PostgreSQL (a company name over 500
  characters failed the whole run). SQLite does not enforce VARCHAR lengths, so
  nothing changes there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = (
    ("account_snapshots", "name", 500),
    ("action_ledger", "target", 500),
    ("action_ledger", "external_id", 500),
)


def upgrade() -> None:
    op.add_column("action_ledger", sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.add_column("action_ledger", sa.Column("claimed_by", sa.String(200), nullable=True))
    op.add_column("action_ledger", sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
    op.add_column("runs", sa.Column("host", sa.String(200), nullable=True))
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for table, column, length in _TEXT_COLUMNS:
            op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, length in _TEXT_COLUMNS:
            op.alter_column(table, column, type_=sa.String(length), existing_type=sa.Text())
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid")
        batch.drop_column("host")
    with op.batch_alter_table("action_ledger") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("claimed_by")
        batch.drop_column("lease_until")
