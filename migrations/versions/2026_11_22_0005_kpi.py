"""KPI support

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Placeholder in the migration chain, owned by the KPI (issue 9) work; filled in by that change.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
