"""The kill switch for remediation actions: one row (``remediation_controls`` id 1), persisted so a restart
keeps it. While it is on, nothing is approved or run (bot/remediation/approvals.py checks it in the same
transaction); turning it on or off re-renders every pending prompt and says so in the channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kernel import audit
from bot.kernel import outbox as outbox_rows
from bot.kernel.db_types import utcnow
from bot.kernel.models import RemediationControl, RemediationRequest, RequestStatus
from bot.kernel.outbox import Kind


def is_frozen(session: Session) -> bool:
    row = session.get(RemediationControl, 1)
    return bool(row and row.frozen)


def set_frozen(session: Session, *, frozen: bool, actor: str, reason: str | None = None) -> bool:
    """Returns whether anything changed."""
    row = session.get(RemediationControl, 1)
    if row is None:
        row = RemediationControl(id=1, frozen=False)
        session.add(row)
        session.flush()
    if row.frozen == frozen:
        return False
    row.frozen, row.changed_by, row.changed_at, row.reason = frozen, actor, utcnow(), reason
    audit.record(
        session,
        event="remediation.frozen" if frozen else "remediation.unfrozen",
        actor=actor,
        incident_id=None,
        reason=reason,
    )
    return True


def pending_requests(session: Session) -> list[RemediationRequest]:
    return list(
        session.scalars(
            select(RemediationRequest)
            .where(RemediationRequest.status == RequestStatus.PENDING.value)
            .order_by(RemediationRequest.id)
        )
    )


def freeze(
    session: Session,
    *,
    frozen: bool,
    actor: str,
    reason: str | None = None,
    enqueue: Callable[..., Any] = outbox_rows.enqueue,
) -> bool:
    """The kill switch, in the caller's transaction: set it, re-render every pending prompt (no Approve
    button while frozen) and queue one line for the incident channel. Used by ``Remediation.set_frozen``
    (the slash command) and by ``incident-bot actions freeze`` (which has no Slack client: any running
    replica's outbox workers deliver). Returns whether anything changed."""
    if not set_frozen(session, frozen=frozen, actor=actor, reason=reason):
        return False
    pending = pending_requests(session)
    for req in pending:
        enqueue(
            session,
            kind=Kind.UPDATE_APPROVAL,
            incident_id=req.incident_id,
            coalesce_key=f"approval:{req.id}:prompt",
            payload={"request_id": req.id, "actor": actor},
        )
    enqueue(
        session,
        kind=Kind.FREEZE_NOTICE,
        payload={"frozen": frozen, "actor": actor, "reason": reason, "pending": len(pending)},
    )
    return True
