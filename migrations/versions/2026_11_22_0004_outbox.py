"""outbox, job leases and replica-safe locking

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Placeholder in the migration chain, owned by the replicas/outbox (issue 10) work; filled in by that change.
"""
from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
