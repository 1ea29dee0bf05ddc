"""The incident service: the one place where triage, advice, chat, approvals and execution meet.

Every state change happens in one database transaction together with its audit event; chat calls
happen after the commit, so a Slack outage never loses an alert or a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.knowledge import KnowledgeBase
from bot.advice.messages import IncidentMessages
from bot.intake.alerts import Alert
from bot.intake.changes import Change, with_registrations
from bot.intake.changes import record as record_change
from bot.intake.model_registry import Registrations
from bot.intake.payloads import RejectedAlert, dead_letter_rejected, storable, storable_text
from bot.kernel import audit, locks, metrics
from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.errors import InvalidState, NotAuthorised, NotFound
from bot.kernel.models import (
    AlertPayload,
    DeadLetter,
    Incident,
    IncidentStatus,
    RemediationRequest,
    Suggestion,
    get_incident,
)
from bot.kernel.outbox import Outbox
from bot.remediation.flow import Remediation
from bot.reports.home import HomeData, home_data
from bot.reports.kpi import Daily, KpiReport, daily, last
from bot.triage.engine import Triage
from bot.triage.policy import TriageOutcome, group_key_for
from retrieval.types import Document

log = logging.getLogger(__name__)


class IncidentService:
    """The use cases the edge calls, and the read queries it needs: no listener or route opens a session."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        triage: Triage,
        messages: IncidentMessages,
        remediation: Remediation,
        kb: KnowledgeBase,
        outbox: Outbox,
        priority_of: Callable[[Incident], int] | None = None,
        registrations: Registrations | None = None,
    ) -> None:
        self._sessions = sessions
        self._registrations = registrations  # a promotion's registration time (MLflow), when configured
        self._triage = triage
        self._messages = messages
        self._remediation = remediation
        self._kb = kb
        self.outbox = outbox
        self._priority_of = priority_of  # the catalog's priority (bot/catalog): orders the App Home
        dialect = sessions.kw["bind"].dialect.name
        self._group_commit = locks.GroupCommit(sessions) if dialect != "postgresql" else None

    # ---- alerts in -------------------------------------------------------------------------------
    def accept(
        self, *, source: str, body: Any, alerts: list[Alert], rejected: Sequence[RejectedAlert] = ()
    ) -> TriageOutcome:
        """Store and triage one batch; the chat messages it causes commit with it (outbox).

        Grouping and dedup are decided in the database: advisory locks on the batch's group keys and
        services (PostgreSQL) are held until the commit, so a concurrent delivery of the same group to any
        replica waits and then sees this batch's incident (bot/kernel/locks.py)."""
        # Work that needs no database is done before the lock (the payload as stored, the lock names).
        stored, names = storable(body), batch_lock_names(alerts)

        def store(session: Session) -> TriageOutcome:
            payload = AlertPayload(source=source, body=stored)
            session.add(payload)
            session.flush()
            dead_letter_rejected(
                session, source, rejected, payload.id
            )  # the batch's invalid items, same transaction
            locks.xact_lock(session, names)
            outcome = self._triage.ingest(session=session, alerts=alerts, payload_id=payload.id)
            outcome.chat_due = self._enqueue_outcome(session, outcome)
            return outcome

        if self._group_commit is not None:  # SQLite: batches waiting for the lock share one commit
            outcome = self._group_commit.run(store)
        else:
            with transaction(self._sessions) as session:
                outcome = store(session)
        metrics.ALERTS_RECEIVED.labels(source=source, outcome="accepted").inc(
            len(alerts) - outcome.duplicates
        )
        if outcome.duplicates:
            metrics.ALERTS_RECEIVED.labels(source=source, outcome="duplicate").inc(outcome.duplicates)
        if outcome.created:
            metrics.INCIDENTS_OPENED.labels(source=source).inc(len(outcome.created))
        for incident_id in outcome.created:  # committed: each opened incident is one INFO line
            log.info("incident #%d opened from %s", incident_id, source, extra={"incident_id": incident_id})
        return outcome

    def _enqueue_outcome(self, session: Session, outcome: TriageOutcome) -> bool:
        """Queue the batch's advice, posts and updates; True when one of them is due now (worth waking a
        worker: an update coalescing into a pending, not yet due row is found by the workers' polling)."""
        rows = [row for i in outcome.created for row in self._messages.queue_new(session, i)]
        rows += [
            self._messages.queue_update(session, i) for i in outcome.incident_ids if i not in outcome.created
        ]
        rows += [self._messages.queue_reopen_notice(session, r) for r in outcome.reopened]
        now = utcnow()
        return any(row is not None and row.next_attempt_at <= now for row in rows)

    def record_changes(self, *, source: str, body: Any, changes: list[Change]) -> list[int]:
        """Store change events (deploys, flags, model promotions): never incidents. Returns their ids.
        A promotion's registration time is found first (a read, and maybe MLflow), outside the write."""
        with self._sessions() as session:
            changes = with_registrations(session, changes, self._registrations)
        with transaction(self._sessions) as session:
            session.add(AlertPayload(source=source, body=storable(body)))
            rows = [
                record_change(session, replace(change, meta=storable(change.meta)), source=source)
                for change in changes
            ]
            return [row.id for row in rows]

    def dead_letter(self, *, source: str, raw: bytes | str, reason: str, content_type: str | None) -> int:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.replace("\x00", "\\u0000")  # PostgreSQL text cannot hold NUL
        text = storable_text(text)
        source, reason = storable_text(source)[:64], storable_text(reason)[:2000]
        content_type = None if content_type is None else storable_text(content_type)[:128]
        with transaction(self._sessions) as session:
            row = DeadLetter(source=source, body=text, reason=reason, content_type=content_type)
            session.add(row)
            session.flush()
            return row.id

    def notify(self, outcome: TriageOutcome) -> None:
        """The batch's messages are already in the outbox (committed with it): wake this process's
        workers (when one of them is due now; the others are found by polling when due). Never calls
        Slack, so a slow Slack cannot hold a request thread."""
        if outcome.chat_due:
            self.outbox.wake()

    def retry_unposted(self) -> None:
        """Scheduler job (safety net): queue a first post for unposted incidents that have none queued,
        e.g. incidents created before the outbox existed. Delivery retries are the outbox's own job."""
        with transaction(self._sessions) as session:
            for incident_id in self.unposted_incident_ids():
                self._messages.queue_new(session, incident_id)
        self.outbox.wake()

    def unposted_incident_ids(self) -> list[int]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Incident.id).where(
                        Incident.slack_ts.is_(None), Incident.status != IncidentStatus.RESOLVED.value
                    )
                )
            )

    # ---- operations ---------------------------------------------------------------------------------
    def readiness(self) -> dict[str, str]:
        """What ``/readyz`` reports: database reachable, schema at the migrations' head, model loaded."""
        from bot.kernel.db import schema_status

        checks: dict[str, str] = {}
        try:
            checks["database"] = "ok"
            checks["migrations"] = schema_status(self._sessions.kw["bind"])
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown"
        loaded = getattr(self._kb.encoder, "_model", True) is not None
        checks["model"] = "ok" if loaded else "not loaded yet"
        return checks

    # ---- people ------------------------------------------------------------------------------------
    def acknowledge(self, *, incident_id: int, user_id: str) -> None:
        with transaction(self._sessions) as session:
            incident = get_incident(session, incident_id)
            if incident.status != IncidentStatus.OPEN.value:
                raise InvalidState(f"Incident #{incident_id} is already {incident.status}.")
            incident.status = IncidentStatus.ACKNOWLEDGED.value
            incident.acknowledged_at, incident.acknowledged_by = utcnow(), user_id
            audit.record(session, event="incident.acknowledged", actor=user_id, incident_id=incident_id)
            self._messages.queue_update(session, incident_id)
        self.outbox.wake()

    def resolve(self, *, incident_id: int, user_id: str, rca_note: str | None = None) -> None:
        """Resolve by hand; an RCA note goes into the knowledge base for next time."""
        note = (rca_note or "").strip() or None
        with transaction(self._sessions) as session:
            incident = get_incident(session, incident_id)
            if incident.status == IncidentStatus.RESOLVED.value:
                raise InvalidState(f"Incident #{incident_id} is already resolved.")
            incident.status = IncidentStatus.RESOLVED.value
            incident.resolved_at, incident.resolved_by = utcnow(), user_id
            incident.rca_note = note
            audit.record(
                session,
                event="incident.resolved",
                actor=user_id,
                incident_id=incident_id,
                with_rca=note is not None,
            )
            doc = _rca_document(incident, note) if note else None
            self._messages.queue_update(session, incident_id)
        if doc is not None:
            self._kb.upsert([doc], source="rca")
            with transaction(self._sessions) as session:
                audit.record(
                    session,
                    event="knowledge.learned",
                    actor=user_id,
                    incident_id=incident_id,
                    document=doc.id,
                )
        self.outbox.wake()

    def incident_for_modal(self, *, incident_id: int, resolving: bool) -> Incident:
        """The incident a modal is about, or a DomainError saying why the modal is stale."""
        with self._sessions() as session:
            incident = get_incident(session, incident_id)
        if resolving and incident.status == IncidentStatus.RESOLVED.value:
            raise InvalidState(
                f"Incident #{incident_id} was already resolved by "
                f"{incident.resolved_by or 'its source'}; close this and use “Add RCA note”."
            )
        return incident

    def add_rca_note(self, *, incident_id: int, user_id: str, note: str) -> None:
        """An RCA note for an incident already resolved (e.g. by its source); it goes into the knowledge base."""
        note = note.strip()
        if not note:
            raise InvalidState("The RCA note is empty.")
        with transaction(self._sessions) as session:
            incident = get_incident(session, incident_id)
            if incident.status != IncidentStatus.RESOLVED.value:
                raise InvalidState(f"Incident #{incident_id} is not resolved yet; resolve it with the note.")
            incident.rca_note = note
            audit.record(session, event="incident.rca_note", actor=user_id, incident_id=incident_id)
            doc = _rca_document(incident, note)
        self._kb.upsert([doc], source="rca")
        with transaction(self._sessions) as session:
            audit.record(
                session, event="knowledge.learned", actor=user_id, incident_id=incident_id, document=doc.id
            )
            self._messages.queue_update(session, incident_id)
        self.outbox.wake()

    def request_action(self, *, incident_id: int, action_id: str, user_id: str) -> int:
        """One open request per incident and action, however many people click at once."""
        return self._remediation.request(incident_id=incident_id, action_id=action_id, user_id=user_id)

    def decide(self, *, request_id: int, user_id: str, approve: bool) -> RemediationRequest:
        """Approve (the approval completing N-of-M runs it once) or reject. Raises DomainError for the user."""
        return self._remediation.decide(request_id=request_id, user_id=user_id, approve=approve)

    def expire_requests(self) -> list[int]:
        """Scheduler job: pending requests past their TTL expire; their prompts lose the buttons."""
        return self._remediation.expire_due()

    def set_actions_frozen(self, *, frozen: bool, user_id: str) -> bool:
        """The kill switch from Slack: only approvers (anyone on any policy approver list) may flip it."""
        if not self._remediation.is_any_approver(user_id):
            raise NotAuthorised(
                "Only approvers named in the policy may freeze or unfreeze remediation actions."
            )
        return self._remediation.set_frozen(frozen=frozen, actor=user_id)

    def feedback(self, *, incident_id: int, kind: str, target_id: str, user_id: str, helpful: bool) -> None:
        with transaction(self._sessions) as session:
            get_incident(session, incident_id)
            shown = session.scalars(
                select(Suggestion).where(
                    Suggestion.incident_id == incident_id,
                    Suggestion.target_kind == kind,
                    Suggestion.target_id == target_id,
                )
            ).first()
            if shown is None:
                raise NotFound("That suggestion was not made for this incident.")
            self._kb.record_feedback(
                incident_id, kind, target_id, user_id, helpful, dict(shown.features), session=session
            )
            audit.record(
                session,
                event="feedback",
                actor=user_id,
                incident_id=incident_id,
                kind=kind,
                target=target_id,
                helpful=helpful,
            )
            if not helpful:  # replace the unhelpful match in the message now, not at the next update
                self._messages.queue_advice(session, incident_id)
        self.outbox.wake()

    # ---- read queries for the edge (list, show, App Home, KPIs) ----------------------------------------------
    def open_incidents(self, *, limit: int = 20) -> list[IncidentSummary]:
        """The newest incidents that are not resolved, newest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(Incident)
                .where(Incident.status != IncidentStatus.RESOLVED.value)
                .order_by(Incident.id.desc())
                .limit(limit)
            )
            return [IncidentSummary.of(i) for i in rows]

    def incident_summary(self, incident_id: int) -> IncidentSummary | None:
        with self._sessions() as session:
            incident = session.get(Incident, incident_id)
            return IncidentSummary.of(incident) if incident is not None else None

    def home(self, *, user_id: str) -> HomeData:
        """What the App Home shows ``user_id``: open incidents, approvals waiting for them, this week's KPIs."""
        with self._sessions() as session:
            return home_data(session, user_id=user_id, now=utcnow(), priority_of=self._priority_of)

    def kpis(self, *, period: timedelta, service: str | None = None) -> tuple[KpiReport, Daily]:
        """The KPI report for the period before now (per service when no service is given) and its daily series."""
        with self._sessions() as session:
            rep = last(session, period=period, service=service, per_service=service is None)
            return rep, daily(session, since=rep.since, until=rep.until, service=service)


