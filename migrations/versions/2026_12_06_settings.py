"""Orphaned resolves counted apart in noise_counts

Revision ID: settings
Revises: decide
Create Date: 2026-12-06

A resolve for an alert the bot never saw firing (or forgot, after DEDUP_WINDOW_MINUTES) belongs to no alert and
no incident: it is no longer a delivery of the noise funnel (which made `incident-bot noise` and `/incident kpi`
disagree) but its own counter, `orphaned_resolves`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "settings"
down_revision = "decide"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "noise_counts", sa.Column("orphaned_resolves", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("noise_counts") as batch:
        batch.drop_column("orphaned_resolves")
