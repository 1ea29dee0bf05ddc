"""Triage: dedup by fingerprint, group into incidents, resolve incidents whose alerts all resolved."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.alerts import Alert, AlertStatus, Severity
from bot.db_types import utcnow
from bot.models import AlertRecord, Incident, IncidentStatus


@dataclass
class TriageOutcome:
    """What one batch did to incidents; drives what is posted or updated in Slack."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    duplicates: int = 0
    orphans: int = 0  # resolved alerts for which no open incident exists

    @property
    def incident_ids(self) -> list[int]:
        seen: dict[int, None] = {}
        for i in [*self.created, *self.updated, *self.resolved]:
            seen[i] = None
        return list(seen)


def group_key_for(alert: Alert) -> str:
    """Alertmanager/Grafana group keys win; otherwise service + alert name (+ model)."""
    if alert.group_key:
        key = f"{alert.source}:{alert.group_key}"
    else:
        model = f"|model={alert.model.name}" if alert.model else ""
        key = f"svc={alert.service or '-'}|name={alert.name}{model}"
    if len(key) > 400:  # fits the column; long keys stay distinct by their hash
        key = key[:330] + "#" + hashlib.sha256(key.encode()).hexdigest()
    return key


class Triage:
    """Dedup and grouping. Callers hold ``lock`` until their transaction commits, so concurrent webhooks
    in this process cannot split one group in two (one `serve` process per database)."""

    def __init__(self, *, window: timedelta) -> None:
        self._window = window
        self.lock = threading.Lock()  # held by the caller until the batch commits

    def ingest(self, *, session: Session, alerts: list[Alert], payload_id: int | None,
               now: datetime | None = None) -> TriageOutcome:
        now = now or utcnow()
        outcome = TriageOutcome()
        touched: dict[int, Incident] = {}
        for alert in alerts:
            self._ingest_one(session, alert, payload_id, now, outcome, touched)
        session.flush()
        for incident in touched.values():
            self._refresh(session, incident, now, outcome)
        return outcome

    def _ingest_one(self, session: Session, alert: Alert, payload_id: int | None, now: datetime,
                    outcome: TriageOutcome, touched: dict[int, Incident]) -> None:
        existing = session.scalars(
            select(AlertRecord).join(Incident)
            .where(AlertRecord.fingerprint == alert.fingerprint, Incident.status != IncidentStatus.RESOLVED.value)
            .order_by(AlertRecord.id.desc()).limit(1)
        ).first()
        if existing is not None:
            existing.last_seen_at = now
            if existing.content_hash == alert.content_hash:
                existing.repeat_count += 1
                outcome.duplicates += 1
                return
            _copy_alert(existing, alert, payload_id)
            touched[existing.incident_id] = existing.incident
            if existing.incident_id not in outcome.updated:
                outcome.updated.append(existing.incident_id)
            audit.record(session, event="alert.updated", actor=alert.source, incident_id=existing.incident_id,
                         alert=alert.name, status=alert.status.value)
            return
        if alert.status is AlertStatus.RESOLVED:
            outcome.orphans += 1
            return
        incident = self._open_incident_for(session, alert, now)
        created = incident.id is None
        if created:
            session.add(incident)
            session.flush()
            outcome.created.append(incident.id)
            audit.record(session, event="incident.opened", actor=alert.source, incident_id=incident.id,
                         title=incident.title, severity=incident.severity)
        elif incident.id not in outcome.updated and incident.id not in outcome.created:
            outcome.updated.append(incident.id)
        record = AlertRecord(incident=incident, fingerprint=alert.fingerprint, first_seen_at=now, last_seen_at=now)
        _copy_alert(record, alert, payload_id)
        session.add(record)
        audit.record(session, event="alert.received", actor=alert.source, incident_id=incident.id,
                     alert=alert.name, fingerprint=alert.fingerprint[:12])
        touched[incident.id] = incident

    def _open_incident_for(self, session: Session, alert: Alert, now: datetime) -> Incident:
        key = group_key_for(alert)
        stmt = (select(Incident).where(Incident.group_key == key, Incident.status != IncidentStatus.RESOLVED.value)
                .order_by(Incident.id.desc()).limit(1))
        if not alert.group_key:
            stmt = stmt.where(Incident.last_alert_at >= now - self._window)
        incident = session.scalars(stmt).first()
        if incident is not None:
            return incident
        return Incident(
            title=alert.title[:300], severity=alert.severity.value, service=(alert.service or "")[:200] or None,
            source=alert.source,
            kind=alert.kind.value, status=IncidentStatus.OPEN.value, group_key=key, created_at=now,
            first_alert_at=alert.starts_at or now, last_alert_at=now,
            model_name=alert.model.name[:200] if alert.model else None,
            model_owner=(alert.model.owner or "")[:200] or None if alert.model else None,
        )

    def _refresh(self, session: Session, incident: Incident, now: datetime, outcome: TriageOutcome) -> None:
        session.refresh(incident, ["alerts"])
        alerts = incident.alerts
        incident.last_alert_at = now
        incident.severity = min((Severity(a.severity) for a in alerts), key=lambda s: s.rank).value
        names = sorted({a.name for a in alerts})
        first = alerts[0]
        base = first.summary or first.name
        incident.title = (base if len(names) == 1 else f"{base} (+{len(names) - 1} more)")[:300]
        if all(a.status == AlertStatus.RESOLVED.value for a in alerts) and incident.status != IncidentStatus.RESOLVED:
            incident.status = IncidentStatus.RESOLVED.value
            incident.resolved_at = max((a.ends_at or now for a in alerts), default=now)
            incident.resolved_by = f"source:{incident.source}"
            outcome.resolved.append(incident.id)
            audit.record(session, event="incident.resolved", actor=incident.source, incident_id=incident.id,
                         reason="all alerts resolved")


def _copy_alert(record: AlertRecord, alert: Alert, payload_id: int | None) -> None:
    record.payload_id = payload_id
    record.content_hash = alert.content_hash
    record.source = alert.source
    record.name = alert.name[:300]
    record.status = alert.status.value
    record.severity = alert.severity.value
    record.service = alert.service[:200] if alert.service else None
    record.summary = alert.summary
    record.description = alert.description
    record.labels = dict(alert.labels)
    record.annotations = dict(alert.annotations)
    record.url = alert.url
    record.starts_at = alert.starts_at
    record.ends_at = alert.ends_at
    if alert.model is not None:
        m = alert.model
        record.model = {"name": m.name, "version": m.version, "metric": m.metric, "value": m.value,
                        "threshold": m.threshold, "owner": m.owner}
