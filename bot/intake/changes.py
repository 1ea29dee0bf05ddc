"""Change events (deploys, config pushes, flag flips, model promotions and registrations): stored, never
incidents, and shown on the incidents that start after them on the same service or model. A model
registration is stored (it gives a later promotion its lead time) but never shown as a cause: a registered
version serves nothing until it is promoted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.intake.alerts import Alert
from bot.intake.model_registry import Registrations
from bot.kernel import audit
from bot.kernel.db_types import utcnow
from bot.kernel.models import ChangeEvent, ChangeKind, Incident

MAX_SHOWN = 5
NOT_A_CAUSE = (ChangeKind.MODEL_REGISTRATION.value,)  # stored for lead times, never "started N min after"


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
    return changes_between(
        session, incident, since=start - window, until=start, model_services=model_services
    )


def changes_between(
    session: Session,
    incident: Incident,
    *,
    since: datetime,
    until: datetime,
    model_services: Mapping[str, str],
    limit: int = MAX_SHOWN,
) -> list[ChangeEvent]:
    """The incident's changes (as ``changes_before`` finds them) that happened in ``[since, until]``, newest
    first; registrations are left out (they change nothing that runs)."""
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
                or_(*conditions),
                ChangeEvent.occurred_at >= since,
                ChangeEvent.occurred_at <= until,
                ChangeEvent.kind.not_in(NOT_A_CAUSE),
            )
            .order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc())
            .limit(limit)
        )
    )


def registration_time(session: Session, model: str, version: str) -> datetime | None:
    """When ``model`` ``version`` was registered, from a registration stored earlier (None: never sent)."""
    row = session.scalar(
        select(ChangeEvent)
        .where(
            ChangeEvent.model_name == model,
            ChangeEvent.version == version,
            ChangeEvent.kind == ChangeKind.MODEL_REGISTRATION.value,
        )
        .order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc())
        .limit(1)
    )
    return None if row is None else (row.registered_at or row.occurred_at)


def with_registrations(
    session: Session, changes: Sequence[Change], registry: Registrations | None = None
) -> list[Change]:
    """Promotions sent without ``registered_at`` (MLflow's alias webhook never carries it) get their version's
    registration time: from a registration earlier in the same batch, else one stored earlier, else the model
    registry (``registry``, MLflow's REST, when configured). Where it came from is kept in ``meta``; when
    nothing knows it, the lead time stays unknown (never 0)."""
    batch = {
        (c.model_name, c.version): c.registered_at or c.occurred_at
        for c in changes
        if c.kind == ChangeKind.MODEL_REGISTRATION and c.model_name and c.version
    }
    out = []
    for c in changes:
        if (
            c.kind != ChangeKind.MODEL_PROMOTION
            or c.registered_at is not None
            or not (c.model_name and c.version)
        ):
            out.append(c)
            continue
        when, origin = batch.get((c.model_name, c.version)), "registration in the same delivery"
        if when is None:
            when, origin = registration_time(session, c.model_name, c.version), "stored registration"
        if when is None and registry is not None:
            when, origin = registry(c.model_name, c.version), "model registry"
        out.append(
            c
            if when is None
            else replace(c, registered_at=when, meta={**c.meta, "registered_at_from": origin})
        )
    return out


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
