"""remediation lifecycle, policy and typed actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Placeholder in the migration chain, owned by the remediation (issue 6) work; filled in by that change.
"""
from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
