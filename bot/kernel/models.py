"""SQLAlchemy 2 typed models. The schema itself is created only by Alembic (migrations/)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from bot.kernel.db_types import Embedding, JSONType, UTCDateTime, utcnow
from bot.kernel.errors import NotFound


class Base(DeclarativeBase):
    pass


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # claimed by an approver, executor about to run
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    RUNNING = "running"  # the executor has started (claimed by one conditional UPDATE)
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # the policy as it is now forbids it, or the executor declined: nothing was changed


OPEN_REQUEST_STATUSES = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.RUNNING)
# The partial unique index's condition, as migration 0002 wrote it (SQLite and PostgreSQL both take WHERE).
_OPEN_REQUEST = text("status IN ('pending', 'approved', 'running')")
# Every index is declared here as the migrations made it, so `alembic check` sees one schema (a test runs
# it on both databases). An index made on one dialect only carries ``info={"dialect": ...}``; the
# migrations' env.py compares it only there.
POSTGRESQL_ONLY = {"dialect": "postgresql"}


class AlertPayload(Base):
    """Every accepted webhook body, verbatim."""

    __tablename__ = "alert_payloads"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[Any] = mapped_column(JSONType)


class DeadLetter(Base):
    """A rejected payload, kept with the reason, so nothing an operator sent disappears."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(128))


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_service_last_alert", "service", "last_alert_at"),
        Index("ix_incidents_model_service", "model_service"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="infra")
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.OPEN.value, index=True)
    group_key: Mapped[str] = mapped_column(String(500), index=True)
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_owner: Mapped[str | None] = mapped_column(String(200))
    runbook_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    rca_note: Mapped[str | None] = mapped_column(Text)
    slack_channel: Mapped[str | None] = mapped_column(String(64))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    flapping: Mapped[bool] = mapped_column(default=False)
    grouping_reason: Mapped[str | None] = mapped_column(Text)  # "grouped: same template <...>"
    truncated_alerts: Mapped[int] = mapped_column(default=0)  # alerts the source left out (Alertmanager)
    model_service: Mapped[str | None] = mapped_column(String(200))  # the service serving incident's model
    content_template: Mapped[str | None] = mapped_column(Text)  # JSON token list, for grouping by content
    triage_note: Mapped[str | None] = mapped_column(Text)  # e.g. "re-opened: source still firing after …"
    alerts: Mapped[list[AlertRecord]] = relationship(back_populates="incident", order_by="AlertRecord.id")


class AlertRecord(Base):
    """One normalised alert (identity = fingerprint) within an incident."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    payload_id: Mapped[int | None] = mapped_column(ForeignKey("alert_payloads.id"))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    model: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    url: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    repeat_count: Mapped[int] = mapped_column(default=0)
    incident: Mapped[Incident] = relationship(back_populates="alerts")
    delivery_count: Mapped[int] = mapped_column(default=1)  # every delivery: first, repeats, updates, flaps
    flap_count: Mapped[int] = mapped_column(default=0)  # times it fired again after resolving


class KnowledgeDocument(Base):
    """A past ticket or RCA note."""

    __tablename__ = "knowledge_documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(32), default="import")
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(200), index=True)
    root_cause: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[list[KnowledgeChunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="KnowledgeChunk.ordinal"
    )


class KnowledgeChunk(Base):
    """A passage of a document with its embedding (documents are ranked by their best chunk)."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        Index(
            "ix_knowledge_chunks_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
            info=POSTGRESQL_ONLY,
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[np.ndarray] = mapped_column(Embedding)
    document: Mapped[KnowledgeDocument] = relationship(back_populates="chunks")


