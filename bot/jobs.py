"""Scheduler jobs: the weekly KPI digest, the acknowledgement reminder and escalation, the RCA-note
reminder. Each is a plain function of ``now`` (tests call them with a fixed one) and is off when its
setting is 0 / empty.

Each reminder step is claimed with an audit event (``reminder.ack``, ``reminder.escalation``,
``reminder.rca``; ``digest.weekly`` per ISO week) committed *before* the chat call: a step is never sent
twice, and a chat failure is logged, not retried (at most once, like a pager's escalation step).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import audit
from bot.config import Settings
from bot.db import transaction
from bot.kpi import CHANGE_KIND, KpiReport, report, top_recurring
from bot.models import AuditEvent, Incident, IncidentStatus

log = logging.getLogger(__name__)
ACTOR = "scheduler"
ACK_REMINDER, ESCALATION, RCA_REMINDER, DIGEST = "reminder.ack", "reminder.escalation", "reminder.rca", "digest.weekly"
LOOKBACK = timedelta(days=7)  # older incidents are not reminded about (no burst when a job is first enabled)
_MENTIONABLE = re.compile(r"^[SUW][A-Z0-9]{2,}$")  # user group (S...) or user (U.../W...) ids


@dataclass
class StaleIncident:
    id: int
    severity: str
    title: str
    age_hours: float


class JobChat(Protocol):
    """What the jobs say; handlers/slack_jobs.py renders it for Slack."""

    def ack_reminder(self, incident: Incident, *, mention: list[str], minutes: int, escalation: bool) -> None: ...

    def rca_reminder(self, incident: Incident, *, mention: list[str]) -> None: ...

    def digest(self, *, current: KpiReport, previous: KpiReport, top: list[tuple[str, str, int]],
               stale: list[StaleIncident], stale_hours: int) -> None: ...


def mentionable(ids: list[str]) -> list[str]:
    return [i for i in ids if _MENTIONABLE.fullmatch(i)]


def _done(session: Session, event: str, incident_ids: list[int]) -> set[int]:
    if not incident_ids:
        return set()
    return set(session.scalars(select(AuditEvent.incident_id).where(
        AuditEvent.event == event, AuditEvent.incident_id.in_(incident_ids))))


def _send(what: str, call: Callable[[], Any]) -> bool:
    try:
        call()
        return True
    except Exception:
        log.exception("job chat call failed: %s", what)
        return False


def ack_reminders(*, sessions: sessionmaker[Session], chat: JobChat, settings: Settings, now: datetime) -> list[tuple[int, str]]:
    """Unacknowledged after ``ack_reminder_minutes`` → a thread reply mentioning the on-call group; after
    ``ack_escalation_minutes`` → an escalation mentioning ``escalation_mention``. Returns what was sent."""
    steps = [(ACK_REMINDER, settings.ack_reminder_minutes, mentionable(settings.oncall_mention)),
             (ESCALATION, settings.ack_escalation_minutes,
              mentionable(settings.escalation_mention or settings.oncall_mention))]
    steps = [s for s in steps if s[1] > 0]
    if not steps:
        return []
    sent: list[tuple[int, str]] = []
    due: list[tuple[Incident, str, int, list[str]]] = []
    with transaction(sessions) as session:
        rows = list(session.scalars(select(Incident).where(
            Incident.status == IncidentStatus.OPEN.value, Incident.acknowledged_at.is_(None),
            Incident.resolved_at.is_(None), Incident.kind != CHANGE_KIND, Incident.slack_ts.is_not(None),
            Incident.created_at >= now - LOOKBACK)))
        ids = [i.id for i in rows]
        for event, minutes, who in steps:
            done = _done(session, event, ids)
            for inc in rows:
                if inc.id not in done and now - inc.created_at >= timedelta(minutes=minutes):
                    audit.record(session, event=event, actor=ACTOR, incident_id=inc.id, minutes=minutes, mention=who).at = now
                    due.append((inc, event, minutes, who))
        session.flush()
        session.expunge_all()
    for inc, event, minutes, who in due:  # after the commit: the claim holds even if Slack fails
        if _send(f"{event} #{inc.id}", partial(chat.ack_reminder, inc, mention=who, minutes=minutes,
                                               escalation=event == ESCALATION)):
            sent.append((inc.id, event))
    return sent


def rca_reminders(*, sessions: sessionmaker[Session], chat: JobChat, settings: Settings, now: datetime) -> list[int]:
    """Resolved ``rca_reminder_hours`` ago or more and still without an RCA note → one thread reply."""
    if settings.rca_reminder_hours <= 0:
        return []
    due: list[tuple[Incident, list[str]]] = []
    with transaction(sessions) as session:
        rows = [i for i in session.scalars(select(Incident).where(
            Incident.resolved_at.is_not(None), Incident.resolved_at <= now - timedelta(hours=settings.rca_reminder_hours),
            Incident.resolved_at >= now - LOOKBACK, Incident.kind != CHANGE_KIND, Incident.slack_ts.is_not(None)))
            if not (i.rca_note or "").strip()]
        done = _done(session, RCA_REMINDER, [i.id for i in rows])
        for inc in rows:
            if inc.id in done:
                continue
            who = mentionable([inc.resolved_by or ""]) or mentionable(settings.oncall_mention)
            audit.record(session, event=RCA_REMINDER, actor=ACTOR, incident_id=inc.id, mention=who).at = now
            due.append((inc, who))
        session.flush()
        session.expunge_all()
    return [inc.id for inc, who in due if _send(f"rca #{inc.id}", partial(chat.rca_reminder, inc, mention=who))]


def weekly_digest(*, sessions: sessionmaker[Session], chat: JobChat, settings: Settings, now: datetime) -> bool:
    """KPIs of the last 7 days vs the 7 before, top recurring incidents, open incidents older than
    ``digest_stale_hours``. Posted once per ISO week (claimed in audit_events)."""
    if not settings.digest_schedule.strip():
        return False
    week = f"{now.isocalendar().year}-W{now.isocalendar().week:02d}"
    with transaction(sessions) as session:
        posted = session.scalars(select(AuditEvent.detail).where(
            AuditEvent.event == DIGEST, AuditEvent.incident_id.is_(None), AuditEvent.at >= now - timedelta(days=8)))
        if any((d or {}).get("week") == week for d in posted):
            return False
        audit.record(session, event=DIGEST, actor=ACTOR, week=week).at = now
        current = report(session, since=now - timedelta(days=7), until=now)
        previous = report(session, since=now - timedelta(days=14), until=now - timedelta(days=7))
        top = top_recurring(session, since=now - timedelta(days=7), until=now)
        cutoff = now - timedelta(hours=settings.digest_stale_hours)
        stale = [StaleIncident(i.id, i.severity, i.title, (now - i.created_at).total_seconds() / 3600)
                 for i in session.scalars(select(Incident).where(
                     Incident.status != IncidentStatus.RESOLVED.value, Incident.kind != CHANGE_KIND,
                     Incident.created_at <= cutoff).order_by(Incident.created_at))]
    return _send("weekly digest", partial(chat.digest, current=current, previous=previous, top=top, stale=stale,
                                          stale_hours=settings.digest_stale_hours))


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
