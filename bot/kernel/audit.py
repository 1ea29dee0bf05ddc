"""Append-only audit trail, written in the same transaction as the change it records."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from bot.kernel.models import AuditEvent


def record(
    session: Session,
    *,
    event: str,
    actor: str,
    incident_id: int | None = None,
    request_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    row = AuditEvent(event=event, actor=actor, incident_id=incident_id, request_id=request_id, detail=detail)
    session.add(row)
    return row


class Batch:
    """Audit rows collected while a batch is triaged and written with one multi-row INSERT (an ORM
    flush inserts them one statement per row on SQLite, which cannot return batched ids in order).

    Rows are written in the order they were added; the caller calls ``write`` before anything else in
    the transaction may add audit rows through ``record``, so ids keep the order events happened in."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(
        self,
        *,
        event: str,
        actor: str,
        incident_id: int | None = None,
        request_id: int | None = None,
        **detail: Any,
    ) -> None:
        self.rows.append(
            {
                "event": event,
                "actor": actor,
                "incident_id": incident_id,
                "request_id": request_id,
                "detail": detail,
            }
        )

    def write(self, session: Session) -> None:
        if self.rows:
            session.connection().execute(insert(cast(Table, AuditEvent.__table__)), self.rows)
            self.rows = []


def trail(session: Session, *, incident_id: int) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.incident_id == incident_id).order_by(AuditEvent.id)
    return list(session.scalars(stmt))
