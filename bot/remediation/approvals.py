"""Remediation requests and their lifecycle, persisted as an explicit state machine.

    pending (requested) ──approve × N──▶ approved ──claim──▶ running ──▶ succeeded | failed | refused
        ├──reject (approver)──▶ rejected         │                   (refused: the executor declined,
        ├──reject (requester)─▶ cancelled        │                    nothing changed)
        ├──TTL passed─────────▶ expired          └──policy now forbids it──▶ refused
        └──policy now forbids it (at approval)──▶ refused

Every transition is a conditional ``UPDATE … WHERE status = <from>`` with its audit event in the same
transaction, so of two racing writers exactly one wins. Decisions run in ``bot/kernel/locks.py``
``locked`` (one lock per service and action type: an advisory lock on PostgreSQL, BEGIN IMMEDIATE on
SQLite), so the status read, the approvals counted and the rate limit counted cannot change before the
decision commits. Exactly-once starts at the request: a partial unique
index allows one *open* request (pending/approved/running) per incident and action, so concurrent "Request"
clicks insert one row (the losers get an IntegrityError and are shown the existing request). Authority comes
only from database rows and the policy: the approver list is resolved when the request is made, again from
the policy as it is at each decision (``flow.Remediation.judge``), and stored on the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.kernel import audit
from bot.kernel.db_types import utcnow
from bot.kernel.errors import InvalidState, NotAuthorised, NotFound
from bot.kernel.models import (
    OPEN_REQUEST_STATUSES,
    Approval,
    Incident,
    IncidentStatus,
    RemediationRequest,
    RequestStatus,
)
from bot.remediation.actions import ActionSpec
from bot.remediation.base import ExecutionResult
from bot.remediation.killswitch import is_frozen
from bot.remediation.policy import Rule

TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.EXPIRED,
            RequestStatus.CANCELLED,
            RequestStatus.REFUSED,
        }
    ),
    RequestStatus.APPROVED: frozenset(
        {RequestStatus.RUNNING, RequestStatus.CANCELLED, RequestStatus.REFUSED}
    ),
    RequestStatus.RUNNING: frozenset({RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.REFUSED}),
}

# What a late click is told, in plain words (a second tap on a phone at 3 a.m. is common).
_DONE = {
    RequestStatus.APPROVED.value: "is already approved and about to run",
    RequestStatus.RUNNING.value: "is already running",
    RequestStatus.SUCCEEDED.value: "has already run and succeeded",
    RequestStatus.FAILED.value: "has already run and failed (see the thread)",
    RequestStatus.REJECTED.value: "was rejected",
    RequestStatus.EXPIRED.value: "has expired; request it again",
    RequestStatus.CANCELLED.value: "was cancelled",
    RequestStatus.REFUSED.value: "was refused (see the prompt for why)",
}


def transition(
    session: Session,
    req_id: int,
    frm: RequestStatus,
    to: RequestStatus,
    *,
    actor: str,
    incident_id: int | None,
    detail: Mapping[str, object] | None = None,
    **values: object,
) -> bool:
    """The one way a request changes state: conditional UPDATE + audit event, in the caller's transaction."""
    if to not in TRANSITIONS.get(frm, frozenset()):
        raise InvalidState(f"Request #{req_id}: {frm} → {to} is not a valid transition.")
    stmt = (
        update(RemediationRequest)
        .where(RemediationRequest.id == req_id, RemediationRequest.status == frm.value)
        .values(status=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(session.execute(stmt), "rowcount", 0) != 1:  # a CursorResult: rows the UPDATE matched
        return False
    audit.record(
        session,
        event=f"remediation.{to.value}",
        actor=actor,
        incident_id=incident_id,
        request_id=req_id,
        **{k: v for k, v in values.items() if k == "reason" and v},
        **(detail or {}),
    )
    return True


def open_request(session: Session, *, incident_id: int, action_id: str) -> RemediationRequest | None:
    return session.scalars(
        select(RemediationRequest).where(
            RemediationRequest.incident_id == incident_id,
            RemediationRequest.action_id == action_id,
            RemediationRequest.status.in_([s.value for s in OPEN_REQUEST_STATUSES]),
        )
    ).first()


def runs_last_hour(session: Session, *, service: str | None, action_type: str, now: datetime) -> int:
    """Runs of ``action_type`` for ``service`` that count against its rate limit: started in the last hour,
    or approved and about to start (``claim`` sets ``started_at`` later, in another transaction)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(RemediationRequest)
            .join(Incident)
            .where(
                RemediationRequest.action_type == action_type,
                or_(
                    RemediationRequest.started_at >= now - timedelta(hours=1),
                    RemediationRequest.status == RequestStatus.APPROVED.value,
                ),
                Incident.service.is_(None) if service is None else Incident.service == service,
            )
        )
        or 0
    )


def decision_lock(service: str | None, action_type: str) -> str:
    """The name locked while a request of ``service`` and ``action_type`` is decided (bot/kernel/locks.py)."""
    return f"remediation:{service or ''}:{action_type}"


def create_request(
    session: Session,
    *,
    incident: Incident,
    runbook_id: str,
    action: ActionSpec,
    rule: Rule,
    approvers: list[str],
    user_id: str,
    now: datetime | None = None,
) -> RemediationRequest:
    """Insert the pending request. A concurrent twin makes the flush raise IntegrityError (partial unique
    index); the caller rolls back and shows the existing request."""
    if incident.status == IncidentStatus.RESOLVED.value:
        raise InvalidState(f"Incident #{incident.id} is resolved; nothing to remediate.")
    if is_frozen(session):
        raise InvalidState("Remediation actions are frozen (kill switch); nothing can be requested or run.")
    now = now or utcnow()
    expires_at = now + timedelta(minutes=rule.ttl_minutes)
    req = RemediationRequest(
        incident_id=incident.id,
        runbook_id=runbook_id,
        action_id=action.id,
        action_title=action.title,
        action=action.stored(),
        action_type=action.type,
        approvers=approvers,
        requested_by=user_id,
        status=RequestStatus.PENDING.value,
        approvals_required=rule.approvals_required,
        expires_at=expires_at,
        created_at=now,
        uid=str(uuid.uuid4()),
    )
    session.add(req)
    session.flush()
    audit.record(
        session,
        event="remediation.requested",
        actor=user_id,
        incident_id=incident.id,
        request_id=req.id,
        action=action.id,
        action_type=action.type,
        approvers=approvers,
        approvals_required=rule.approvals_required,
        expires_at=expires_at.isoformat(),
    )
    return req


def approvals_of(session: Session, request_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Approval.user_id)
            .where(Approval.request_id == request_id, Approval.decision == RequestStatus.APPROVED.value)
            .order_by(Approval.id)
        )
    )


def _load_locked(session: Session, request_id: int) -> RemediationRequest:
    # FOR UPDATE serialises deciders of one request on PostgreSQL (SQLite serialises all writers anyway),
    # so N concurrent approvals count each other.
    req = session.get(RemediationRequest, request_id, with_for_update=True, populate_existing=True)
    if req is None:
        raise NotFound(f"Request #{request_id} does not exist.")
    return req


def expire_if_due(session: Session, req: RemediationRequest, now: datetime) -> bool:
    if req.status == RequestStatus.PENDING.value and req.expires_at is not None and req.expires_at <= now:
        return transition(
            session,
            req.id,
            RequestStatus.PENDING,
            RequestStatus.EXPIRED,
            actor="scheduler",
            incident_id=req.incident_id,
            reason="not approved before it expired",
            decided_at=now,
        )
    return False


def decide(
    session: Session,
    *,
    request_id: int,
    user_id: str,
    approve: bool,
    rate_limit_per_hour: int = 0,
    approvers: Sequence[str] | None = None,
    approvals_required: int | None = None,
    now: datetime | None = None,
) -> tuple[RemediationRequest, bool]:
    """Record one decision. Returns (request, became_approved): True for exactly one approver, the one
    whose approval completed the N required; that caller then claims and runs it.

    ``approvers`` and ``approvals_required`` are the policy's as it is now (None: the request's stored
    ones); they replace the stored ones, so the prompt shows whom the decision was made against."""
    now = now or utcnow()
    req = _load_locked(session, request_id)
    if expire_if_due(session, req, now):
        raise InvalidState(f"Request #{request_id} expired at {req.expires_at:%H:%M UTC}; request it again.")
    if req.status != RequestStatus.PENDING.value:
        raise InvalidState(
            f"Request #{request_id} {_DONE.get(req.status, 'is already ' + req.status)}; nothing more to approve."
        )
    if approvers is not None and list(approvers) != list(req.approvers):
        req.approvers = list(approvers)
    if approvals_required is not None and approvals_required != req.approvals_required:
        req.approvals_required = approvals_required
    session.flush()
    incident = session.get(Incident, req.incident_id)
    is_requester = user_id == req.requested_by
    if not approve:
        if not is_requester and user_id not in req.approvers:
            raise NotAuthorised("You are not on the approver list for this action.")
        to = RequestStatus.CANCELLED if is_requester else RequestStatus.REJECTED
        transition(
            session,
            req.id,
            RequestStatus.PENDING,
            to,
            actor=user_id,
            incident_id=req.incident_id,
            decided_at=now,
            reason=f"{to.value} by {user_id}",
        )
        session.add(Approval(request_id=req.id, user_id=user_id, decision=to.value))
        session.flush()
        session.refresh(req)
        return req, False
    if incident is not None and incident.status == IncidentStatus.RESOLVED.value:
        raise InvalidState(
            f"Incident #{req.incident_id} is resolved; request #{request_id} can no longer run."
        )
    if is_requester:
        raise NotAuthorised("You requested this action; someone else on the approver list must approve it.")
    if user_id not in req.approvers:
        raise NotAuthorised("You are not on the approver list for this action.")
    if is_frozen(session):
        raise InvalidState(
            "Remediation actions are frozen (kill switch); approvals are refused until unfrozen."
        )
    done = approvals_of(session, req.id)
    if user_id in done:
        raise InvalidState(f"You already approved request #{request_id}; it needs another approver.")
    session.add(Approval(request_id=req.id, user_id=user_id, decision=RequestStatus.APPROVED.value))
    session.flush()
    audit.record(
        session,
        event="remediation.approval",
        actor=user_id,
        incident_id=req.incident_id,
        request_id=req.id,
        approvals=len(done) + 1,
        required=req.approvals_required,
    )
    became = False
    if len(done) + 1 >= req.approvals_required:
        if (
            rate_limit_per_hour
            and runs_last_hour(
                session, service=incident.service if incident else None, action_type=req.action_type, now=now
            )
            >= rate_limit_per_hour
        ):
            raise InvalidState(
                f"Rate limit: {rate_limit_per_hour} runs of {req.action_type} per hour for this "
                "service already; approve again later."
            )
        became = transition(
            session,
            req.id,
            RequestStatus.PENDING,
            RequestStatus.APPROVED,
            actor=user_id,
            incident_id=req.incident_id,
            decided_at=now,
        )
    session.refresh(req)
    return req, became


def refuse(
    session: Session, *, request_id: int, reason: str, actor: str, now: datetime | None = None
) -> bool:
    """pending or approved → refused (the policy as it is now forbids it); False if it was neither."""
    req = _load_locked(session, request_id)
    if req.status not in (RequestStatus.PENDING.value, RequestStatus.APPROVED.value):
        return False
    return transition(
        session,
        req.id,
        RequestStatus(req.status),
        RequestStatus.REFUSED,
        actor=actor,
        incident_id=req.incident_id,
        decided_at=now or utcnow(),
        reason=reason,
    )


def claim(
    session: Session, *, request_id: int, now: datetime | None = None, forbidden: str | None = None
) -> RemediationRequest | None:
    """approved → running, unless frozen (a frozen kill switch also stops an approved, unstarted request) or
    ``forbidden`` (why the policy as it is now forbids it: approved → refused)."""
    req = session.get(RemediationRequest, request_id)
    if req is None:
        return None
    if forbidden and req.status == RequestStatus.APPROVED.value:
        transition(
            session,
            request_id,
            RequestStatus.APPROVED,
            RequestStatus.REFUSED,
            actor="policy",
            incident_id=req.incident_id,
            reason=forbidden,
        )
        return None
    if is_frozen(session):
        transition(
            session,
            request_id,
            RequestStatus.APPROVED,
            RequestStatus.CANCELLED,
            actor="kill-switch",
            incident_id=req.incident_id,
            reason="actions were frozen before it started",
        )
        return None
    if not transition(
        session,
        request_id,
        RequestStatus.APPROVED,
        RequestStatus.RUNNING,
        actor="executor",
        incident_id=req.incident_id,
        started_at=now or utcnow(),
    ):
        return None
    session.refresh(req)
    return req


def record_result(
    session: Session, *, request_id: int, result: ExecutionResult, actor: str
) -> RemediationRequest:
    to = (
        RequestStatus.SUCCEEDED
        if result.ok
        else RequestStatus.REFUSED
        if result.refused
        else RequestStatus.FAILED
    )
    req = session.get(RemediationRequest, request_id)
    detail = {
        "status_code": result.status_code,
        "duration_ms": round(result.duration_ms, 1),
        "error": result.error,
    }
    if req is None or not transition(
        session,
        request_id,
        RequestStatus.RUNNING,
        to,
        actor=actor,
        incident_id=req.incident_id,
        detail=detail,
        result=result.as_dict(),
        finished_at=utcnow(),
        **({"reason": f"nothing changed: {result.error}"} if result.refused else {}),
    ):
        raise InvalidState(f"Request #{request_id} is not running.")
    session.refresh(req)
    return req


def due_for_expiry(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(RemediationRequest.id).where(
                RemediationRequest.status == RequestStatus.PENDING.value, RemediationRequest.expires_at <= now
            )
        )
    )


# A request row written before prompts went through the outbox may hold this marker while being posted.
POSTING = "posting:"


def is_posted(req: RemediationRequest) -> bool:
    return req.slack_ts is not None and not req.slack_ts.startswith(POSTING)
