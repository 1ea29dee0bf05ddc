"""Model lifecycle told apart (issue 18): registrations stored as promotions become registrations

Revision ID: context
Revises: adapt
Create Date: 2026-12-06

Data only, no schema change. Before this, MLflow's ``model_version.created`` was stored as a
``model_promotion`` titled "model <name> v<N> registered" (our parser's title), which made model lead time 0
and counted every registration as a promotion. Those rows become ``model_registration``; a promotion without
``registered_at`` gets the latest registration of its model version at or before it. Downgrade turns the
registrations back into the kind the old code knew (the backfilled registration times stay: they are true).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "context"
down_revision = "adapt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE change_events SET kind = 'model_registration' "
            "WHERE kind = 'model_promotion' AND title LIKE 'model % registered'"
        )
    )
    op.execute(
        sa.text(
            "UPDATE change_events SET registered_at = ("
            " SELECT MAX(r.occurred_at) FROM change_events r"
            " WHERE r.kind = 'model_registration' AND r.model_name = change_events.model_name"
            " AND r.version = change_events.version AND r.occurred_at <= change_events.occurred_at)"
            " WHERE kind = 'model_promotion' AND registered_at IS NULL"
            " AND model_name IS NOT NULL AND version IS NOT NULL"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("UPDATE change_events SET kind = 'model_promotion' WHERE kind = 'model_registration'"))