class Runbook(Base):
    __tablename__ = "runbooks"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    path: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)  # parsed front matter + body
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemediationRequest(Base):
    """A request to run a runbook action; authority to approve is this row, never the click payload."""

    __tablename__ = "remediation_requests"
    __table_args__ = (
        # one open request per incident and action: a concurrent "Request" click loses on this index
        Index(
            "uq_remediation_open_request",
            "incident_id",
            "action_id",
            unique=True,
            sqlite_where=_OPEN_REQUEST,
            postgresql_where=_OPEN_REQUEST,
        ),
        Index("ix_remediation_requests_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    runbook_id: Mapped[str] = mapped_column(String(200))
    action_id: Mapped[str] = mapped_column(String(200))
    action_title: Mapped[str] = mapped_column(String(300))
    action: Mapped[dict[str, Any]] = mapped_column(JSONType)  # snapshot of the action spec at request time
    approvers: Mapped[list[str]] = mapped_column(JSONType)  # resolved Slack user ids
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    action_type: Mapped[str] = mapped_column(String(32), default="webhook")  # the executor's registry key
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approvals_required: Mapped[int] = mapped_column(default=1)  # approvers besides the requester
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected, expired, cancelled or refused
    # A random UUID given at creation: the Idempotency-Key of its webhook and the key of its MLflow tag, unique
    # across deployments (row ids are not: two bots on two databases both have request #1).
    uid: Mapped[str | None] = mapped_column(String(36), index=True, unique=True)


class Approval(Base):
    """One decision per approver on a request (unique request + user), so N-of-M needs N distinct people."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("request_id", "user_id", name="uq_approvals_request_user"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("remediation_requests.id"))
    user_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Append-only log of every state change, written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_incident_id", "incident_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("remediation_requests.id"))
    actor: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Feedback(Base):
    """A 👍/👎 on a suggested match (past incident or runbook) for one incident."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("incident_id", "target_kind", "target_id", "user_id", name="uq_feedback"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # "document" | "runbook"
    target_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(64))
    helpful: Mapped[bool] = mapped_column()
    features: Mapped[dict[str, float] | None] = mapped_column(JSONType)  # ranking features shown
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suggestion(Base):
    """What was suggested for an incident, with the ranking features, so feedback can refit weights."""

    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("incident_id", "target_kind", "target_id", name="uq_suggestion"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column()
    score: Mapped[float] = mapped_column()
    why: Mapped[list[str]] = mapped_column(JSONType, default=list)
    features: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChangeKind(StrEnum):
    DEPLOY = "deploy"
    CONFIG = "config"
    FEATURE_FLAG = "feature_flag"
    MODEL_PROMOTION = (
        "model_promotion"  # a version starts serving (an alias moved): lead time is counted here
    )
    MODEL_REGISTRATION = "model_registration"  # a version registered: not serving yet, never "started after"


class ChangeEvent(Base):
    """A deploy, config change, flag flip, model promotion or registration. Never an incident; shown beside
    them (registrations are not: a registered version serves nothing until it is promoted)."""

    __tablename__ = "change_events"
    __table_args__ = (
        Index("ix_change_events_service_at", "service", "occurred_at"),
        Index("ix_change_events_model_at", "model_name", "occurred_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    service: Mapped[str | None] = mapped_column(String(200))
    model_name: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # model version registered
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class IncidentLink(Base):
    """Two incidents that are probably one problem (e.g. model drift ↔ latency on its serving service)."""

    __tablename__ = "incident_links"
    __table_args__ = (
        UniqueConstraint("incident_id", "linked_incident_id", name="uq_incident_links_pair"),
        Index("ix_incident_links_incident", "incident_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    linked_incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NoiseCount(Base):
    """Per hour, source and service: what the alert stream delivered and what triage made of it."""

    __tablename__ = "noise_counts"
    __table_args__ = (UniqueConstraint("bucket", "source", "service", name="uq_noise_counts_bucket"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(200))
    deliveries: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    flaps_suppressed: Mapped[int] = mapped_column(default=0)
    grouped: Mapped[int] = mapped_column(default=0)
    incidents_opened: Mapped[int] = mapped_column(default=0)
    changes: Mapped[int] = mapped_column(default=0)
    orphaned_resolves: Mapped[int] = mapped_column(default=0, server_default="0")  # not deliveries (noise.py)


class RemediationControl(Base):
    """The global kill switch for remediation actions (one row, id 1), persisted so a restart keeps it."""

    __tablename__ = "remediation_controls"
    id: Mapped[int] = mapped_column(primary_key=True)
    frozen: Mapped[bool] = mapped_column(default=False)
    changed_by: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class EmbeddingModel(Base):
    """A locally adapted embedding model (``kb adapt``): where it is, its hash, and whether queries use it.

    At most one row is ``active``; with none, the bundled model answers. Every replica follows this table, so
    they all switch to the same version (bot/advice/encoders.py)."""

    __tablename__ = "embedding_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    base: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="embedding")  # embedding|active|retired|failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class StagedEmbedding(Base):
    """A chunk's embedding under a model that is not active yet: filled while the knowledge base is
    re-embedded, copied onto ``knowledge_chunks`` in the switch's one transaction, then deleted."""

    __tablename__ = "staged_embeddings"
    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[np.ndarray] = mapped_column(Embedding)


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident, or ``NotFound`` saying it does not exist (a message for the user who asked)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"Incident #{incident_id} does not exist.")
    return incident
