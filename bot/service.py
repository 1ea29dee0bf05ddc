"""The incident service: the one place where triage, advice, chat, approvals and execution meet.

Every state change happens in one database transaction together with its audit event; chat calls
happen after the commit, so a Slack outage never loses an alert or a decision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import approvals, audit, locks, metrics
from bot.advisor import Advisor
from bot.alerts import Alert
from bot.db import transaction
from bot.db_types import utcnow
from bot.errors import DomainError, InvalidState, NotFound
from bot.executors import WebhookExecutor
from bot.knowledge import KnowledgeBase
from bot.models import (
    AlertPayload,
    DeadLetter,
    Incident,
    IncidentStatus,
    RemediationRequest,
    Suggestion,
)
from bot.notifier import Notifier
from bot.outbox import Kind, Outbox, OutboxMessage
from bot.triage import Triage, TriageOutcome, group_key_for
from retrieval.types import Document

log = logging.getLogger(__name__)


@dataclass
class Services:
    sessions: sessionmaker[Session]
    triage: Triage
    advisor: Advisor
    notifier: Notifier
    executor: WebhookExecutor
    kb: KnowledgeBase
    model_owners: dict[str, list[str]] = field(default_factory=dict)
    outbox: Outbox | None = None  # chat delivery; built from ``sessions`` when not given


class IncidentService:
    def __init__(self, s: Services) -> None:
        self.s = s
        self.outbox = s.outbox or Outbox(s.sessions)
        self.outbox.register(Kind.POST_INCIDENT, self._deliver_post)
        self.outbox.register(Kind.UPDATE_INCIDENT, self._deliver_update)
        self.outbox.register(Kind.THREAD_REPLY, self._deliver_thread_reply)

    def _chat(self, what: str, call: Callable[[], Any]) -> Any:
        """A chat call after a committed change: its failure is logged, never undoes or blocks the change."""
        try:
            return call()
        except Exception:
            log.exception("chat call failed: %s", what)
            return None

    # ---- alerts in -------------------------------------------------------------------------------
    def accept(self, *, source: str, body: Any, alerts: list[Alert]) -> TriageOutcome:
        """Store and triage one batch; the chat messages it causes commit with it (outbox).

        Grouping and dedup are decided in the database: advisory locks on the batch's group keys and
        services (PostgreSQL) are held until the commit, so a concurrent delivery of the same group to any
        replica waits and then sees this batch's incident (bot/locks.py)."""
        dialect = self.s.sessions.kw["bind"].dialect.name
        with locks.process_lock(dialect), transaction(self.s.sessions) as session:
            payload = AlertPayload(source=source, body=storable(body))
            session.add(payload)
            session.flush()
            locks.xact_lock(session, batch_lock_names(alerts))
            outcome = self.s.triage.ingest(session=session, alerts=alerts, payload_id=payload.id)
            self._enqueue_outcome(session, outcome)
        metrics.ALERTS_RECEIVED.labels(source=source, outcome="accepted").inc(len(alerts) - outcome.duplicates)
        if outcome.duplicates:
            metrics.ALERTS_RECEIVED.labels(source=source, outcome="duplicate").inc(outcome.duplicates)
        if outcome.created:
            metrics.INCIDENTS_OPENED.labels(source=source).inc(len(outcome.created))
        return outcome

    def _enqueue_outcome(self, session: Session, outcome: TriageOutcome) -> None:
        for incident_id in outcome.created:
            self.enqueue_post(session, incident_id)
        for incident_id in outcome.incident_ids:
            if incident_id not in outcome.created:
                self.enqueue_update(session, incident_id)

    # ---- chat through the outbox ---------------------------------------------------------------------
    def enqueue(self, session: Session, **kw: Any) -> OutboxMessage | None:
        """Queue a chat message in ``session``'s transaction (see bot/outbox.py): it is sent after the
        commit by a worker in any replica, retried until Slack takes it, in order per incident."""
        return self.outbox.enqueue(session, **kw)

    def enqueue_post(self, session: Session, incident_id: int) -> None:
        self.enqueue(session, kind=Kind.POST_INCIDENT, incident_id=incident_id,
                     dedup_key=f"post_incident:{incident_id}")

    def enqueue_update(self, session: Session, incident_id: int, *, advise: bool = False) -> None:
        self.enqueue(session, kind=Kind.UPDATE_INCIDENT, incident_id=incident_id,
                     coalesce_key=f"incident:{incident_id}:message", payload={"advise": True} if advise else None)

    def enqueue_thread_reply(self, session: Session, incident_id: int, text: str) -> None:
        self.enqueue(session, kind=Kind.THREAD_REPLY, incident_id=incident_id, payload={"text": text})

    def _deliver_post(self, msg: OutboxMessage) -> Callable[[Session], None] | None:
        assert msg.incident_id is not None
        with transaction(self.s.sessions) as session:
            incident = _incident(session, msg.incident_id)
            if incident.slack_ts is not None or incident.status == IncidentStatus.RESOLVED.value:
                return None  # already posted, or resolved before it was ever posted: nothing to tell
            view = self.s.advisor.advise(session, incident)
        self.outbox.renew(msg)  # the render may have been slow: never post on an expired claim
        channel, ts = self.s.notifier.post_incident(view)

        def record(session: Session) -> None:  # same transaction as marking the outbox row done
            row = _incident(session, msg.incident_id or 0)
            row.slack_channel, row.slack_ts = channel, ts
            audit.record(session, event="incident.posted", actor="bot", incident_id=row.id, channel=channel)
        return record

    def _deliver_update(self, msg: OutboxMessage) -> None:
        assert msg.incident_id is not None
        with transaction(self.s.sessions) as session:
            incident = _incident(session, msg.incident_id)
            if incident.slack_ts is None:
                return None  # never posted (resolved first): nothing to update
            advise = bool((msg.payload or {}).get("advise"))
            view = self.s.advisor.advise(session, incident) if advise else self.s.advisor.stored_view(session, incident)
        self.s.notifier.update_incident(view)
        return None

    def _deliver_thread_reply(self, msg: OutboxMessage) -> None:
        assert msg.incident_id is not None
        with self.s.sessions() as session:
            incident = _incident(session, msg.incident_id)
        if incident.slack_ts is not None:
            self.s.notifier.post_in_thread(incident, str((msg.payload or {}).get("text", "")))
        return None

    def dead_letter(self, *, source: str, raw: bytes | str, reason: str, content_type: str | None) -> int:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.replace("\x00", "\\u0000")  # PostgreSQL text cannot hold NUL
        with transaction(self.s.sessions) as session:
            row = DeadLetter(source=source, body=text, reason=reason[:2000], content_type=content_type)
            session.add(row)
            session.flush()
            return row.id

    def notify(self, outcome: TriageOutcome) -> None:
        """The batch's messages are already in the outbox (committed with it): wake this process's
        workers. Never calls Slack, so a slow Slack cannot hold a request thread."""
        self.outbox.wake()

    def publish(self, incident_id: int) -> None:
        """Queue the incident's first post, or an update of its message if it was posted."""
        with transaction(self.s.sessions) as session:
            if _incident(session, incident_id).slack_ts is None:
                self.enqueue_post(session, incident_id)
            else:
                self.enqueue_update(session, incident_id)
        self.outbox.wake()

    def retry_unposted(self) -> None:
        """Scheduler job (safety net): queue a first post for unposted incidents that have none queued,
        e.g. incidents created before the outbox existed. Delivery retries are the outbox's own job."""
        with transaction(self.s.sessions) as session:
            for incident_id in self.unposted_incident_ids():
                self.enqueue_post(session, incident_id)
        self.outbox.wake()

    def unposted_incident_ids(self) -> list[int]:
        with self.s.sessions() as session:
            return list(session.scalars(select(Incident.id).where(
                Incident.slack_ts.is_(None), Incident.status != IncidentStatus.RESOLVED.value)))

    # ---- operations ---------------------------------------------------------------------------------
    def readiness(self) -> dict[str, str]:
        """What ``/readyz`` reports: database reachable, schema at the migrations' head, model loaded."""
        from bot.db import schema_status

        checks: dict[str, str] = {}
        try:
            checks["database"] = "ok"
            checks["migrations"] = schema_status(self.s.sessions.kw["bind"])
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown"
        loaded = getattr(self.s.kb.encoder, "_model", True) is not None
        checks["model"] = "ok" if loaded else "not loaded yet"
        return checks

    # ---- people ------------------------------------------------------------------------------------
    def acknowledge(self, *, incident_id: int, user_id: str) -> None:
        with transaction(self.s.sessions) as session:
            incident = _incident(session, incident_id)
            if incident.status != IncidentStatus.OPEN.value:
                raise InvalidState(f"Incident #{incident_id} is already {incident.status}.")
            incident.status = IncidentStatus.ACKNOWLEDGED.value
            incident.acknowledged_at, incident.acknowledged_by = utcnow(), user_id
            audit.record(session, event="incident.acknowledged", actor=user_id, incident_id=incident_id)
            self.enqueue_update(session, incident_id)
        self.outbox.wake()

    def resolve(self, *, incident_id: int, user_id: str, rca_note: str | None = None) -> None:
        """Resolve by hand; an RCA note goes into the knowledge base for next time."""
        note = (rca_note or "").strip() or None
        with transaction(self.s.sessions) as session:
            incident = _incident(session, incident_id)
            if incident.status == IncidentStatus.RESOLVED.value:
                raise InvalidState(f"Incident #{incident_id} is already resolved.")
            incident.status = IncidentStatus.RESOLVED.value
            incident.resolved_at, incident.resolved_by = utcnow(), user_id
            incident.rca_note = note
            audit.record(session, event="incident.resolved", actor=user_id, incident_id=incident_id,
                         with_rca=note is not None)
            doc = _rca_document(incident, note) if note else None
            self.enqueue_update(session, incident_id)
        if doc is not None:
            self.s.kb.upsert([doc], source="rca")
            with transaction(self.s.sessions) as session:
                audit.record(session, event="knowledge.learned", actor=user_id, incident_id=incident_id,
                             document=doc.id)
        self.outbox.wake()

    def request_action(self, *, incident_id: int, action_id: str, user_id: str) -> int:
        with transaction(self.s.sessions) as session:
            req, _created = approvals.request_action(session, incident_id=incident_id, action_id=action_id,
                                                     user_id=user_id, model_owners=self.s.model_owners)
            incident = _incident(session, incident_id)
        ts = self.s.notifier.post_approval_prompt(req, incident)  # if this fails, a new click re-posts it
        with transaction(self.s.sessions) as session:
            row = session.get(RemediationRequest, req.id)
            assert row is not None
            row.slack_ts = ts
        return req.id

    def decide(self, *, request_id: int, user_id: str, approve: bool) -> RemediationRequest:
        """Approve (and run) or reject. Raises DomainError with a message for the clicking user."""
        try:
            with transaction(self.s.sessions) as session:
                req = approvals.decide(session, request_id=request_id, user_id=user_id, approve=approve)
                incident = _incident(session, req.incident_id)
        except DomainError as exc:
            self._audit_denied(request_id, user_id, str(exc))
            raise
        if approve:
            # Run first: no chat call stands between a committed approval and its execution.
            result = self.s.executor.run(
                action=req.action, idempotency_key=f"incident-bot-request-{req.id}",
                payload={"request_id": req.id, "incident_id": req.incident_id, "action": req.action_id,
                         "params": req.action.get("params", {}), "requested_by": req.requested_by,
                         "approved_by": user_id, "incident_title": incident.title,
                         "service": incident.service, "model": incident.model_name},
            )
            with transaction(self.s.sessions) as session:
                req = approvals.record_result(session, request_id=req.id, result=result, actor="executor")
            metrics.ACTION_RUNS.labels(outcome="succeeded" if result.ok else "failed").inc()
            outcome = "succeeded" if result.ok else f"FAILED ({result.error})"
            self._chat("thread result", lambda: self.s.notifier.post_in_thread(
                incident, f"Action '{req.action_title}' {outcome} in {result.duration_ms:.0f} ms "
                          f"(request #{req.id}, approved by {user_id})."))
        self._chat("approval update", lambda: self.s.notifier.update_approval(req, incident, actor=user_id))
        return req

    def feedback(self, *, incident_id: int, kind: str, target_id: str, user_id: str, helpful: bool) -> None:
        with transaction(self.s.sessions) as session:
            _incident(session, incident_id)
            shown = session.scalars(select(Suggestion).where(
                Suggestion.incident_id == incident_id, Suggestion.target_kind == kind,
                Suggestion.target_id == target_id)).first()
            if shown is None:
                raise NotFound("That suggestion was not made for this incident.")
            self.s.kb.record_feedback(incident_id, kind, target_id, user_id, helpful, dict(shown.features),
                                      session=session)
            audit.record(session, event="feedback", actor=user_id, incident_id=incident_id,
                         kind=kind, target=target_id, helpful=helpful)
            if not helpful:  # replace the unhelpful match in the message now, not at the next update
                self.enqueue_update(session, incident_id, advise=True)
        self.outbox.wake()

    def _audit_denied(self, request_id: int, user_id: str, reason: str) -> None:
        with transaction(self.s.sessions) as session:
            req = session.get(RemediationRequest, request_id)
            audit.record(session, event="remediation.denied", actor=user_id,
                         incident_id=req.incident_id if req else None,
                         request_id=req.id if req else None, reason=reason)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(obj: Any) -> Any:
    """The payload as received, except characters no database can store (NUL, lone surrogates) → U+FFFD."""
    if isinstance(obj, str):
        return _UNSTORABLE.sub("\ufffd", obj)
    if isinstance(obj, list):
        return [storable(v) for v in obj]
    if isinstance(obj, dict):
        return {storable(k): storable(v) for k, v in obj.items()}
    return obj


def batch_lock_names(alerts: list[Alert]) -> list[str]:
    """What a batch must hold to triage without a concurrent batch (any replica) splitting a group:
    its group keys, and its services (grouping also looks across a service's open incidents)."""
    names = {f"group:{group_key_for(a)}" for a in alerts}
    names |= {f"service:{a.service or '-'}" for a in alerts}
    return sorted(names)


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"Incident #{incident_id} does not exist.")
    return incident


def _rca_document(incident: Incident, note: str) -> Document:
    alerts = ", ".join(sorted({a.name for a in incident.alerts}))
    return Document(
        id=f"incident-{incident.id}", title=incident.title, service=incident.service,
        text=f"{incident.title}\nAlerts: {alerts}\n\n{note}", root_cause=note, resolution=None,
        created_at=incident.created_at, url=None,
        meta={"source": "rca", "alert_name": incident.alerts[0].name if incident.alerts else None,
              "model": incident.model_name, "incident_id": incident.id},
    )

