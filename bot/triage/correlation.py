"""Model ↔ infrastructure correlation: a model-quality incident and an infrastructure incident on the
service that serves the model, active within a window of each other, are linked both ways."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.intake.alerts import AlertKind
from bot.kernel import audit
from bot.kernel.models import Incident, IncidentLink

CAUSED_BY = "may be caused by"  # model incident → infrastructure incident
AFFECTING = "may be affecting"  # infrastructure incident → model incident
MAX_LINKS = 5


def link_new_incident(session: Session, incident_id: int, window: timedelta, now: datetime) -> list[int]:
    """Link a just-opened incident to its counterparts; returns the ids of the incidents it was linked to."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return []
    since = now - window
    if incident.kind == AlertKind.MODEL.value:
        if not incident.model_service:
            return []
        others = session.scalars(
            select(Incident)
            .where(
                Incident.service == incident.model_service,
                Incident.id != incident.id,
                Incident.kind != AlertKind.MODEL.value,
                Incident.last_alert_at >= since,
            )
            .order_by(Incident.id.desc())
            .limit(MAX_LINKS)
        ).all()
        pairs = [(incident, other) for other in others]
    elif incident.service:
        others = session.scalars(
            select(Incident)
            .where(
                Incident.model_service == incident.service,
                Incident.id != incident.id,
                Incident.kind == AlertKind.MODEL.value,
                Incident.last_alert_at >= since,
            )
            .order_by(Incident.id.desc())
            .limit(MAX_LINKS)
        ).all()
        pairs = [(other, incident) for other in others]
    else:
        return []
    for model_inc, infra_inc in pairs:
        reason = f"model {model_inc.model_name} is served by {infra_inc.service}"
        session.add(
            IncidentLink(
                incident_id=model_inc.id,
                linked_incident_id=infra_inc.id,
                reason=f"{CAUSED_BY}: {reason}",
                created_at=now,
            )
        )
        session.add(
            IncidentLink(
                incident_id=infra_inc.id,
                linked_incident_id=model_inc.id,
                reason=f"{AFFECTING}: {reason}",
                created_at=now,
            )
        )
        audit.record(
            session,
            event="incident.linked",
            actor="triage",
            incident_id=model_inc.id,
            linked=infra_inc.id,
            reason=reason,
        )
    return [other.id for other in others]


def links_for(session: Session, incident_id: int) -> list[tuple[IncidentLink, Incident]]:
    rows = session.execute(
        select(IncidentLink, Incident)
        .join(Incident, Incident.id == IncidentLink.linked_incident_id)
        .where(IncidentLink.incident_id == incident_id)
        .order_by(IncidentLink.id)
        .limit(MAX_LINKS)
    ).all()
    return [(link, other) for link, other in rows]
