"""Change events (deploys, config pushes, flag flips, model promotions): stored, never incidents,
and shown on the incidents that start after them on the same service or model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.intake.alerts import Alert
from bot.kernel import audit
from bot.kernel.db_types import utcnow
from bot.kernel.models import ChangeEvent, ChangeKind, Incident

MAX_SHOWN = 5


@dataclass(frozen=True)
class Change:
    """One change, as parsed from ``POST /changes`` (or a generic alert with ``kind: change``)."""

    kind: ChangeKind
    title: str
    service: str | None = None
    model_name: str | None = None
    version: str | None = None
    environment: str | None = None
    actor: str | None = None
    url: str | None = None
    occurred_at: datetime | None = None
    registered_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def record(session: Session, change: Change, *, source: str, now: datetime | None = None) -> ChangeEvent:
    now = now or utcnow()
    row = ChangeEvent(
        source=source[:32],
        kind=change.kind.value,
        service=_cap(change.service, 200),
        model_name=_cap(change.model_name, 200),
        version=_cap(change.version, 200),
        environment=_cap(change.environment, 64),
        actor=_cap(change.actor, 200),
        title=(change.title or change.kind.value)[:300],
        url=change.url,
        occurred_at=change.occurred_at or now,
        received_at=now,
        registered_at=change.registered_at,
        meta=dict(change.meta),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        event="change.recorded",
        actor=source[:64],
        change_id=row.id,
        kind=row.kind,
        service=row.service,
        model=row.model_name,
        version=row.version,
    )
    return row


def record_alert(session: Session, alert: Alert, *, now: datetime) -> ChangeEvent:
    """A generic alert sent with ``kind: change`` (a deploy announced as an alert): a change, not an incident."""
    labels = alert.labels
    kind = labels.get("change_kind") or labels.get("type") or "deploy"
    change = Change(
        kind=ChangeKind(kind) if kind in ChangeKind._value2member_map_ else ChangeKind.DEPLOY,
        title=alert.summary or alert.name,
        service=alert.service,
        model_name=labels.get("model"),
        version=labels.get("version"),
        environment=labels.get("environment") or labels.get("env"),
        actor=labels.get("actor") or labels.get("who") or labels.get("user"),
        url=alert.url,
        occurred_at=alert.starts_at,
        meta={"alert_name": alert.name, "labels": dict(labels)},
    )
    return record(session, change, source=alert.source, now=now)


def changes_before(
    session: Session, incident: Incident, *, window: timedelta, model_services: Mapping[str, str]
) -> list[ChangeEvent]:
    """Changes to the incident's service, its model's serving service, its model, or the models its service
    serves, that happened in ``window`` before the incident started (newest first; indexed lookups)."""
    start = incident.first_alert_at or incident.created_at
    if start is None:
        return []
    services = {s for s in (incident.service, incident.model_service) if s}
    models = {incident.model_name} if incident.model_name else set()
    models |= {m for m, s in model_services.items() if s in services}
    conditions = []
    if services:
        conditions.append(ChangeEvent.service.in_(services))
    if models:
        conditions.append(ChangeEvent.model_name.in_(models))
    if not conditions:
        return []
    return list(
        session.scalars(
            select(ChangeEvent)
            .where(
                or_(*conditions), ChangeEvent.occurred_at >= start - window, ChangeEvent.occurred_at <= start
            )
            .order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc())
            .limit(MAX_SHOWN)
        )
    )


def describe(change: ChangeEvent, incident_start: datetime) -> str:
    """``started 4 min after deploy checkout v1.42 by @ana`` (plain text; escape before mrkdwn)."""
    occurred = (
        change.occurred_at
        if change.occurred_at.tzinfo
        else change.occurred_at.replace(tzinfo=incident_start.tzinfo)
    )
    minutes = max(0, int((incident_start - occurred).total_seconds() // 60))
    kind = change.kind.replace("_", " ")
    what = " ".join(p for p in (change.service or change.model_name, _version(change.version)) if p)
    if not what:
        what = change.title
    if change.kind == ChangeKind.MODEL_PROMOTION.value and change.model_name and change.service:
        what = f"{change.model_name} {_version(change.version) or ''} on {change.service}".replace("  ", " ")
    text = f"started {minutes} min after {kind} {what}"
    if change.actor:
        text += f" by {change.actor if change.actor.startswith('@') else '@' + change.actor}"
    return text


def _version(version: str | None) -> str | None:
    if not version:
        return None
    return version if version[:1] in "vV" or not version[:1].isdigit() else f"v{version}"


def _cap(value: str | None, n: int) -> str | None:
    return value[:n] if value else None
