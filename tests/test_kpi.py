"""Each KPI definition pinned to hand-computed figures on the seeded case (tests/kpi_seed.py), on SQLite
and PostgreSQL, plus the edge cases: no incidents, an open incident, a resolve-before-open, a flap, a
change event."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db import transaction
from bot.kernel.periods import parse_period
from bot.reports import catalogue
from bot.reports.kpi import KpiReport, percentile, report
from tests.kpi_seed import SINCE, T0, UNTIL, add_incident, m, seed

MIN = 60.0


def approx_min(x: float | None) -> float:
    assert x is not None
    return pytest.approx(x / MIN, abs=1e-9)  # type: ignore[no-any-return]


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> KpiReport:
    with transaction(sessions) as s:
        seed(s)
    with sessions() as s:
        return report(s, since=SINCE, until=UNTIL, per_service=True)


def test_mttd_impact_start_to_first_delivery(seeded: KpiReport) -> None:
    # impact start (earliest starts_at) -> first alert received, minutes:
    # #1 3, #2 6, #3 9, #4 12, #5 20, #6 25, #7 33, #8 55.2 (the open one counts too)
    # sum 163.2 / 8 = 20.4; median (12 + 20) / 2 = 16; p90 at rank 0.9*7 = 6.3: 33 + 0.3*(55.2-33) = 39.66
    d = seeded.mttd
    assert d.count == 8
    assert approx_min(d.mean_s) == 20.4 and approx_min(d.median_s) == 16 and approx_min(d.p90_s) == 39.66


def test_mtta_detection_to_first_ack(seeded: KpiReport) -> None:
    # #1 5-3=2, #2 10-6=4, #3 10-9=1, #4 17-12=5, #5 23-20=3, #7 39-33=6; #6 and #8 never acknowledged
    # mean 21/6 = 3.5, median (3+4)/2 = 3.5, p90 at rank 4.5 of [1..6]: 5.5
    d = seeded.mtta
    assert d.count == 6
    assert approx_min(d.mean_s) == 3.5 and approx_min(d.median_s) == 3.5 and approx_min(d.p90_s) == 5.5


def test_mttr_from_impact_start_and_from_detection(seeded: KpiReport) -> None:
    # impact start -> resolved: #1 10, #2 15, #3 25, #4 30, #5 36.4, #6 20, #7 40 (#8 open)
    # sum 176.4 / 7 = 25.2; sorted 10 15 20 25 30 36.4 40: median 25, p90 rank 5.4: 36.4 + 0.4*3.6 = 37.84
    assert seeded.mttr.count == 7
    assert approx_min(seeded.mttr.mean_s) == 25.2
    assert approx_min(seeded.mttr.median_s) == 25 and approx_min(seeded.mttr.p90_s) == 37.84
    # detection -> resolved: 7, 9, 16, 18, 16.4, #6 resolved 5 min before detection -> 0 (counted), 7
    # sum 73.4 / 7; sorted 0 7 7 9 16 16.4 18: median 9, p90 rank 5.4: 16.4 + 0.4*1.6 = 17.04
    d = seeded.mttr_from_detection
    assert d.count == 7 and approx_min(d.mean_s) == pytest.approx(73.4 / 7)
    assert approx_min(d.median_s) == 9 and approx_min(d.p90_s) == 17.04
    assert seeded.resolved_before_opened == 1
    assert (seeded.incidents, seeded.resolved_incidents, seeded.open_incidents) == (8, 7, 1)


def test_noise_funnel(seeded: KpiReport) -> None:
    # deliveries: #1 3+1, #2 1, #3 2+1, #4 1, #5 3 (model alert re-sent with new values), #6 1,
    # #7 3 (fire, resolve, fire again = a flap), #8 1+1+1 = 19; unique alerts 2+1+2+1+1+1+1+3 = 12;
    # incidents 8 (the flap is not a new incident; the "change" row is not an incident)
    # noise reduction = 1 - 8/19 = 11/19 = 57.9%
    f = seeded.funnel
    assert (f.deliveries, f.unique_alerts, f.incidents) == (19, 12, 8)
    assert f.noise_reduction == pytest.approx(11 / 19)


def test_auto_triage_and_auto_remediation(seeded: KpiReport) -> None:
    # a runbook was suggested on #1 #2 #3 #4 #5 #7 (6 incidents); #3's is not offerable (0) and #4's
    # has no "offerable" key (= 0); offerable: #1, #2 (👎), #5 (👍), #7 -> auto-triaged #1 #5 #7 = 3 of 8
    assert seeded.runbook_suggested == 6
    assert (seeded.auto_triaged.numerator, seeded.auto_triaged.denominator) == (3, 8)
    assert seeded.auto_triaged.value == pytest.approx(0.375)
    # succeeded and finished before resolution: #3 (k8s_restart @24 <= 25), #5 (rollback @35 <= 36.4);
    # #4's webhook finished after the resolve (@31 > 30), #1's failed -> 2 of 7 resolved
    assert (seeded.auto_remediated.numerator, seeded.auto_remediated.denominator) == (2, 7)


def test_mlops(seeded: KpiReport) -> None:
    mk = seeded.model
    assert mk.model_incidents == 2
    # drift: model alert starts_at -> received: #3 9 min, #5 20 min; mean = median 14.5, p90 9 + 0.9*11 = 18.9
    assert mk.drift_detection_latency.count == 2
    assert approx_min(mk.drift_detection_latency.mean_s) == 14.5
    assert approx_min(mk.drift_detection_latency.p90_s) == 18.9
    # rollback rate: #5 resolved after a succeeded mlflow_rollback (#3's k8s_restart is not one) / 3 promotions
    assert (mk.rollbacks, mk.promotions) == (1, 3) and mk.rollback_rate == pytest.approx(1 / 3)
    # lead time registered -> serving: 90 and 30 min (the third has no registered_at): mean 60, p90 30+0.9*60 = 84
    assert (
        mk.lead_time.count == 2
        and approx_min(mk.lead_time.mean_s) == 60
        and approx_min(mk.lead_time.p90_s) == 84
    )
    # #5 is linked to the infrastructure incident #4; #3 is not linked: 1 of 2
    assert (mk.linked_to_infra.numerator, mk.linked_to_infra.denominator, mk.linked_to_infra.value) == (
        1,
        2,
        0.5,
    )


def test_change_events_and_flaps_are_not_incidents(seeded: KpiReport) -> None:
    assert seeded.change_events == 4  # 3 promotions + 1 deploy, shown beside the incidents
    assert seeded.flapping_incidents == 1


def test_per_service(seeded: KpiReport) -> None:
    checkout = seeded.by_service["checkout"]
    # #1, #4, #8: MTTD 3, 12, 55.2 -> mean 23.4; MTTR 10, 30 -> 20; deliveries 4 + 1 + 3 = 8
    assert checkout.incidents == 3 and approx_min(checkout.mttd.mean_s) == 23.4
    assert approx_min(checkout.mttr.mean_s) == 20 and checkout.funnel.deliveries == 8
    assert checkout.change_events == 1  # the deploy; promotions carry no service here
    assert set(seeded.by_service) == {"checkout", "payments", "recsys", "fraud", "search"}
    assert sum(r.incidents for r in seeded.by_service.values()) == seeded.incidents


def test_no_incidents(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
    assert r.incidents == 0 and r.mttd.count == 0 and r.mttd.mean_s is None and r.mttr.p90_s is None
    assert r.funnel.noise_reduction is None and r.auto_triaged.value is None and r.model.rollback_rate is None
    assert catalogue.report_json(r)["mttd"] == {"count": 0, "mean_s": None, "median_s": None, "p90_s": None}


def test_open_incident_counts_in_mttd_not_mttr(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_incident(
            s, base=T0, service="a", severity="critical", title="x", alerts=[{"starts": 0, "seen": 4}], ack=6
        )
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
    assert (r.incidents, r.open_incidents, r.mttd.count, r.mtta.count, r.mttr.count) == (1, 1, 1, 1, 0)
    assert approx_min(r.mttd.mean_s) == 4 and approx_min(r.mtta.mean_s) == 2 and r.mttr.mean_s is None


def test_resolve_before_open_is_counted(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:  # ended at 7, delivered (already resolved) at 10
        add_incident(
            s,
            base=T0,
            service="a",
            severity="warning",
            title="x",
            alerts=[{"starts": 0, "seen": 10}],
            resolved=7,
        )
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
    assert r.resolved_before_opened == 1 and r.mttr.count == 1 and r.mttr_from_detection.count == 1
    assert approx_min(r.mttr.mean_s) == 7 and r.mttr_from_detection.mean_s == 0


def test_flap_adds_deliveries_not_incidents(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_incident(
            s,
            base=T0,
            service="a",
            severity="warning",
            title="x",
            flapping=True,
            alerts=[{"starts": 0, "seen": 1, "deliveries": 5, "flaps": 2}],
            ack=2,
            resolved=30,
        )
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
    assert (r.incidents, r.funnel.deliveries, r.funnel.unique_alerts, r.flapping_incidents) == (1, 5, 1, 1)
    assert r.funnel.noise_reduction == pytest.approx(1 - 1 / 5)


def test_change_event_is_not_an_incident(sessions: sessionmaker[Session]) -> None:
    from bot.kernel.models import ChangeEvent

    with transaction(sessions) as s:
        s.add(ChangeEvent(source="github", kind="deploy", service="a", title="deploy", occurred_at=T0))
        add_incident(
            s,
            base=T0,
            service="a",
            severity="info",
            title="deploy",
            kind="change",
            alerts=[{"starts": 0, "seen": 0}],
            resolved=0,
        )
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
    assert (r.incidents, r.change_events, r.funnel.deliveries) == (0, 1, 0)


def test_period_bounds(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        add_incident(
            s,
            base=SINCE - m(10),
            service="a",
            severity="warning",
            title="x",
            alerts=[{"starts": 0, "seen": 9}],
        )
        add_incident(
            s,
            base=SINCE - m(10),
            service="a",
            severity="warning",
            title="y",
            alerts=[{"starts": 0, "seen": 10}],
        )
    with sessions() as s:
        assert report(s, since=SINCE, until=UNTIL).incidents == 1  # opened exactly at `since` is in


def test_percentile_and_period_parsing() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([5], 0.9) == 5
    assert parse_period("30d").days == 30 and parse_period("12h").total_seconds() == 12 * 3600
    with pytest.raises(ValueError, match="7d"):
        parse_period("soon")


def test_model_kpis_from_real_mlflow_webhook_bodies(sessions: sessionmaker[Session]) -> None:
    """MLflow's own example payloads in the envelope its webhook delivery posts (mlflow.webhooks.delivery):
    v1 registered, then the alias moved to it 25 min later. One promotion (the registration is not one), lead
    time 25 min, read through the same parser and recorder as ``POST /changes``."""
    from mlflow.entities.webhook import WebhookEvent
    from mlflow.webhooks.delivery import get_example_payload_for_event

    from bot.intake.changes import record, with_registrations
    from handlers.parsers.changes import parse_changes

    bodies = []
    for entity, at in (("model_version", T0), ("model_version_alias", T0 + m(25))):
        event = WebhookEvent(entity, "created")
        bodies.append(
            {
                "entity": event.entity.value,
                "action": event.action.value,
                "timestamp": at.isoformat(),
                "data": get_example_payload_for_event(event),
            }
        )
    for body in bodies:  # one delivery each, as MLflow sends them
        with sessions() as s:
            changes = with_registrations(s, parse_changes(body))
        with transaction(sessions) as s:
            for change in changes:
                record(s, change, source="changes")
    with sessions() as s:
        mk = report(s, since=SINCE, until=UNTIL).model
    assert mk.promotions == 1 and mk.rollback_rate == 0.0
    assert mk.lead_time.count == 1 and approx_min(mk.lead_time.mean_s) == 25
