"""alert intelligence: change events, flapping, content groups, correlation, noise

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Placeholder in the migration chain, owned by the alert-intelligence (issue 7) work; filled in by that change.
"""
from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
