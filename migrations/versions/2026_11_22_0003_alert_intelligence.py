"""alert intelligence: change events, incident links, delivery/flap counters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

The shared contract (KPIs read these): change events are not incidents; every delivery of an alert is
counted (``alerts.delivery_count``), flaps are counted (``alerts.flap_count``, ``incidents.flapping``),
incidents linked to each other (model ↔ infrastructure) are rows in ``incident_links``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "change_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),  # deploy|config|feature_flag|model_promotion
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),  # model version registered
        sa.Column("meta", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_events") as batch_op:
        batch_op.create_index("ix_change_events_service_at", ["service", "occurred_at"], unique=False)
        batch_op.create_index("ix_change_events_model_at", ["model_name", "occurred_at"], unique=False)
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("linked_incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "linked_incident_id", name="uq_incident_links_pair"),
    )
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("delivery_count", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("flap_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(sa.Column("flapping", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("grouping_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("truncated_alerts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("model_service", sa.String(length=200), nullable=True))
    # triage (branch triage): content template for grouping by content, a note on re-opens, lookup indexes
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(sa.Column("content_template", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("triage_note", sa.Text(), nullable=True))
        batch_op.create_index("ix_incidents_service_last_alert", ["service", "last_alert_at"], unique=False)
        batch_op.create_index("ix_incidents_model_service", ["model_service"], unique=False)
    with op.batch_alter_table("incident_links") as batch_op:
        batch_op.create_index("ix_incident_links_incident", ["incident_id"], unique=False)
    op.create_table(
        "noise_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),  # start of the hour (UTC)
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),  # "" when the alert names none
        sa.Column("deliveries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("flaps_suppressed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("grouped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("incidents_opened", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("changes", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket", "source", "service", name="uq_noise_counts_bucket"),
    )


def downgrade() -> None:
    op.drop_table("noise_counts")
    with op.batch_alter_table("incident_links") as batch_op:
        batch_op.drop_index("ix_incident_links_incident")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_index("ix_incidents_model_service")
        batch_op.drop_index("ix_incidents_service_last_alert")
        batch_op.drop_column("triage_note")
        batch_op.drop_column("content_template")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("model_service")
        batch_op.drop_column("truncated_alerts")
        batch_op.drop_column("grouping_reason")
        batch_op.drop_column("flapping")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("flap_count")
        batch_op.drop_column("delivery_count")
    op.drop_table("incident_links")
    op.drop_table("change_events")
