"""The KPI figures as Prometheus gauges: a custom prometheus-client Collector that computes them from the
database at scrape time (cached for ``ttl`` seconds), so /metrics and the slash command never disagree.
Every KPI of the catalogue (bot/reports/catalogue.py) is exported by its unit: durations and rates share
families labelled ``kpi``; a count or a bare ratio is a gauge named after it.

Register it once from the composition root: ``REGISTRY.register(KpiCollector(sessions))``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db_types import utcnow
from bot.kernel.periods import parse_period
from bot.reports import catalogue
from bot.reports.catalogue import Kpi, Unit
from bot.reports.kpi import last

P = "incident_bot_kpi_"


class KpiCollector(Collector):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        windows: tuple[str, ...] = ("7d", "30d"),
        ttl: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
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
        kpis = [k for k in catalogue.KPIS if k.metric]
        durations = [k.name for k in kpis if k.unit is Unit.SECONDS]
        rates = [k.name for k in kpis if k.unit is Unit.RATE]
        labels = ["window", "service"]
        f = _Families(
            own={
                k.name: GaugeMetricFamily(P + k.name, k.doc, labels=labels)
                for k in kpis
                if k.unit in (Unit.COUNT, Unit.RATIO)
            },
            dur=GaugeMetricFamily(
                P + "duration_seconds",
                f"Duration KPIs ({', '.join(durations)}) by statistic",
                labels=[*labels, "kpi", "stat"],
            ),
            dur_n=GaugeMetricFamily(
                P + "duration_count",
                "Incidents (or alerts, promotions) behind each duration KPI",
                labels=[*labels, "kpi"],
            ),
            rate=GaugeMetricFamily(
                P + "rate_ratio", f"Rate KPIs ({', '.join(rates)})", labels=[*labels, "kpi"]
            ),
            num=GaugeMetricFamily(
                P + "rate_numerator", "Numerator of each rate KPI", labels=[*labels, "kpi"]
            ),
            den=GaugeMetricFamily(
                P + "rate_denominator", "Denominator of each rate KPI", labels=[*labels, "kpi"]
            ),
        )
        now = self._clock()
        with self._sessions() as session:
            for window, period in self._windows.items():
                overall = last(session, period=period, now=now, per_service=True)
                for svc, r in [("", overall), *overall.by_service.items()]:
                    for k in kpis:
                        f.add(k, [window, svc], k.value(r))
        return [*f.own.values(), f.dur, f.dur_n, f.rate, f.num, f.den]


@dataclass
class _Families:
    own: dict[str, GaugeMetricFamily]  # a gauge per COUNT and RATIO KPI, named after it
    dur: GaugeMetricFamily  # SECONDS KPIs by ``kpi`` and ``stat``
    dur_n: GaugeMetricFamily
    rate: GaugeMetricFamily  # RATE KPIs by ``kpi``, with their counts
    num: GaugeMetricFamily
    den: GaugeMetricFamily

    def add(self, k: Kpi, lv: list[str], v: Any) -> None:
        if k.unit is Unit.SECONDS:
            self.dur_n.add_metric([*lv, k.name], float(v.count))
            for stat, x in (("mean", v.mean_s), ("median", v.median_s), ("p90", v.p90_s)):
                if x is not None:
                    self.dur.add_metric([*lv, k.name, stat], x)
        elif k.unit is Unit.RATE:
            self.num.add_metric([*lv, k.name], float(v.numerator))
            self.den.add_metric([*lv, k.name], float(v.denominator))
            if v.value is not None:
                self.rate.add_metric([*lv, k.name], v.value)
        elif v is not None:  # an undefined ratio (0/0) is absent, not 0
            self.own[k.name].add_metric(lv, float(v))
