"""Scheduler jobs: the weekly KPI digest, the acknowledgement reminder and escalation, the RCA-note
reminder. Each is a plain function of ``now`` (tests call them with a fixed one) and is off when its
setting is 0 / empty. A reminder with nobody to mention (no ``ONCALL_MENTION``, no ``ESCALATION_MENTION``; an
RCA reminder for an incident the source resolved) is skipped rather than posted to nobody; `incident-bot
doctor` (and `serve`'s log) warn when ``ONCALL_MENTION`` is empty while reminders are on.

Each step is claimed with an audit event (``reminder.ack``, ``reminder.escalation``, ``reminder.rca``;
``digest.weekly`` per ISO week) and its message queued in the outbox (bot/kernel/outbox.py, kind ``job_message``)
in the same transaction: a step is claimed once across replicas, and its message is delivered once Slack
takes it, however long Slack is down (reminders in order after the incident's own messages). The message
is rendered at delivery from the database (the digest from the period its payload names).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog.lookup import ServiceCatalog
from bot.catalog.priority import TIMING
from bot.kernel import audit
from bot.kernel.config import SLACK_ID, Settings
from bot.kernel.db import transaction
from bot.kernel.models import AuditEvent, Incident, IncidentStatus
from bot.kernel.outbox import Kind, Outbox, OutboxMessage
from bot.reports.kpi import CHANGE_KIND, KpiReport, report, top_recurring

log = logging.getLogger(__name__)
ACTOR = "scheduler"
ACK_REMINDER, ESCALATION, RCA_REMINDER, DIGEST = (
    "reminder.ack",
    "reminder.escalation",
    "reminder.rca",
    "digest.weekly",
)
LOOKBACK = timedelta(days=7)  # older incidents are not reminded about (no burst when a job is first enabled)
_MENTIONABLE = SLACK_ID  # user group (S...) or user (U.../W...) ids, as Settings validates them


@dataclass
class StaleIncident:
    id: int
    severity: str
    title: str
    age_hours: float


class JobChat(Protocol):
    """What the jobs say; handlers/slack/jobs.py renders it for Slack."""

    def ack_reminder(
        self, incident: Incident, *, mention: list[str], minutes: int, escalation: bool
    ) -> None: ...

    def rca_reminder(self, incident: Incident, *, mention: list[str]) -> None: ...

    def digest(
        self,
        *,
        current: KpiReport,
        previous: KpiReport,
        top: list[tuple[str, str, int]],
        stale: list[StaleIncident],
        stale_hours: int,
    ) -> None: ...


def mentionable(ids: list[str]) -> list[str]:
    return [i for i in ids if _MENTIONABLE.fullmatch(i)]


def _done(session: Session, event: str, incident_ids: list[int]) -> set[int]:
    if not incident_ids:
        return set()
    return set(
        session.scalars(
            select(AuditEvent.incident_id).where(
                AuditEvent.event == event, AuditEvent.incident_id.in_(incident_ids)
            )
        )
    )


def _queue(outbox: Outbox, session: Session, *, incident_id: int | None, dedup: str, **payload: Any) -> None:
    outbox.enqueue(session, kind=Kind.JOB_MESSAGE, incident_id=incident_id, payload=payload, dedup_key=dedup)


def register_delivery(
    outbox: Outbox, *, chat: JobChat, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Deliver ``job_message`` rows with ``chat`` (every replica registers it, so any replica delivers)."""

    def deliver(msg: OutboxMessage) -> None:
        p = dict(msg.payload or {})
        job = p.get("job")
        if job == "digest":
            now = datetime.fromisoformat(str(p["now"]))
            with sessions() as session:
                current, previous, top, stale = _digest_content(session, now, settings.digest_stale_hours)
            chat.digest(
                current=current,
                previous=previous,
                top=top,
                stale=stale,
                stale_hours=settings.digest_stale_hours,
            )
            return None
        with sessions() as session:
            incident = session.get(Incident, msg.incident_id)
            if incident is None:
                return None
            session.expunge(incident)
        if job in (ACK_REMINDER, ESCALATION):
            chat.ack_reminder(
                incident,
                mention=list(p.get("mention") or []),
                minutes=int(p.get("minutes") or 0),
                escalation=job == ESCALATION,
            )
        elif job == RCA_REMINDER:
            chat.rca_reminder(incident, mention=list(p.get("mention") or []))
        else:
            log.error("job_message #%s: unknown job %r; dropped", msg.id, job)
        return None

    outbox.register(Kind.JOB_MESSAGE, deliver)


