"""KPI definitions, in one place, computed from the database (no separate metrics store to drift).

Every figure is over a period ``[since, until)`` of incidents *opened* in it (and of change events that
*occurred* in it), optionally for one service, and every rate carries its counts. Durations are seconds,
each as count / mean / median / p90 (p90 by linear interpolation between closest ranks).

Definitions (README "KPIs" has them with a worked example):

- detection = the first delivery of any of the incident's alerts (``alerts.first_seen_at``; the
  incident's ``created_at`` when it has no alerts); impact start = the earliest ``starts_at`` of its
  alerts (the source's own start; detection when no alert has one).
- MTTD = impact start → detection; MTTA = detection → first acknowledgement; MTTR = impact start →
  resolved, and (labelled) detection → resolved. An incident resolved before the bot opened it counts: its
  detection → resolved is 0, and it is counted apart (``resolved_before_opened``). The input that makes one:
  the source's end time (Alertmanager's ``endsAt``) before the bot's first delivery, i.e. a firing
  notification delivered late (retried after an outage) and then its resolve. A first delivery that is
  already resolved opens nothing: it is an orphaned resolve (bot/triage/noise.py).
- Noise funnel: deliveries (sum of ``alerts.delivery_count``: every delivery, repeats, content updates
  and flaps included; orphaned resolves are not, having no alert) → unique alerts → incidents; noise
  reduction = 1 − incidents / deliveries, ``bot/triage/noise.py::noise_reduction``, the one definition that
  ``incident-bot noise`` uses too.
  Change events are not incidents; old rows with ``incidents.kind == "change"`` are left out.
- Auto-triaged: incidents with a runbook suggestion the action guardrail marked offerable
  (``features["offerable"] == 1``) and no runbook suggestion anybody marked 👎 (a 👎 re-advises and may swap in
  another offerable runbook: the incident still needed a person); rate over incidents.
- Auto-remediated: resolved incidents whose resolution followed (``finished_at <= resolved_at``) a
  succeeded (so approved) remediation request; rate over resolved incidents.
- MLOps: drift detection latency = a model alert's ``starts_at`` (the monitor's window start) → its
  first delivery; model rollback rate = model incidents resolved after a succeeded ``mlflow_rollback``
  / model promotions in the period (``model_registration`` changes are not promotions); lead time for
  model changes = promotion ``registered_at`` (its version registered; unknown ones left out) →
  ``occurred_at`` (serving); model incidents linked to an infrastructure incident (count and share).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import mean, median
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.kernel.db_types import utcnow
from bot.kernel.models import (
    AlertRecord,
    ChangeEvent,
    ChangeKind,
    Feedback,
    Incident,
    IncidentLink,
    IncidentStatus,
    RemediationRequest,
    RequestStatus,
    Suggestion,
)
from bot.triage.noise import noise_reduction

CHANGE_KIND = "change"  # incidents.kind of old rows that were change events, not incidents
ROLLBACK_ACTION = "mlflow_rollback"


@dataclass
class Durations:
    """A duration KPI: how many incidents it covers and its mean, median and p90, in seconds."""

    count: int
    mean_s: float | None
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        if not values:
            return cls(0, None, None, None)
        return cls(len(values), mean(values), median(values), percentile(values, 0.9))


@dataclass
class Rate:
    """numerator / denominator, both kept (a rate without its counts misleads on small numbers)."""

    numerator: int
    denominator: int
    value: float | None

    @classmethod
    def of(cls, num: int, den: int) -> Rate:
        return cls(num, den, num / den if den else None)


@dataclass
class Funnel:
    deliveries: int  # every alert delivery: first, repeats, content updates, flaps
    unique_alerts: int
    incidents: int
    noise_reduction: float | None  # 1 - incidents / deliveries


@dataclass
class ModelKpis:
    model_incidents: int
    drift_detection_latency: Durations  # model alert starts_at (monitor window) -> received
    rollbacks: int  # model incidents resolved after a succeeded mlflow_rollback
    promotions: int  # model promotion change events in the period
    rollback_rate: float | None  # rollbacks / promotions
    lead_time: Durations  # promotion registered_at -> occurred_at (serving)
    linked_to_infra: Rate  # model incidents linked to an infrastructure incident / model incidents


@dataclass
class KpiReport:
    since: datetime
    until: datetime
    service: str | None
    incidents: int
    open_incidents: int
    resolved_incidents: int
    resolved_before_opened: int
    change_events: int  # shown beside incidents, never counted as one
    flapping_incidents: int
    mttd: Durations  # impact start -> detection
    mtta: Durations  # detection -> first acknowledgement
    mttr: Durations  # impact start -> resolved
    mttr_from_detection: Durations  # detection -> resolved
    funnel: Funnel
    auto_triaged: Rate  # over incidents
    runbook_suggested: int  # incidents with any runbook suggestion
    auto_remediated: Rate  # over resolved incidents
    model: ModelKpis
    by_service: dict[str, KpiReport] = field(default_factory=dict)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): position q * (n - 1)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---- loading ------------------------------------------------------------------------------------


@dataclass
class _Facts:
    """Per-incident facts derived from its alerts, requests, suggestions, feedback and links."""

    incident: Incident
    detection: datetime
    impact_start: datetime
    alerts: list[AlertRecord]


def _incidents(session: Session, since: datetime, until: datetime, service: str | None) -> list[Incident]:
    q = select(Incident).where(
        Incident.created_at >= since, Incident.created_at < until, Incident.kind != CHANGE_KIND
    )
    if service is not None:
        q = q.where(Incident.service == service)
    return list(session.scalars(q.order_by(Incident.id)))


def _facts(session: Session, incidents: list[Incident]) -> list[_Facts]:
    ids = [i.id for i in incidents]
    by_inc: dict[int, list[AlertRecord]] = defaultdict(list)
    for a in _in_chunks(session, AlertRecord, AlertRecord.incident_id, ids):
        by_inc[a.incident_id].append(a)
    out = []
    for inc in incidents:
        alerts = by_inc.get(inc.id, [])
        detection = min((a.first_seen_at for a in alerts), default=inc.created_at)
        impact = min((a.starts_at for a in alerts if a.starts_at is not None), default=detection)
        out.append(_Facts(inc, detection, min(impact, detection), alerts))
    return out


def _in_chunks(session: Session, model: Any, column: Any, ids: list[int], extra: Any = None) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), 500):
        q = select(model).where(column.in_(ids[start : start + 500]))
        if extra is not None:
            q = q.where(extra)
        rows.extend(session.scalars(q))
    return rows


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


# ---- the report ---------------------------------------------------------------------------------


def report(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    service: str | None = None,
    per_service: bool = False,
) -> KpiReport:
    until = until or utcnow()
    incidents = _incidents(session, since, until, service)
    facts = _facts(session, incidents)
    ids = [i.id for i in incidents]
    resolved = [f for f in facts if f.incident.resolved_at is not None]

    mttr_det, before_open = [], 0
    for f in resolved:
        assert f.incident.resolved_at is not None
        d = _seconds(f.detection, f.incident.resolved_at)
        if f.incident.resolved_at < f.incident.created_at or d < 0:
            before_open += 1
        mttr_det.append(max(d, 0.0))

    deliveries = sum(a.delivery_count for f in facts for a in f.alerts)
    unique_alerts = sum(len(f.alerts) for f in facts)

    # auto-triage: an offerable runbook suggestion nobody marked 👎
    offerable: dict[int, set[str]] = defaultdict(set)
    suggested: set[int] = set()
    for s in _in_chunks(
        session, Suggestion, Suggestion.incident_id, ids, Suggestion.target_kind == "runbook"
    ):
        suggested.add(s.incident_id)
        if float((s.features or {}).get("offerable", 0.0)) >= 1.0:
            offerable[s.incident_id].add(s.target_id)
    thumbs_down = {
        (fb.incident_id, fb.target_id)
        for fb in _in_chunks(
            session,
            Feedback,
            Feedback.incident_id,
            ids,
            (Feedback.target_kind == "runbook") & (Feedback.helpful.is_(False)),
        )
    }
    # A 👎 on a runbook of the incident means a person had to step in, even when the re-advice that the 👎
    # triggers swapped in another offerable runbook (which then carries no 👎 of its own): not auto-triaged.
    overruled = {iid for iid, _ in thumbs_down}
    auto_triaged = sum(iid not in overruled for iid in offerable)

    # auto-remediation: resolution followed a succeeded action
    remediated, rolled_back = set(), set()
    resolved_at = {f.incident.id: f.incident.resolved_at for f in resolved}
    for r in _in_chunks(
        session,
        RemediationRequest,
        RemediationRequest.incident_id,
        ids,
        RemediationRequest.status == RequestStatus.SUCCEEDED.value,
    ):
        end = resolved_at.get(r.incident_id)
        if end is None or (r.finished_at is not None and r.finished_at > end):
            continue
        remediated.add(r.incident_id)
        if (r.action or {}).get("type") == ROLLBACK_ACTION:
            rolled_back.add(r.incident_id)

    return KpiReport(
        since=since,
        until=until,
        service=service,
        incidents=len(incidents),
        open_incidents=sum(i.status != IncidentStatus.RESOLVED.value for i in incidents),
        resolved_incidents=len(resolved),
        resolved_before_opened=before_open,
        change_events=_count_changes(session, since, until, service),
        flapping_incidents=sum(
            bool(f.incident.flapping) or any(a.flap_count for a in f.alerts) for f in facts
        ),
        mttd=Durations.of([_seconds(f.impact_start, f.detection) for f in facts]),
        mtta=Durations.of(
            [
                max(_seconds(f.detection, f.incident.acknowledged_at), 0.0)
                for f in facts
                if f.incident.acknowledged_at is not None
            ]
        ),
        mttr=Durations.of(
            [
                max(_seconds(f.impact_start, f.incident.resolved_at), 0.0)
                for f in resolved
                if f.incident.resolved_at is not None
            ]
        ),
        mttr_from_detection=Durations.of(mttr_det),
        funnel=Funnel(deliveries, unique_alerts, len(incidents), noise_reduction(deliveries, len(incidents))),
        auto_triaged=Rate.of(auto_triaged, len(incidents)),
        runbook_suggested=len(suggested),
        auto_remediated=Rate.of(len(remediated & set(resolved_at)), len(resolved)),
        model=_model_kpis(session, facts, rolled_back, since, until, service),
        by_service={
            svc: report(session, since=since, until=until, service=svc)
            for svc in sorted({i.service for i in incidents if i.service})
        }
        if per_service
        else {},
    )


def _count_changes(session: Session, since: datetime, until: datetime, service: str | None) -> int:
    q = select(ChangeEvent.id).where(ChangeEvent.occurred_at >= since, ChangeEvent.occurred_at < until)
    if service is not None:
        q = q.where(ChangeEvent.service == service)
    return len(list(session.scalars(q)))


def _model_kpis(
    session: Session,
    facts: list[_Facts],
    rolled_back: set[int],
    since: datetime,
    until: datetime,
    service: str | None,
) -> ModelKpis:
    models = [f for f in facts if f.incident.model_name]
    drift = [
        _seconds(a.starts_at, a.first_seen_at)
        for f in models
        for a in f.alerts
        if a.model is not None and a.starts_at is not None
    ]
    q = select(ChangeEvent).where(
        ChangeEvent.kind == ChangeKind.MODEL_PROMOTION.value,  # registrations are not promotions
        ChangeEvent.occurred_at >= since,
        ChangeEvent.occurred_at < until,
    )
    if service is not None:
        q = q.where(ChangeEvent.service == service)
    promotions = list(session.scalars(q))
    lead = [
        _seconds(p.registered_at, p.occurred_at)
        for p in promotions
        if p.registered_at is not None and p.occurred_at >= p.registered_at
    ]
    model_ids = [f.incident.id for f in models]
    linked: set[int] = set()
    if model_ids:
        links = list(
            session.execute(
                select(IncidentLink.incident_id, IncidentLink.linked_incident_id).where(
                    or_(
                        IncidentLink.incident_id.in_(model_ids),
                        IncidentLink.linked_incident_id.in_(model_ids),
                    )
                )
            )
        )
        others = {b if a in model_ids else a for a, b in links}
        infra = (
            set(
                session.scalars(
                    select(Incident.id).where(
                        Incident.id.in_(others), Incident.model_name.is_(None), Incident.kind != CHANGE_KIND
                    )
                )
            )
            if others
            else set()
        )
        for a, b in links:
            if a in model_ids and b in infra:
                linked.add(a)
            if b in model_ids and a in infra:
                linked.add(b)
    rollbacks = len(rolled_back & set(model_ids))
    return ModelKpis(
        model_incidents=len(models),
        drift_detection_latency=Durations.of([max(d, 0.0) for d in drift]),
        rollbacks=rollbacks,
        promotions=len(promotions),
        rollback_rate=rollbacks / len(promotions) if promotions else None,
        lead_time=Durations.of(lead),
        linked_to_infra=Rate.of(len(linked), len(models)),
    )


def last(
    session: Session,
    *,
    period: timedelta,
    now: datetime | None = None,
    service: str | None = None,
    per_service: bool = False,
) -> KpiReport:
    now = now or utcnow()
    return report(session, since=now - period, until=now, service=service, per_service=per_service)


# ---- series for the chart and the digest --------------------------------------------------------


@dataclass
class Daily:
    days: list[date]
    by_severity: dict[str, list[int]]  # severity -> incidents opened per day
    mtta_median_s: list[float | None]
    mttr_median_s: list[float | None]  # impact start -> resolved, by day opened


def daily(session: Session, *, since: datetime, until: datetime, service: str | None = None) -> Daily:
    facts = _facts(session, _incidents(session, since, until, service))
    days = [(since + timedelta(days=n)).date() for n in range((until.date() - since.date()).days + 1)]
    index = {d: n for n, d in enumerate(days)}
    sev: dict[str, list[int]] = {}
    ack: dict[int, list[float]] = defaultdict(list)
    res: dict[int, list[float]] = defaultdict(list)
    for f in facts:
        n = index[f.incident.created_at.date()]
        sev.setdefault(f.incident.severity, [0] * len(days))[n] += 1
        if f.incident.acknowledged_at is not None:
            ack[n].append(max(_seconds(f.detection, f.incident.acknowledged_at), 0.0))
        if f.incident.resolved_at is not None:
            res[n].append(max(_seconds(f.impact_start, f.incident.resolved_at), 0.0))
    return Daily(
        days,
        sev,
        [median(ack[n]) if ack[n] else None for n in range(len(days))],
        [median(res[n]) if res[n] else None for n in range(len(days))],
    )


def top_recurring(
    session: Session, *, since: datetime, until: datetime, limit: int = 5
) -> list[tuple[str, str, int]]:
    """(service, title, incidents) for the titles that opened most often in the period, most first."""
    counts = Counter((i.service or "-", i.title) for i in _incidents(session, since, until, None))
    return [(s, t, n) for (s, t), n in counts.most_common(limit) if n > 1]
