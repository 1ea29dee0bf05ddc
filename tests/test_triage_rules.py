"""Triage rules on the real database (SQLite and PostgreSQL): flapping, a person's resolve while the
source fires, grouping by content, model ↔ infra links, change events, noise counts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.advisor import query_for
from bot.advice.context import ContextFinder
from bot.intake.alerts import Alert, AlertKind, AlertStatus, ModelInfo, Severity
from bot.intake.changes import Change, record
from bot.kernel.db import transaction
from bot.kernel.models import AlertRecord, ChangeEvent, ChangeKind, Incident, IncidentLink
from bot.triage import noise
from bot.triage.engine import Triage
from bot.triage.policy import TriageOutcome, TriagePolicy
from incident_bot.cli.main import main

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = TriagePolicy(
    flap_window=30 * MIN,
    flap_threshold=2,
    reopen_grace=10 * MIN,
    model_services={"fraud-model": "fraud-scoring"},
)


def fire(
    name: str = "HighLatency",
    *,
    status: str = "firing",
    service: str | None = "checkout",
    summary: str = "",
    fp: str | None = None,
    kind: AlertKind = AlertKind.INFRA,
    model: ModelInfo | None = None,
    labels: dict[str, str] | None = None,
    source: str = "generic",
    starts_at: datetime | None = None,
) -> Alert:
    return Alert(
        source=source,
        name=name,
        status=AlertStatus(status),
        severity=Severity.HIGH,
        service=service,
        summary=summary,
        labels=labels or {},
        source_fingerprint=fp,
        kind=kind,
        model=model,
        starts_at=starts_at,
    )


def run(sessions: sessionmaker[Session], triage: Triage, *alerts: Alert, at: datetime) -> TriageOutcome:
    with transaction(sessions) as s:
        return triage.ingest(session=s, alerts=list(alerts), payload_id=None, now=at)


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def incident(sessions: sessionmaker[Session], incident_id: int) -> Incident:
    with sessions() as s:
        row = s.get(Incident, incident_id)
        assert row is not None
        s.expunge(row)
        return row


def test_flapping_alert_stays_one_incident_and_is_marked(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    first = run(sessions, triage, fire(fp="a"), at=T0)
    assert first.created == [1]
    assert run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + 2 * MIN).resolved == [1]
    again = run(sessions, triage, fire(fp="a"), at=T0 + 4 * MIN)
    assert (
        again.created == [] and again.updated == [1] and again.flaps == 1
    )  # re-opened in place: no new page
    assert (
        incident(sessions, 1).status == "open" and not incident(sessions, 1).flapping
    )  # 1 flap < threshold 2
    run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + 6 * MIN)
    run(sessions, triage, fire(fp="a"), at=T0 + 8 * MIN)
    inc = incident(sessions, 1)
    assert count(sessions, Incident) == 1 and inc.status == "open" and inc.flapping
    with sessions() as s:
        rec = s.scalars(select(AlertRecord)).one()
        assert (rec.delivery_count, rec.flap_count, rec.repeat_count) == (5, 2, 0)


def test_refire_after_the_flap_window_is_a_new_incident(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    run(sessions, triage, fire(fp="a"), at=T0)
    run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + MIN)
    later = run(sessions, triage, fire(fp="a"), at=T0 + 45 * MIN)
    assert later.created == [2] and later.flaps == 0


def test_person_resolve_while_source_fires_reopens_same_incident_after_grace(
    sessions: sessionmaker[Session],
) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    run(sessions, triage, fire(fp="a"), at=T0)
    with transaction(sessions) as s:  # what IncidentService.resolve writes for a click on Resolve
        row = s.get(Incident, 1)
        assert row is not None
        row.status, row.resolved_by, row.resolved_at = "resolved", "U0ANA", T0 + MIN
    within_grace = run(sessions, triage, fire(fp="a"), at=T0 + 5 * MIN)  # Alertmanager's resend
    assert within_grace.created == [] and within_grace.updated == [] and within_grace.duplicates == 1
    assert incident(sessions, 1).status == "resolved"
    past_grace = run(sessions, triage, fire(fp="a"), at=T0 + 15 * MIN)
    assert past_grace.created == [] and past_grace.updated == [1]
    inc = incident(sessions, 1)
    assert count(sessions, Incident) == 1 and inc.status == "open" and inc.resolved_by is None
    assert inc.triage_note is not None and "still firing 14 min after the resolve by U0ANA" in inc.triage_note
    # the source resolving later resolves that same incident
    assert run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + 20 * MIN).resolved == [1]


def test_late_resolve_repeats_are_duplicates_not_orphans(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    run(sessions, triage, fire(fp="a"), at=T0)
    run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + MIN)
    again = run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + 5 * MIN)
    assert (again.duplicates, again.orphans) == (1, 0)
    forgotten = run(sessions, triage, fire(fp="a", status="resolved"), at=T0 + 3 * 60 * MIN)  # > dedup window
    assert (forgotten.duplicates, forgotten.orphans) == (0, 1)


def test_free_text_alerts_group_by_content_template(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    a = run(sessions, triage, fire("disk 91% on db-7", service="storage", fp="1"), at=T0)
    b = run(sessions, triage, fire("disk 93% on db-3", service="storage", fp="2"), at=T0 + MIN)
    assert a.created == [1] and b.created == [] and b.updated == [1] and b.grouped == 1
    reason = incident(sessions, 1).grouping_reason
    assert reason == "grouped: same template <disk <*>% on <*>>"
    other = run(sessions, triage, fire("payment gateway timeout", service="storage", fp="3"), at=T0 + 2 * MIN)
    assert other.created == [2]  # a different event never joins
    elsewhere = run(sessions, triage, fire("disk 95% on db-9", service="search", fp="4"), at=T0 + 3 * MIN)
    assert elsewhere.created == [3]  # same text, other service: its own incident
    late = run(sessions, triage, fire("disk 97% on db-1", service="storage", fp="5"), at=T0 + 40 * MIN)
    assert late.created == [4]  # outside the group window


def test_grouping_by_group_key_and_attributes_is_explained(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    keyed = Alert(
        source="alertmanager",
        name="PoolExhausted",
        status=AlertStatus.FIRING,
        service="checkout",
        group_key='{}:{alertname="PoolExhausted"}',
        labels={"pod": "a"},
    )
    run(sessions, triage, keyed, at=T0)
    run(sessions, triage, replace(keyed, labels={"pod": "b"}), at=T0 + MIN)
    assert (
        incident(sessions, 1).grouping_reason
        == 'grouped: alertmanager groupKey {}:{alertname="PoolExhausted"}'
    )
    run(sessions, triage, fire("CPUHigh", fp="x", labels={"host": "1"}), at=T0)
    run(sessions, triage, fire("CPUHigh", fp="y", labels={"host": "2"}), at=T0 + MIN)
    assert (
        incident(sessions, 2).grouping_reason
        == "grouped: same service checkout and alert name CPUHigh within 30 min"
    )


def test_model_and_infra_incidents_link_both_ways(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    infra = run(sessions, triage, fire("HighLatency", service="fraud-scoring", fp="lat"), at=T0)
    drift = Alert(
        source="model",
        name="psi_drift threshold breached",
        status=AlertStatus.FIRING,
        kind=AlertKind.MODEL,
        model=ModelInfo(name="fraud-model", metric="psi_drift", value=0.3),
    )
    model = run(sessions, triage, drift, at=T0 + 5 * MIN)
    assert model.created == [2] and 1 in model.updated  # the infra message is updated with the link
    inc = incident(sessions, 2)
    assert (inc.model_name, inc.model_service, inc.service) == (
        "fraud-model",
        "fraud-scoring",
        "fraud-scoring",
    )
    with sessions() as s:
        ctx2 = ContextFinder(change_window=60 * MIN, model_services={})(s, s.get(Incident, 2))  # type: ignore[arg-type]
        ctx1 = ContextFinder(change_window=60 * MIN, model_services={})(s, s.get(Incident, 1))  # type: ignore[arg-type]
    assert [link.text for link in ctx2.links] == ["may be caused by #1 HighLatency on fraud-scoring"]
    assert [link.text for link in ctx1.links] == [
        "may be affecting model fraud-model (#2 psi_drift threshold breached)"
    ]
    assert infra.created == [1] and count(sessions, IncidentLink) == 2


def test_infra_incident_after_model_incident_links_too_with_payload_serving_service(
    sessions: sessionmaker[Session],
) -> None:
    triage = Triage(window=30 * MIN, policy=TriagePolicy())  # no mapping: the payload names the service
    drift = Alert(
        source="model",
        name="auc below threshold",
        status=AlertStatus.FIRING,
        kind=AlertKind.MODEL,
        service="churn-api",
        model=ModelInfo(name="churn", metric="auc", value=0.6),
    )
    run(sessions, triage, drift, at=T0)
    later = run(sessions, triage, fire("5xx rate high", service="churn-api", fp="err"), at=T0 + 10 * MIN)
    assert later.created == [2] and later.updated == [1]
    with sessions() as s:
        pairs = {
            (link.incident_id, link.linked_incident_id, link.reason.split(":")[0])
            for link in s.scalars(select(IncidentLink))
        }
    assert pairs == {(1, 2, "may be caused by"), (2, 1, "may be affecting")}
    unrelated = run(sessions, triage, fire("5xx rate high", service="billing", fp="b"), at=T0 + 11 * MIN)
    assert unrelated.created == [3] and count(sessions, IncidentLink) == 2


def test_change_sent_as_alert_is_a_change_not_an_incident(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    out = run(
        sessions,
        triage,
        fire("Deploy", kind=AlertKind.CHANGE, labels={"version": "1.42", "actor": "ana"}),
        at=T0,
    )
    assert out.created == [] and out.changes == [1] and count(sessions, Incident) == 0
    with sessions() as s:
        change = s.scalars(select(ChangeEvent)).one()
        assert (change.kind, change.service, change.version, change.actor) == (
            "deploy",
            "checkout",
            "1.42",
            "ana",
        )


def test_incident_shows_changes_in_the_window_before_it(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        record(
            s,
            Change(
                kind=ChangeKind.DEPLOY,
                title="deploy",
                service="checkout",
                version="1.42",
                actor="ana",
                occurred_at=T0 - 4 * MIN,
            ),
            source="changes",
        )
        record(
            s,
            Change(kind=ChangeKind.CONFIG, title="old", service="checkout", occurred_at=T0 - 90 * MIN),
            source="changes",
        )  # outside the 60 min window
        record(
            s,
            Change(kind=ChangeKind.DEPLOY, title="other", service="billing", occurred_at=T0 - MIN),
            source="changes",
        )  # another service
        record(
            s,
            Change(
                kind=ChangeKind.MODEL_PROMOTION,
                title="promote",
                model_name="fraud-model",
                version="7",
                occurred_at=T0 - 10 * MIN,
            ),
            source="changes",
        )  # a model that fraud-scoring serves
    triage = Triage(window=30 * MIN, policy=POLICY)
    run(sessions, triage, fire("PoolExhausted", fp="p", starts_at=T0), at=T0 + MIN)
    run(sessions, triage, fire("HighLatency", service="fraud-scoring", fp="f", starts_at=T0), at=T0 + MIN)
    finder = ContextFinder(change_window=60 * MIN, model_services=POLICY.model_services)
    with sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None
        ctx = finder(s, inc)
        assert [c.text for c in ctx.changes] == ["started 4 min after deploy checkout v1.42 by @ana"]
        assert "started 4 min after deploy checkout v1.42 by @ana" in query_for(inc, ctx).text
        served = finder(s, s.get(Incident, 2))  # type: ignore[arg-type]
        assert [c.text for c in served.changes] == ["started 10 min after model promotion fraud-model v7"]


def test_noise_counts_per_source_and_service(
    sessions: sessionmaker[Session],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    now = datetime.now(UTC) - 2 * 60 * MIN
    a, b = fire("CPUHigh", fp="a", labels={"h": "1"}), fire("CPUHigh", fp="b", labels={"h": "2"})
    run(sessions, triage, a, b, at=now)  # 2 deliveries, 1 incident, 1 grouped
    run(
        sessions, triage, a, fire("CPUHigh", fp="b", summary="worse", labels={"h": "2"}), at=now + MIN
    )  # 1 dup, 1 update
    run(
        sessions,
        triage,
        fire("CPUHigh", fp="a", status="resolved"),
        fire("CPUHigh", fp="b", status="resolved"),
        at=now + 2 * MIN,
    )  # 2 deliveries, incident resolved
    run(sessions, triage, a, at=now + 3 * MIN)  # 1 flap, re-opened in place
    run(sessions, triage, fire("Deploy", kind=AlertKind.CHANGE), at=now + 4 * MIN)  # a change, not a delivery
    run(sessions, triage, fire("DiskFull", service="billing", source="alertmanager", fp="d"), at=now)
    with sessions() as s:
        rep = noise.report(s, since=now - 60 * MIN, until=datetime.now(UTC))
    generic = next(g for g in rep["groups"] if g["source"] == "generic")
    assert {k: generic[k] for k in noise.COUNTERS} == {
        "deliveries": 7,
        "duplicates": 1,
        "flaps_suppressed": 1,
        "grouped": 1,
        "incidents_opened": 1,
        "changes": 1,
        "orphaned_resolves": 0,
    }
    assert generic["service"] == "checkout" and generic["noise_reduction"] == round(1 - 1 / 7, 4)
    assert rep["totals"]["deliveries"] == 8 and rep["totals"]["incidents_opened"] == 2
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["noise", "--since", "7d", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"] == rep["totals"] and len(printed["groups"]) == 2
    assert main(["noise", "--since", "soon"]) == 2
    assert main(["noise", "--since", "12h"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "8 deliveries, 1 duplicates, 1 flaps suppressed, 1 grouped, 2 incidents" in lines[0]
    assert lines[1].split()[:2] == ["generic", "checkout"]


def test_truncated_alerts_follow_the_groups_latest_batch(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)
    keyed = Alert(
        source="alertmanager",
        name="PoolExhausted",
        status=AlertStatus.FIRING,
        service="checkout",
        group_key="{}:{}",
        labels={"pod": "a"},
        truncated_alerts=2,
    )
    run(sessions, triage, keyed, at=T0)
    assert incident(sessions, 1).truncated_alerts == 2
    out = run(sessions, triage, replace(keyed, truncated_alerts=0), at=T0 + MIN)
    assert out.duplicates == 1 and out.updated == [1]  # same alert, but the message must drop the note
    assert incident(sessions, 1).truncated_alerts == 0


def test_no_link_outside_the_correlation_window(sessions: sessionmaker[Session]) -> None:
    triage = Triage(window=30 * MIN, policy=POLICY)  # correlation window 60 min
    run(sessions, triage, fire("HighLatency", service="fraud-scoring", fp="lat"), at=T0)
    drift = Alert(
        source="model",
        name="drift",
        status=AlertStatus.FIRING,
        kind=AlertKind.MODEL,
        model=ModelInfo(name="fraud-model", metric="psi", value=0.3),
    )
    assert run(sessions, triage, drift, at=T0 + 2 * 60 * MIN).created == [2]
    assert count(sessions, IncidentLink) == 0
