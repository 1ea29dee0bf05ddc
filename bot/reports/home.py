"""What the App Home shows a user: open incidents, the approvals waiting for them, this week's KPIs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    priorities: dict[int, int] = field(default_factory=dict)  # incident id -> 1..4 (bot/catalog/priority.py)


def home_data(
    session: Session,
    *,
    user_id: str,
    now: datetime,
    limit: int = 15,
    priority_of: Callable[[Incident], int] | None = None,
) -> HomeData:
    """Open incidents by priority (P1 first; severity when no catalog is configured), then age."""
    rows = list(
        session.scalars(
            select(Incident).where(
                Incident.status != IncidentStatus.RESOLVED.value, Incident.kind != CHANGE_KIND
            )
        )
    )
    priorities = {i.id: priority_of(i) for i in rows} if priority_of else {}
    rows.sort(key=lambda i: (priorities.get(i.id, 0), Severity.rank_of(i.severity), i.created_at))
    pending = session.execute(
        select(RemediationRequest, Incident)
        .join(Incident, Incident.id == RemediationRequest.incident_id)
        .where(RemediationRequest.status == RequestStatus.PENDING.value)
        .order_by(RemediationRequest.created_at)
    )
    # authority is the approver list snapshotted on the request; the requester never approves their own
    mine = [(r, i) for r, i in pending if user_id in (r.approvers or []) and r.requested_by != user_id]
    week = last(session, period=timedelta(days=7), now=now)
    return HomeData(rows[:limit], len(rows), mine[:limit], week, priorities)
