"""What the App Home shows a user: open incidents, the approvals waiting for them, this week's KPIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.intake.alerts import Severity
from bot.kernel.models import Incident, IncidentStatus, RemediationRequest, RequestStatus
from bot.reports.kpi import CHANGE_KIND, KpiReport, last


@dataclass
class HomeData:
    open_incidents: list[Incident]
    open_total: int
    my_approvals: list[tuple[RemediationRequest, Incident]]
    week: KpiReport


def home_data(session: Session, *, user_id: str, now: datetime, limit: int = 15) -> HomeData:
    rows = list(
        session.scalars(
            select(Incident).where(
                Incident.status != IncidentStatus.RESOLVED.value, Incident.kind != CHANGE_KIND
            )
        )
    )
    rows.sort(key=lambda i: (Severity.rank_of(i.severity), i.created_at))
    pending = session.execute(
        select(RemediationRequest, Incident)
        .join(Incident, Incident.id == RemediationRequest.incident_id)
        .where(RemediationRequest.status == RequestStatus.PENDING.value)
        .order_by(RemediationRequest.created_at)
    )
    # authority is the approver list snapshotted on the request; the requester never approves their own
    mine = [(r, i) for r, i in pending if user_id in (r.approvers or []) and r.requested_by != user_id]
    return HomeData(rows[:limit], len(rows), mine[:limit], last(session, period=timedelta(days=7), now=now))
