"""Triage: dedup by fingerprint, flapping, grouping (groupKey, attributes, content), resolve.

Every decision is taken from database state (the alert's latest record, open incidents and their
stored content template), so any replica holding the batch locks (bot/kernel/locks.py) decides the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from bot.intake import changes
from bot.intake.alerts import Alert, AlertKind, AlertStatus, Severity
from bot.kernel import audit
from bot.kernel.db_types import utcnow
from bot.kernel.models import AlertRecord, Incident, IncidentStatus
from bot.triage import correlation, noise, templates
from bot.triage.policy import Reopened, TriageOutcome, TriagePolicy, group_key_for, incident_service

RESOLVED = IncidentStatus.RESOLVED.value
CONTENT_CANDIDATES = 20  # open incidents of one service/source compared by template, newest first


class Triage:
    """Dedup, flapping and grouping. Callers hold the batch's locks (``bot/kernel/locks.py``: advisory locks on
    PostgreSQL, a process lock on SQLite) until their transaction commits, so concurrent deliveries, in
    this process or another replica, cannot split one group in two."""

    def __init__(
        self,
        *,
        window: timedelta,
        policy: TriagePolicy | None = None,
        related: Callable[[Session, int], list[int]] | None = None,
    ) -> None:
        self.policy = policy or TriagePolicy(group_window=window)
        self._window = self.policy.group_window
        self._related = related  # incidents on connected services (bot/catalog): re-rendered on open

    def ingest(
        self, *, session: Session, alerts: list[Alert], payload_id: int | None, now: datetime | None = None
    ) -> TriageOutcome:
        now = now or utcnow()
        batch = _Batch(session, payload_id, now, TriageOutcome(), noise.Tally())
        # One query for the latest record of every fingerprint in the batch (not one per alert), and no
        # autoflush between alerts: the batch keeps its own map of the records it creates.
        fingerprints = {a.fingerprint for a in alerts if a.kind is not AlertKind.CHANGE}
        if fingerprints:
            for row in session.scalars(_LATEST, {"fingerprints": list(fingerprints)}):
                batch.latest[row.fingerprint] = row
        with session.no_autoflush:
            for alert in alerts:
                self._ingest_one(batch, alert)
        session.flush()
        self._refresh(batch)
        batch.audits.write(session)  # before correlation, which records its own audit rows
        for incident_id in batch.new_incidents:
            for other in correlation.link_new_incident(
                session, incident_id, self.policy.correlation_window, now
            ):
                batch.outcome.touch(other)
            for other in self._related(session, incident_id) if self._related else ():
                batch.outcome.touch(other)
        batch.tally.flush(session, now)
        return batch.outcome

    # ---- one delivery ------------------------------------------------------------------------------
    def _ingest_one(self, b: _Batch, alert: Alert) -> None:
        service = incident_service(alert, self.policy)
        counts = b.tally.at(alert.source, service)
        if alert.kind is AlertKind.CHANGE:
            b.audits.write(b.session)  # the change's own audit row (ORM) comes after the batch's earlier ones
            b.outcome.changes.append(changes.record_alert(b.session, alert, now=b.now).id)
            counts.changes += 1
            return
        record = b.latest.get(alert.fingerprint)
        if record is not None:
            if record.incident.status != RESOLVED:
                counts.deliveries += 1
                self._deliver_to_open(b, record, alert, counts)
                return
            if self._deliver_to_resolved(b, record, alert, counts):
                counts.deliveries += 1
                return
        if alert.status is AlertStatus.RESOLVED:
            # A resolve of nothing we know: no alert, no incident, so not a delivery of the noise funnel
            # (bot/triage/noise.py), counted apart.
            b.outcome.orphans += 1
            counts.orphaned_resolves += 1
            return
        counts.deliveries += 1
        self._new_alert(b, alert, service, counts)

    def _deliver_to_open(self, b: _Batch, record: AlertRecord, alert: Alert, counts: noise.Counts) -> None:
        _truncation(b, record.incident, alert)
        record.delivery_count += 1
        record.last_seen_at = b.now
        if record.content_hash == alert.content_hash:
            record.repeat_count += 1
            b.outcome.duplicates += 1
            counts.duplicates += 1
            return
        if record.status == AlertStatus.RESOLVED.value and alert.status is AlertStatus.FIRING:
            self._flap(b, record, counts)  # resolved then firing again while its incident stayed open
        self._update(b, record, alert)

    def _deliver_to_resolved(
        self, b: _Batch, record: AlertRecord, alert: Alert, counts: noise.Counts
    ) -> bool:
        """A delivery for an alert whose incident is resolved. False: it is a new problem (new incident)."""
        incident = record.incident
        since_seen = b.now - _aware(record.last_seen_at, b.now)
        if alert.status is AlertStatus.RESOLVED:
            if since_seen > self.policy.dedup_window and record.status == AlertStatus.RESOLVED.value:
                return False  # a resolve for an alert long forgotten: an orphan
            record.delivery_count += 1
            record.last_seen_at = b.now
            if record.content_hash == alert.content_hash:
                record.repeat_count += 1
                b.outcome.duplicates += 1
                counts.duplicates += 1
            else:  # e.g. the source resolves an alert a person had already resolved in Slack
                cleared = record.status != AlertStatus.RESOLVED.value
                _copy_alert(record, alert, b.payload_id)
                if cleared:  # the message said "still firing at the source": it no longer is
                    b.outcome.touch(incident.id)
            return True
        if record.status != AlertStatus.RESOLVED.value:
            # Resolved by a person while the source still fires: same incident, re-opened after the grace.
            record.delivery_count += 1
            record.last_seen_at = b.now
            resolved_at = _aware(incident.resolved_at, b.now)
            if b.now - resolved_at < self.policy.reopen_grace:
                if record.content_hash == alert.content_hash:
                    record.repeat_count += 1
                    b.outcome.duplicates += 1
                    counts.duplicates += 1
                else:
                    _copy_alert(record, alert, b.payload_id)
                return True
            minutes = int((b.now - resolved_at).total_seconds() // 60)
            resolver = incident.resolved_by or ""
            note = (
                f"re-opened: {alert.source} still firing {minutes} min after the resolve by "
                f"{resolver or 'someone'}"
            )
            self._reopen(b, incident, note=note, reason="source still firing after a manual resolve")
            b.outcome.reopened.append(
                Reopened(incident_id=incident.id, resolved_by=resolver, source=alert.source, minutes=minutes)
            )
            _truncation(b, incident, alert)
            self._update(b, record, alert)
            return True
        if since_seen > self.policy.flap_window:
            return False  # fired again long after it resolved: a new incident
        record.delivery_count += 1
        record.last_seen_at = b.now
        self._reopen(b, incident, note=None, reason="flap: fired again within the flap window")
        _truncation(b, incident, alert)
        self._flap(b, record, counts)
        self._update(b, record, alert)
        return True

    def _new_alert(self, b: _Batch, alert: Alert, service: str | None, counts: noise.Counts) -> None:
        incident, reason = self._incident_for(b.session, alert, service, b.now)
        if incident.id is None:
            b.session.add(incident)
            b.session.flush()
            b.outcome.created.append(incident.id)
            b.new_incidents.append(incident.id)
            counts.incidents_opened += 1
            b.audits.record(
                event="incident.opened",
                actor=alert.source,
                incident_id=incident.id,
                title=incident.title,
                severity=incident.severity,
            )
        else:
            incident.grouping_reason = reason
            b.outcome.grouped += 1
            counts.grouped += 1
            b.outcome.touch(incident.id)
            b.audits.record(
                event="alert.grouped",
                actor=alert.source,
                incident_id=incident.id,
                alert=alert.name[:200],
                reason=(reason or "")[:500],
            )
        _truncation(b, incident, alert)
        record = AlertRecord(
            incident=incident, fingerprint=alert.fingerprint, first_seen_at=b.now, last_seen_at=b.now
        )
        _copy_alert(record, alert, b.payload_id)
        b.session.add(record)
        b.latest[alert.fingerprint] = record
        b.audits.record(
            event="alert.received",
            actor=alert.source,
            incident_id=incident.id,
            alert=alert.name,
            fingerprint=alert.fingerprint[:12],
        )
        b.touched[incident.id] = incident

    def _update(self, b: _Batch, record: AlertRecord, alert: Alert) -> None:
        _copy_alert(record, alert, b.payload_id)
        b.touched[record.incident_id] = record.incident
        b.outcome.touch(record.incident_id)
        b.audits.record(
            event="alert.updated",
            actor=alert.source,
            incident_id=record.incident_id,
            alert=alert.name,
            status=alert.status.value,
        )

    def _flap(self, b: _Batch, record: AlertRecord, counts: noise.Counts) -> None:
        record.flap_count += 1
        b.outcome.flaps += 1
        counts.flaps_suppressed += 1
        incident = record.incident
        if record.flap_count >= self.policy.flap_threshold and not incident.flapping:
            incident.flapping = True
            b.audits.record(
                event="incident.flapping",
                actor="triage",
                incident_id=incident.id,
                alert=record.name,
                flaps=record.flap_count,
            )

    def _reopen(self, b: _Batch, incident: Incident, *, note: str | None, reason: str) -> None:
        """Re-open in place: same incident and message (updated, never re-posted)."""
        b.audits.record(
            event="incident.reopened",
            actor="triage",
            incident_id=incident.id,
            reason=reason,
            was_resolved_by=incident.resolved_by,
        )
        incident.status = IncidentStatus.OPEN.value
        incident.resolved_at = None
        incident.resolved_by = None
        incident.triage_note = note
        b.outcome.touch(incident.id)

    # ---- grouping ------------------------------------------------------------------------------------
    def _incident_for(
        self, session: Session, alert: Alert, service: str | None, now: datetime
    ) -> tuple[Incident, str | None]:
        key = group_key_for(alert)
        stmt = (
            select(Incident)
            .where(Incident.group_key == key, Incident.status != RESOLVED)
            .order_by(Incident.id.desc())
            .limit(1)
        )
        if not alert.group_key:
            stmt = stmt.where(Incident.last_alert_at >= now - self._window)
        incident = session.scalars(stmt).first()
        if incident is not None:
            if alert.group_key:
                return incident, f"grouped: {alert.source} groupKey {alert.group_key}"[:1000]
            return incident, (
                f"grouped: same service {service or '-'} and alert name {alert.name} within "
                f"{_minutes(self._window)} min"
            )[:1000]
        template = templates.alert_template(alert.name, alert.title) if not alert.group_key else None
        if template:
            found = self._same_template(session, alert, service, template, now)
            if found is not None:
                return found
        model_service = self.policy.serving_service(alert)
        return Incident(
            title=alert.title[:300],
            severity=alert.severity.value,
            service=service,
            source=alert.source,
            kind=alert.kind.value,
            status=IncidentStatus.OPEN.value,
            group_key=key,
            created_at=now,
            first_alert_at=alert.starts_at or now,
            last_alert_at=now,
            model_name=alert.model.name[:200] if alert.model else None,
            model_owner=(alert.model.owner or "")[:200] or None if alert.model else None,
            model_service=model_service[:200] if model_service else None,
            content_template=json.dumps(template) if template else None,
        ), None

    def _same_template(
        self,
        session: Session,
        alert: Alert,
        service: str | None,
        template: dict[str, list[str]],
        now: datetime,
    ) -> tuple[Incident, str] | None:
        """An open incident of the same source and service, active in the window, whose template merges."""
        svc = Incident.service.is_(None) if service is None else Incident.service == service
        candidates = session.scalars(
            select(Incident)
            .where(
                svc,
                Incident.last_alert_at >= now - self._window,
                Incident.source == alert.source,
                Incident.status != RESOLVED,
                Incident.content_template.is_not(None),
            )
            .order_by(Incident.last_alert_at.desc())
            .limit(CONTENT_CANDIDATES)
        )
        for incident in candidates:
            merged = templates.merge_stored(json.loads(incident.content_template or "{}"), template)
            if merged is not None:
                incident.content_template = json.dumps(merged)
                return incident, f"grouped: same template <{templates.render(tuple(merged['text']))}>"[:1000]
        return None

    def _refresh(self, batch: _Batch) -> None:
        """Each touched incident's severity, title and status from all its alerts (after the flush): one
        query of the columns needed for every touched incident, no ORM objects loaded."""
        if not batch.touched:
            return
        session, now, outcome = batch.session, batch.now, batch.outcome
        per_incident: dict[int, list[Any]] = {}
        for row in session.execute(
            _INCIDENT_ALERTS, {"incident_ids": [i.id for i in batch.touched.values()]}
        ):
            per_incident.setdefault(row.incident_id, []).append(row)
        for incident in batch.touched.values():
            alerts = per_incident.get(incident.id, [])
            incident.last_alert_at = now
            incident.severity = min((Severity(a.severity) for a in alerts), key=lambda s: s.rank).value
            names = {a.name for a in alerts}
            first = alerts[0]
            base = first.summary or first.name
            incident.title = (base if len(names) == 1 else f"{base} (+{len(names) - 1} more)")[:300]
            if all(a.status == AlertStatus.RESOLVED.value for a in alerts) and incident.status != RESOLVED:
                incident.status = RESOLVED
                incident.resolved_at = max((a.ends_at or now for a in alerts), default=now)
                incident.resolved_by = f"source:{incident.source}"
                incident.triage_note = None
                outcome.resolved.append(incident.id)
                batch.audits.record(
                    event="incident.resolved",
                    actor=incident.source,
                    incident_id=incident.id,
                    reason="all alerts resolved",
                )


# The two queries of every batch, built once (no statement construction or cache-key work per batch).
_LATEST = (
    select(AlertRecord)
    .where(AlertRecord.fingerprint.in_(bindparam("fingerprints", expanding=True)))
    .options(joinedload(AlertRecord.incident))
    .order_by(AlertRecord.id)
)
_INCIDENT_ALERTS = (
    select(
        AlertRecord.incident_id,
        AlertRecord.name,
        AlertRecord.summary,
        AlertRecord.severity,
        AlertRecord.status,
        AlertRecord.ends_at,
    )
    .where(AlertRecord.incident_id.in_(bindparam("incident_ids", expanding=True)))
    .order_by(AlertRecord.id)
)


@dataclass
class _Batch:
    session: Session
    payload_id: int | None
    now: datetime
    outcome: TriageOutcome
    tally: noise.Tally
    touched: dict[int, Incident] = field(default_factory=dict)
    new_incidents: list[int] = field(default_factory=list)
    latest: dict[str, AlertRecord] = field(default_factory=dict)  # fingerprint → its latest record
    audits: audit.Batch = field(default_factory=audit.Batch)  # written with one INSERT (see ``ingest``)


def _truncation(b: _Batch, incident: Incident, alert: Alert) -> None:
    """The group's latest truncatedAlerts count (a group property: only for alerts with a group key)."""
    if alert.group_key and (incident.truncated_alerts or 0) != alert.truncated_alerts:
        incident.truncated_alerts = alert.truncated_alerts
        if incident.id is not None:
            b.outcome.touch(incident.id)


def _aware(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value if value.tzinfo is not None else value.replace(tzinfo=default.tzinfo)


def _minutes(window: timedelta) -> int:
    return int(window.total_seconds() // 60)


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
        record.model = {
            "name": m.name,
            "version": m.version,
            "metric": m.metric,
            "value": m.value,
            "threshold": m.threshold,
            "owner": m.owner,
        }
