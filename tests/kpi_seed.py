"""The seeded KPI case: 8 incidents with known impact start, detection, acknowledgement and resolution.

Rows are written directly with the intended semantics (delivery counts, flaps, change events apart),
so the KPI definitions are pinned independently of triage. Times are minutes after each incident's
impact start. The hand-computed figures are in tests/test_kpi.py.

 #  service   sev       alerts: (starts, first seen, deliveries)            ack   resolved  notes
 1  checkout  critical  (0, 3, 3) (1, 4, 1)                                  5     10        runbook offerable; failed webhook
 2  payments  warning   (0, 6, 1)                                            10    15        runbook offerable, 👎
 3  recsys    warning   model (0, 9, 2), infra (2, 12, 1)                    10    25        model recsys-model; k8s_restart ok @24; runbook not offerable
 4  checkout  critical  (0, 12, 1)                                           17    30        webhook ok @31 (after resolve); runbook without the key
 5  fraud     critical  model (0, 20, 3)                                     23    36.4      model fraud-model; mlflow_rollback ok @35; linked to #4; offerable + 👍
 6  search    warning   (0, 25, 1) source's end (20) before first delivery   -     20        resolved before opened
 7  payments  warning   (0, 33, 3) flap_count 1                              39    40        flapping; runbook offerable
 8  checkout  critical  (0, 55.2, 1) (1, 56, 1) (2, 57, 1)                   -     -         open
Also: 3 model promotions (lead times 90 min, 30 min, unknown), 1 deploy, an old "change" incident, and an
incident before the period; none of these is an incident of the period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.kernel.models import (
    AlertRecord,
    ChangeEvent,
    Feedback,
    Incident,
    IncidentLink,
    RemediationRequest,
    Suggestion,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # day 0 of the seeded week
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 9, tzinfo=UTC)


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def add_incident(
    session: Session,
    *,
    base: datetime,
    service: str,
    severity: str,
    title: str,
    alerts: list[dict[str, Any]],
    ack: float | None = None,
    resolved: float | None = None,
    model: str | None = None,
    kind: str = "infra",
    flapping: bool = False,
    created: float | None = None,
) -> Incident:
    first_seen = min(a["seen"] for a in alerts)
    inc = Incident(
        title=title,
        severity=severity,
        service=service,
        source="alertmanager",
        kind=kind,
        status="resolved" if resolved is not None else ("acknowledged" if ack is not None else "open"),
        group_key=f"{service}:{title}:{base.isoformat()}",
        model_name=model,
        flapping=flapping,
        created_at=base + m(first_seen if created is None else created),
        first_alert_at=base + m(first_seen),
        acknowledged_at=base + m(ack) if ack is not None else None,
        acknowledged_by="U0ONCALL1" if ack is not None else None,
        resolved_at=base + m(resolved) if resolved is not None else None,
    )
    session.add(inc)
    session.flush()
    for n, a in enumerate(alerts):
        session.add(
            AlertRecord(
                incident_id=inc.id,
                fingerprint=f"{inc.id}-{n}",
                content_hash="h",
                source="alertmanager",
                name=a.get("name", title),
                status=a.get("status", "resolved" if resolved is not None else "firing"),
                severity=severity,
                service=service,
                starts_at=base + m(a["starts"]),
                first_seen_at=base + m(a["seen"]),
                last_seen_at=base + m(a["seen"]),
                delivery_count=a.get("deliveries", 1),
                flap_count=a.get("flaps", 0),
                repeat_count=a.get("deliveries", 1) - 1,
                model={"name": model, "version": "7", "metric": "psi", "value": 0.3, "threshold": 0.2}
                if a.get("model")
                else None,
            )
        )
    session.flush()
    return inc


def runbook(session: Session, inc: Incident, rb: str, offerable: float | None) -> None:
    features = {"rule": 1.0} if offerable is None else {"rule": 1.0, "offerable": offerable}
    session.add(
        Suggestion(
            incident_id=inc.id,
            target_kind="runbook",
            target_id=rb,
            rank=0,
            score=0.9,
            why=["rule"],
            features=features,
        )
    )


def feedback(session: Session, inc: Incident, rb: str, helpful: bool) -> None:
    session.add(
        Feedback(
            incident_id=inc.id, target_kind="runbook", target_id=rb, user_id="U0ONCALL2", helpful=helpful
        )
    )


def action(session: Session, inc: Incident, kind: str, status: str, finished: datetime) -> None:
    session.add(
        RemediationRequest(
            incident_id=inc.id,
            runbook_id="rb",
            action_id=kind,
            action_title=kind,
            action={"id": kind, "type": kind},
            approvers=["U0SRELEAD"],
            requested_by="U0ONCALL1",
            status=status,
            decided_at=finished - m(1),
            finished_at=finished,
        )
    )


def seed(session: Session) -> dict[int, Incident]:
    """The 8 incidents of the issue's case, plus what must not count. Returns them by case number."""
    day = timedelta(days=1)
    b = {n: T0 + day * ((n - 1) // 2) + timedelta(hours=2 * n) for n in range(1, 9)}
    inc = {
        1: add_incident(
            session,
            base=b[1],
            service="checkout",
            severity="critical",
            title="Checkout 5xx",
            alerts=[{"starts": 0, "seen": 3, "deliveries": 3}, {"starts": 1, "seen": 4}],
            ack=5,
            resolved=10,
        ),
        2: add_incident(
            session,
            base=b[2],
            service="payments",
            severity="warning",
            title="Payments latency",
            alerts=[{"starts": 0, "seen": 6}],
            ack=10,
            resolved=15,
        ),
        3: add_incident(
            session,
            base=b[3],
            service="recsys",
            severity="warning",
            title="recsys-model drift",
            model="recsys-model",
            alerts=[
                {"starts": 0, "seen": 9, "deliveries": 2, "model": True},
                {"starts": 2, "seen": 12, "name": "FeatureStoreStale"},
            ],
            ack=10,
            resolved=25,
        ),
        4: add_incident(
            session,
            base=b[4],
            service="checkout",
            severity="critical",
            title="Checkout latency",
            alerts=[{"starts": 0, "seen": 12}],
            ack=17,
            resolved=30,
        ),
        5: add_incident(
            session,
            base=b[5],
            service="fraud",
            severity="critical",
            title="fraud-model drift",
            model="fraud-model",
            alerts=[{"starts": 0, "seen": 20, "deliveries": 3, "model": True}],
            ack=23,
            resolved=36.4,
        ),
        6: add_incident(
            session,
            base=b[6],
            service="search",
            severity="warning",
            title="Search errors",
            alerts=[{"starts": 0, "seen": 25, "status": "resolved"}],
            resolved=20,
        ),
        7: add_incident(
            session,
            base=b[7],
            service="payments",
            severity="warning",
            title="Payments latency",
            alerts=[{"starts": 0, "seen": 33, "deliveries": 3, "flaps": 1}],
            ack=39,
            resolved=40,
            flapping=True,
        ),
        8: add_incident(
            session,
            base=b[8],
            service="checkout",
            severity="critical",
            title="Checkout 5xx",
            alerts=[{"starts": 0, "seen": 55.2}, {"starts": 1, "seen": 56}, {"starts": 2, "seen": 57}],
        ),
    }
    runbook(session, inc[1], "db-connection-pool", 1.0)
    runbook(session, inc[2], "kafka-consumer-lag", 1.0)
    feedback(session, inc[2], "kafka-consumer-lag", False)
    runbook(session, inc[3], "feature-store-staleness", 0.0)
    runbook(session, inc[4], "pod-oomkilled", None)
    runbook(session, inc[5], "model-drift-rollback", 1.0)
    feedback(session, inc[5], "model-drift-rollback", True)
    runbook(session, inc[7], "kafka-consumer-lag", 1.0)
    action(session, inc[1], "webhook", "failed", b[1] + m(8))
    action(session, inc[3], "k8s_restart", "succeeded", b[3] + m(24))
    action(session, inc[4], "webhook", "succeeded", b[4] + m(31))
    action(session, inc[5], "mlflow_rollback", "succeeded", b[5] + m(35))
    session.add(
        IncidentLink(incident_id=inc[5].id, linked_incident_id=inc[4].id, reason="fraud serves checkout")
    )
    for name, version, serving, lead in (
        ("fraud-model", "7", T0 + m(30), 90),
        ("recsys-model", "12", T0 + day, 30),
        ("fraud-model", "8", T0 + 2 * day, None),
    ):
        session.add(
            ChangeEvent(
                source="mlflow",
                kind="model_promotion",
                service=None,
                model_name=name,
                version=version,
                title=f"{name} v{version} to Production",
                occurred_at=serving,
                registered_at=serving - m(lead) if lead is not None else None,
            )
        )
    session.add(
        ChangeEvent(
            source="github", kind="deploy", service="checkout", title="checkout v2.3", occurred_at=T0 + m(10)
        )
    )
    # an old row where triage opened an incident for a change event: not an incident
    add_incident(
        session,
        base=T0 + m(5),
        service="checkout",
        severity="info",
        title="Deploy checkout v2.3",
        kind="change",
        alerts=[{"starts": 0, "seen": 0}],
        resolved=0,
    )
    # before the period
    add_incident(
        session,
        base=SINCE - 3 * day,
        service="checkout",
        severity="critical",
        title="Checkout 5xx",
        alerts=[{"starts": 0, "seen": 1}],
        ack=2,
        resolved=3,
    )
    session.flush()
    return inc
