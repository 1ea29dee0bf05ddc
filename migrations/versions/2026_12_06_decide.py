"""Remediation requests get a random UUID (idempotency key unique across deployments)

Revision ID: decide
Revises: 0005
Create Date: 2026-12-06

Existing rows get a UUID too, so a request made before the upgrade still runs with a key no other
deployment shares.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "decide"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("remediation_requests", sa.Column("uid", sa.String(length=36), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id FROM remediation_requests WHERE uid IS NULL")).scalars().all()
    for row_id in rows:
        conn.execute(
            sa.text("UPDATE remediation_requests SET uid = :uid WHERE id = :id"),
            {"uid": str(uuid.uuid4()), "id": row_id},
        )
    op.create_index("ix_remediation_requests_uid", "remediation_requests", ["uid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_remediation_requests_uid", table_name="remediation_requests")
    with op.batch_alter_table("remediation_requests") as batch:
        batch.drop_column("uid")