@dataclass(frozen=True)
class IncidentSummary:
    """One incident as a listing shows it (a plain value: no session behind it)."""

    id: int
    title: str
    severity: str
    status: str
    service: str | None
    alerts: int
    created_at: datetime

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        return cls(
            incident.id,
            incident.title,
            incident.severity,
            incident.status,
            incident.service,
            len(incident.alerts),
            incident.created_at,
        )


def batch_lock_names(alerts: list[Alert]) -> list[str]:
    """What a batch must hold to triage without a concurrent batch (any replica) splitting a group:
    its group keys, and its services (grouping also looks across a service's open incidents)."""
    names = {f"group:{group_key_for(a)}" for a in alerts}
    names |= {f"service:{a.service or '-'}" for a in alerts}
    return sorted(names)


def _rca_document(incident: Incident, note: str) -> Document:
    alerts = ", ".join(sorted({a.name for a in incident.alerts}))
    return Document(
        id=f"incident-{incident.id}",
        title=incident.title,
        service=incident.service,
        text=f"{incident.title}\nAlerts: {alerts}\n\n{note}",
        root_cause=note,
        resolution=None,
        created_at=incident.created_at,
        url=None,
        meta={
            "source": "rca",
            "alert_name": incident.alerts[0].name if incident.alerts else None,
            "model": incident.model_name,
            "incident_id": incident.id,
        },
    )