def ack_reminders(
    *,
    sessions: sessionmaker[Session],
    outbox: Outbox,
    settings: Settings,
    now: datetime,
    catalog: ServiceCatalog | None = None,
) -> list[tuple[int, str]]:
    """Unacknowledged after ``ack_reminder_minutes`` → a thread reply mentioning the on-call group; after
    ``ack_escalation_minutes`` → an escalation mentioning ``escalation_mention``. Returns what was queued.

    With a service catalog, both times scale with the incident's priority (bot/catalog/priority.py ``TIMING``:
    P1 at a third, P3 twice, P4 four times and never escalated) and the service's owner group is mentioned
    too."""
    steps = [
        (ACK_REMINDER, settings.ack_reminder_minutes, mentionable(settings.oncall_mention)),
        (
            ESCALATION,
            settings.ack_escalation_minutes,
            mentionable(settings.escalation_mention or settings.oncall_mention),
        ),
    ]
    steps = [s for s in steps if s[1] > 0]
    if not steps:
        return []
    queued: list[tuple[int, str]] = []
    with transaction(sessions) as session:
        rows = list(
            session.scalars(
                select(Incident).where(
                    Incident.status == IncidentStatus.OPEN.value,
                    Incident.acknowledged_at.is_(None),
                    Incident.resolved_at.is_(None),
                    Incident.kind != CHANGE_KIND,
                    Incident.slack_ts.is_not(None),
                    Incident.created_at >= now - LOOKBACK,
                )
            )
        )
        ids = [i.id for i in rows]
        for event, minutes, who in steps:
            done = _done(session, event, ids)
            for inc in rows:
                due = _due_minutes(catalog, inc, event, minutes)
                if inc.id not in done and due is not None and now - inc.created_at >= timedelta(minutes=due):
                    owner = catalog.owner_group(inc.service) if catalog else None
                    mention = list(dict.fromkeys([*who, *mentionable([owner or ""])]))
                    if not mention:  # nobody to mention (no ONCALL_MENTION, no owner group): skipped, not
                        continue  # posted to nobody; `incident-bot doctor` warns about it
                    audit.record(
                        session, event=event, actor=ACTOR, incident_id=inc.id, minutes=due, mention=mention
                    ).at = now
                    _queue(
                        outbox,
                        session,
                        incident_id=inc.id,
                        dedup=f"{event}:{inc.id}",
                        job=event,
                        minutes=round(due),
                        mention=mention,
                    )
                    queued.append((inc.id, event))
    if queued:
        outbox.wake()
    return queued


def _due_minutes(
    catalog: ServiceCatalog | None, incident: Incident, event: str, minutes: int
) -> float | None:
    """When the step is due for this incident (minutes after it opened), None: never (a P4 escalation)."""
    if catalog is None:
        return float(minutes)
    timing = TIMING[catalog.priority_of(incident)]
    factor = timing.reminder_factor if event == ACK_REMINDER else timing.escalation_factor
    return None if factor is None else minutes * factor


def rca_reminders(
    *, sessions: sessionmaker[Session], outbox: Outbox, settings: Settings, now: datetime
) -> list[int]:
    """Resolved ``rca_reminder_hours`` ago or more and still without an RCA note → one thread reply."""
    if settings.rca_reminder_hours <= 0:
        return []
    queued: list[int] = []
    with transaction(sessions) as session:
        rows = [
            i
            for i in session.scalars(
                select(Incident).where(
                    Incident.resolved_at.is_not(None),
                    Incident.resolved_at <= now - timedelta(hours=settings.rca_reminder_hours),
                    Incident.resolved_at >= now - LOOKBACK,
                    Incident.kind != CHANGE_KIND,
                    Incident.slack_ts.is_not(None),
                )
            )
            if not (i.rca_note or "").strip()
        ]
        done = _done(session, RCA_REMINDER, [i.id for i in rows])
        for inc in rows:
            if inc.id in done:
                continue
            who = mentionable([inc.resolved_by or ""]) or mentionable(settings.oncall_mention)
            if not who:  # resolved by the source and no ONCALL_MENTION: nobody to remind
                continue
            audit.record(session, event=RCA_REMINDER, actor=ACTOR, incident_id=inc.id, mention=who).at = now
            _queue(
                outbox,
                session,
                incident_id=inc.id,
                dedup=f"{RCA_REMINDER}:{inc.id}",
                job=RCA_REMINDER,
                mention=who,
            )
            queued.append(inc.id)
    if queued:
        outbox.wake()
    return queued


def weekly_digest(
    *, sessions: sessionmaker[Session], outbox: Outbox, settings: Settings, now: datetime
) -> bool:
    """KPIs of the last 7 days vs the 7 before, top recurring incidents, open incidents older than
    ``digest_stale_hours``. Queued once per ISO week (claimed in audit_events)."""
    if not settings.digest_schedule.strip():
        return False
    week = f"{now.isocalendar().year}-W{now.isocalendar().week:02d}"
    with transaction(sessions) as session:
        posted = session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.event == DIGEST,
                AuditEvent.incident_id.is_(None),
                AuditEvent.at >= now - timedelta(days=8),
            )
        )
        if any((d or {}).get("week") == week for d in posted):
            return False
        audit.record(session, event=DIGEST, actor=ACTOR, week=week).at = now
        _queue(outbox, session, incident_id=None, dedup=f"{DIGEST}:{week}", job="digest", now=now.isoformat())
    outbox.wake()
    return True


def _digest_content(
    session: Session, now: datetime, stale_hours: int
) -> tuple[KpiReport, KpiReport, list[tuple[str, str, int]], list[StaleIncident]]:
    current = report(session, since=now - timedelta(days=7), until=now)
    previous = report(session, since=now - timedelta(days=14), until=now - timedelta(days=7))
    top = top_recurring(session, since=now - timedelta(days=7), until=now)
    cutoff = now - timedelta(hours=stale_hours)
    stale = [
        StaleIncident(i.id, i.severity, i.title, (now - i.created_at).total_seconds() / 3600)
        for i in session.scalars(
            select(Incident)
            .where(
                Incident.status != IncidentStatus.RESOLVED.value,
                Incident.kind != CHANGE_KIND,
                Incident.created_at <= cutoff,
            )
            .order_by(Incident.created_at)
        )
    ]
    return current, previous, top, stale


def digest_trigger(schedule: str) -> dict[str, Any] | None:
    """``"mon 09:00"`` → APScheduler cron fields; None when off. ValueError naming the input otherwise."""
    parts = schedule.strip().lower().split()
    if not parts:
        return None
    days = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    if len(parts) == 2 and parts[0] in days and re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", parts[1]):
        hour, minute = parts[1].split(":")
        return {"day_of_week": parts[0], "hour": int(hour), "minute": int(minute)}
    raise ValueError(f'DIGEST_SCHEDULE {schedule!r}: expected "<mon..sun> HH:MM" (UTC) or "" for off')
