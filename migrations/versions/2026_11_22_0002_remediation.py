"""remediation lifecycle, policy and typed actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

- ``remediation_requests.action_type`` (the executor key), ``expires_at``, ``approvals_required``,
  ``started_at``, ``reason`` (why it was rejected/expired/cancelled/failed to start).
- One open request per incident and action: a partial unique index (SQLite and PostgreSQL both support
  ``WHERE``), so concurrent "Request" clicks create one row.
- ``approvals``: one row per approver (unique request + user) instead of one per request (N-of-M).
- ``remediation_controls``: the global kill switch, persisted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'approved', 'running')"


def upgrade() -> None:
    with op.batch_alter_table("remediation_requests") as batch:
        batch.add_column(sa.Column("action_type", sa.String(32), nullable=False, server_default="webhook"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("approvals_required", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_index(
        "uq_remediation_open_request",
        "remediation_requests",
        ["incident_id", "action_id"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index("ix_remediation_requests_status", "remediation_requests", ["status"])
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint("uq_approvals_request", type_="unique")
        batch.create_unique_constraint("uq_approvals_request_user", ["request_id", "user_id"])
    op.create_table(
        "remediation_controls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("frozen", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("changed_by", sa.String(64), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("remediation_controls")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint("uq_approvals_request_user", type_="unique")
        batch.create_unique_constraint("uq_approvals_request", ["request_id"])
    op.drop_index("ix_remediation_requests_status", table_name="remediation_requests")
    op.drop_index("uq_remediation_open_request", table_name="remediation_requests")
    with op.batch_alter_table("remediation_requests") as batch:
        for col in ("reason", "started_at", "approvals_required", "expires_at", "action_type"):
            batch.drop_column(col)
