"""The KPI figures as Prometheus gauges: a custom prometheus-client Collector that computes them from the
database at scrape time (cached for ``ttl`` seconds), so /metrics and the slash command never disagree.

Register it once from the composition root: ``REGISTRY.register(KpiCollector(sessions))``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db_types import utcnow
from bot.reports.kpi import Durations, KpiReport, Rate, last, parse_period

P = "incident_bot_kpi_"


class KpiCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], *, windows: tuple[str, ...] = ("7d", "30d"),
                 ttl: float = 60.0, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._windows = {w: parse_period(w) for w in windows}
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # no database query when registering; names are known only at scrape time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self._ttl:
                self._cached = (time.monotonic(), self._build())
            yield from self._cached[1]

    def _build(self) -> list[GaugeMetricFamily]:
        labels = ["window", "service"]
        g = {name: GaugeMetricFamily(P + name, doc, labels=labels) for name, doc in (
            ("incidents", "Incidents opened in the window (change events excluded)"),
            ("open_incidents", "Incidents opened in the window and not resolved"),
            ("resolved_before_opened", "Incidents resolved before the bot opened them (counted in MTTR)"),
            ("change_events", "Change events in the window (not incidents)"),
            ("alert_deliveries", "Alert deliveries, repeats, updates and flaps included"),
            ("unique_alerts", "Unique alerts"),
            ("noise_reduction_ratio", "1 - incidents / alert deliveries"),
            ("model_incidents", "Incidents about a model"),
            ("model_rollbacks", "Model incidents resolved after a succeeded mlflow_rollback"),
            ("model_promotions", "Model promotion change events"),
            ("model_rollback_ratio", "model_rollbacks / model_promotions"),
        )}
        dur = GaugeMetricFamily(P + "duration_seconds", "Duration KPIs (mttd, mtta, mttr, mttr_from_detection, "
                                "drift_detection_latency, model_lead_time) by statistic", labels=[*labels, "kpi", "stat"])
        dur_n = GaugeMetricFamily(P + "duration_count", "Incidents (or alerts, promotions) behind each duration KPI",
                                  labels=[*labels, "kpi"])
        rate = GaugeMetricFamily(P + "rate_ratio", "Rate KPIs (auto_triaged, auto_remediated, model_linked_to_infra)",
                                 labels=[*labels, "kpi"])
        num = GaugeMetricFamily(P + "rate_numerator", "Numerator of each rate KPI", labels=[*labels, "kpi"])
        den = GaugeMetricFamily(P + "rate_denominator", "Denominator of each rate KPI", labels=[*labels, "kpi"])
        now = self._clock()
        with self._sessions() as session:
            for window, period in self._windows.items():
                overall = last(session, period=period, now=now, per_service=True)
                for svc, r in [("", overall), *overall.by_service.items()]:
                    lv = [window, svc]
                    _scalars(g, lv, r)
                    for kpi, d in (("mttd", r.mttd), ("mtta", r.mtta), ("mttr", r.mttr),
                                   ("mttr_from_detection", r.mttr_from_detection),
                                   ("drift_detection_latency", r.model.drift_detection_latency),
                                   ("model_lead_time", r.model.lead_time)):
                        _durations(dur, dur_n, [*lv, kpi], d)
                    for kpi, x in (("auto_triaged", r.auto_triaged), ("auto_remediated", r.auto_remediated),
                                   ("model_linked_to_infra", r.model.linked_to_infra)):
                        _rate(rate, num, den, [*lv, kpi], x)
        return [*g.values(), dur, dur_n, rate, num, den]


def _scalars(g: dict[str, GaugeMetricFamily], lv: list[str], r: KpiReport) -> None:
    values: dict[str, float | None] = {
        "incidents": r.incidents, "open_incidents": r.open_incidents, "resolved_before_opened": r.resolved_before_opened,
        "change_events": r.change_events, "alert_deliveries": r.funnel.deliveries,
        "unique_alerts": r.funnel.unique_alerts, "noise_reduction_ratio": r.funnel.noise_reduction,
        "model_incidents": r.model.model_incidents, "model_rollbacks": r.model.rollbacks,
        "model_promotions": r.model.promotions, "model_rollback_ratio": r.model.rollback_rate,
    }
    for name, v in values.items():
        if v is not None:  # an undefined ratio (0/0) is absent, not 0
            g[name].add_metric(lv, float(v))


def _durations(dur: GaugeMetricFamily, dur_n: GaugeMetricFamily, lv: list[str], d: Durations) -> None:
    dur_n.add_metric(lv, float(d.count))
    for stat, v in (("mean", d.mean_s), ("median", d.median_s), ("p90", d.p90_s)):
        if v is not None:
            dur.add_metric([*lv, stat], v)


def _rate(rate: GaugeMetricFamily, num: GaugeMetricFamily, den: GaugeMetricFamily, lv: list[str], r: Rate) -> None:
    num.add_metric(lv, float(r.numerator))
    den.add_metric(lv, float(r.denominator))
    if r.value is not None:
        rate.add_metric(lv, r.value)
