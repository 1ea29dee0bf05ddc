"""Append-only audit trail, written in the same transaction as the change it records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import AuditEvent


def record(
    session: Session, *, event: str, actor: str, incident_id: int | None = None,
    request_id: int | None = None, **detail: Any,
) -> AuditEvent:
    row = AuditEvent(event=event, actor=actor, incident_id=incident_id, request_id=request_id, detail=detail)
    session.add(row)
    return row


def trail(session: Session, *, incident_id: int) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.incident_id == incident_id).order_by(AuditEvent.id)
    return list(session.scalars(stmt))
