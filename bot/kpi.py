"""KPI summaries computed from the database (no separate metrics store to drift out of sync)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db_types import utcnow
from bot.models import AlertRecord, Incident, IncidentStatus, RemediationRequest, RequestStatus


@dataclass
class KpiSummary:
    since: datetime
    incidents: int
    open_incidents: int
    alert_deliveries: int
    mttd_s: float | None  # first alert start -> incident opened
    mtta_s: float | None
    mttr_s: float | None
    noise_reduction: float | None  # 1 - incidents / alert deliveries
    auto_triage_rate: float | None  # incidents that got a runbook suggested
    remediation_rate: float | None  # incidents with a succeeded remediation
    model_incidents: int
    model_rollback_rate: float | None  # model incidents with a succeeded remediation


def summarise(session: Session, *, days: int = 7, now: datetime | None = None) -> KpiSummary:
    since = (now or utcnow()) - timedelta(days=days)
    incidents = list(session.scalars(select(Incident).where(Incident.created_at >= since)))
    ids = [i.id for i in incidents]
    deliveries = 0
    remediated: set[int] = set()
    if ids:
        deliveries = int(session.scalar(select(func.count(AlertRecord.id) + func.coalesce(func.sum(
            AlertRecord.repeat_count), 0)).where(AlertRecord.incident_id.in_(ids))) or 0)
        remediated = set(session.scalars(select(RemediationRequest.incident_id).where(
            RemediationRequest.incident_id.in_(ids), RemediationRequest.status == RequestStatus.SUCCEEDED.value)))

    def avg(pairs: list[tuple[datetime | None, datetime | None]]) -> float | None:
        vals = [(b - a).total_seconds() for a, b in pairs if a and b and b >= a]
        return mean(vals) if vals else None

    def rate(num: int, den: int) -> float | None:
        return num / den if den else None

    models = [i for i in incidents if i.model_name]
    return KpiSummary(
        since=since, incidents=len(incidents),
        open_incidents=sum(i.status != IncidentStatus.RESOLVED.value for i in incidents),
        alert_deliveries=deliveries,
        mttd_s=avg([(i.first_alert_at, i.created_at) for i in incidents]),
        mtta_s=avg([(i.created_at, i.acknowledged_at) for i in incidents]),
        mttr_s=avg([(i.created_at, i.resolved_at) for i in incidents]),
        noise_reduction=(1 - len(incidents) / deliveries) if deliveries else None,
        auto_triage_rate=rate(sum(i.runbook_id is not None for i in incidents), len(incidents)),
        remediation_rate=rate(len(remediated), len(incidents)),
        model_incidents=len(models),
        model_rollback_rate=rate(sum(i.id in remediated for i in models), len(models)),
    )
