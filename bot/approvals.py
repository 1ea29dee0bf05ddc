"""Remediation requests and their approval state machine.

pending ──approve──▶ approved ──executor──▶ succeeded | failed
   └─────reject───▶ rejected

Authority comes only from database rows: the approver list is resolved from the runbook stored in
the database when the request is made, and a decision is taken by a conditional UPDATE on
``status = 'pending'``, so a double click or a retried delivery decides (and runs) at most once.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import audit
from bot.db_types import utcnow
from bot.errors import InvalidState, NotAuthorised, NotFound
from bot.executors import ExecutionResult
from bot.models import Approval, Incident, IncidentStatus, RemediationRequest, RequestStatus
from bot.runbook_store import get_runbook

MODEL_OWNER = "model-owner"
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def resolve_approvers(approvers: list[str], incident: Incident, model_owners: dict[str, list[str]]) -> list[str]:
    """Turn the runbook's approver list into Slack user ids. ``model-owner`` means the owners configured
    for the incident's model (MODEL_OWNERS), never an owner named in an alert payload."""
    out: list[str] = []
    for a in approvers:
        if a == MODEL_OWNER:
            out.extend(u for u in model_owners.get(incident.model_name or "", []) if _USER_ID.fullmatch(u))
        elif _USER_ID.fullmatch(a):
            out.append(a)
    return list(dict.fromkeys(out))


def request_action(session: Session, *, incident_id: int, action_id: str, user_id: str,
                   model_owners: dict[str, list[str]]) -> tuple[RemediationRequest, bool]:
    """Create a pending request; returns (request, created). A pending request whose prompt never reached
    chat (no ``slack_ts``) is returned again so the caller can re-post it."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"Incident #{incident_id} does not exist.")
    if incident.status == IncidentStatus.RESOLVED.value:
        raise InvalidState(f"Incident #{incident_id} is resolved; nothing to remediate.")
    runbook = get_runbook(session, incident.runbook_id) if incident.runbook_id else None
    action = runbook.action(action_id) if runbook else None
    if runbook is None or action is None:
        raise NotFound(f"Action '{action_id}' is not offered for incident #{incident_id}.")
    open_request = session.scalars(select(RemediationRequest).where(
        RemediationRequest.incident_id == incident_id, RemediationRequest.action_id == action_id,
        RemediationRequest.status.in_([RequestStatus.PENDING.value, RequestStatus.APPROVED.value]),
    )).first()
    if open_request is not None and open_request.status == RequestStatus.PENDING.value \
            and open_request.slack_ts is None:
        return open_request, False
    if open_request is not None:
        raise InvalidState(f"'{action.title}' is already requested (request #{open_request.id}, "
                           f"{open_request.status}).")
    approvers = resolve_approvers(action.approvers, incident, model_owners)
    req = RemediationRequest(
        incident_id=incident_id, runbook_id=runbook.id, action_id=action.id, action_title=action.title,
        action={"id": action.id, "type": action.type, "url": action.url, "params": action.params},
        approvers=approvers, requested_by=user_id, status=RequestStatus.PENDING.value,
    )
    session.add(req)
    session.flush()
    audit.record(session, event="remediation.requested", actor=user_id, incident_id=incident_id,
                 request_id=req.id, action=action.id, approvers=approvers)
    return req, True


def decide(session: Session, *, request_id: int, user_id: str, approve: bool,
           now: datetime | None = None) -> RemediationRequest:
    """Approve or reject; raises a DomainError naming why when the user may not, or it's already decided."""
    req = session.get(RemediationRequest, request_id)
    if req is None:
        raise NotFound(f"Request #{request_id} does not exist.")
    if req.status != RequestStatus.PENDING.value:
        raise InvalidState(f"Request #{request_id} is already {req.status}.")
    incident = session.get(Incident, req.incident_id)
    if approve and incident is not None and incident.status == IncidentStatus.RESOLVED.value:
        raise InvalidState(f"Incident #{req.incident_id} is resolved; request #{request_id} can no longer run.")
    is_requester = user_id == req.requested_by
    if approve and is_requester:
        raise NotAuthorised("You requested this action; someone else on the approver list must approve it.")
    if user_id not in req.approvers and not (is_requester and not approve):
        raise NotAuthorised("You are not on the approver list for this action.")
    new_status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    won = session.execute(
        update(RemediationRequest)
        .where(RemediationRequest.id == request_id, RemediationRequest.status == RequestStatus.PENDING.value)
        .values(status=new_status.value, decided_at=now or utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise InvalidState(f"Request #{request_id} was already decided.")
    session.add(Approval(request_id=request_id, user_id=user_id, decision=new_status.value))
    audit.record(session, event=f"remediation.{new_status.value}", actor=user_id,
                 incident_id=req.incident_id, request_id=request_id)
    session.flush()
    session.refresh(req)
    return req


def record_result(session: Session, *, request_id: int, result: ExecutionResult, actor: str) -> RemediationRequest:
    req = session.get(RemediationRequest, request_id)
    if req is None or req.status != RequestStatus.APPROVED.value:
        raise InvalidState(f"Request #{request_id} is not awaiting a result.")
    req.status = (RequestStatus.SUCCEEDED if result.ok else RequestStatus.FAILED).value
    req.result = result.as_dict()
    req.finished_at = utcnow()
    audit.record(session, event=f"remediation.{req.status}", actor=actor, incident_id=req.incident_id,
                 request_id=request_id, status_code=result.status_code,
                 duration_ms=round(result.duration_ms, 1), error=result.error)
    return req

