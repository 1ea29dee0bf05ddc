"""The KPI figures as Prometheus gauges: a custom prometheus-client Collector that computes them from the
database at scrape time (cached for ``ttl`` seconds), so /metrics and the slash command never disagree.
Every KPI of the catalogue (bot/reports/catalogue.py) is exported by its unit: durations and rates share
families labelled ``kpi``; a count or a bare ratio is a gauge named after it.

Bounded labels: ``service`` is ``""`` (everything), one of the first ``max_services`` services seen (by
their first incident, so the set does not churn), or ``"other"``: every incident of the services beyond the
cap and of none. "other" is the whole minus the named services, so it carries what adds up (counts, rate
numerators and denominators and their ratio, duration samples and their mean) and no median, p90 or
bare ratio. Cost is bounded the same way: ``max_services + 1`` reports per window and scrape.

Exported once: the figures are of the whole database, so only the replica holding the ``kpi-gauges``
lease (``exporter``) exports them; every replica exports ``incident_bot_kpi_exporter`` (1 on that one),
so ``sum()`` over replicas counts each incident once. The lease is renewed at scrape time, so the holder
is always a replica that Prometheus scrapes; if it goes away another takes over once the lease lapses.

Register it once from the composition root: ``REGISTRY.register(KpiCollector(sessions))``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db_types import utcnow
from bot.kernel.models import Incident
from bot.kernel.periods import parse_period
from bot.reports import catalogue
from bot.reports.catalogue import Kpi, Unit
from bot.reports.kpi import Durations, Rate, last

log = logging.getLogger(__name__)
P = "incident_bot_kpi_"
OTHER = "other"
DEFAULT_MAX_SERVICES = 20


class KpiCollector(Collector):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        windows: tuple[str, ...] = ("7d", "30d"),
        ttl: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        max_services: int = DEFAULT_MAX_SERVICES,
        exporter: Callable[[], bool] | None = None,
    ) -> None:
        self._sessions = sessions
        self._windows = {w: parse_period(w) for w in windows}
        self._ttl = ttl
        self._clock = clock
        self._max_services = max_services
        self._exporter = exporter  # None: this process is the only one (tests, a single replica)
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # no database query when registering; names are known only at scrape time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self._ttl:
                try:
                    exporting = self._exporter() if self._exporter is not None else True
                    families = self._build() if exporting else []
                except SQLAlchemyError as exc:  # the database is away: /metrics still serves the rest
                    log.warning("KPI gauges not exported: database unavailable (%s)", type(exc).__name__)
                    exporting, families = False, []
                flag = GaugeMetricFamily(
                    P + "exporter",
                    "1 on the replica that exports the KPI gauges (it holds the kpi-gauges lease), else 0",
                    value=1.0 if exporting else 0.0,
                )
                self._cached = (time.monotonic(), [flag, *families])
            yield from self._cached[1]

    def services(self, session: Session) -> list[str]:
        """The services that get series of their own: the first ``max_services`` seen."""
        first = func.min(Incident.id)
        q = (
            select(Incident.service)
            .where(Incident.service.is_not(None))
            .group_by(Incident.service)
            .order_by(first)
            .limit(self._max_services)
        )
        return [s for s in session.scalars(q) if s]

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
                P + "duration_samples",
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
            named = self.services(session)
            for window, period in self._windows.items():
                overall = last(session, period=period, now=now)
                parts = [last(session, period=period, now=now, service=svc) for svc in named]
                for k in kpis:
                    whole = k.value(overall)
                    f.add(k, [window, ""], whole)
                    values = [k.value(r) for r in parts]
                    for svc, v in zip(named, values, strict=True):
                        f.add(k, [window, svc], v)
                    f.add(k, [window, OTHER], _rest(k, whole, values))
        return [*f.own.values(), f.dur, f.dur_n, f.rate, f.num, f.den]


def _rest(k: Kpi, whole: Any, parts: list[Any]) -> Any:
    """The KPI's value for "other" (the whole minus the named services), where it adds up; else None."""
    if k.unit is Unit.COUNT:
        return None if whole is None else max(0, whole - sum(p or 0 for p in parts))
    if k.unit is Unit.RATE:
        num = max(0, whole.numerator - sum(p.numerator for p in parts))
        den = max(0, whole.denominator - sum(p.denominator for p in parts))
        return Rate.of(min(num, den), den)
    if k.unit is Unit.SECONDS:
        n = max(0, whole.count - sum(p.count for p in parts))
        total = (whole.mean_s or 0.0) * whole.count - sum((p.mean_s or 0.0) * p.count for p in parts)
        return Durations(n, max(0.0, total / n) if n else None, None, None)
    return None  # a bare ratio does not add up


@dataclass
class _Families:
    own: dict[str, GaugeMetricFamily]  # a gauge per COUNT and RATIO KPI, named after it
    dur: GaugeMetricFamily  # SECONDS KPIs by ``kpi`` and ``stat``
    dur_n: GaugeMetricFamily
    rate: GaugeMetricFamily  # RATE KPIs by ``kpi``, with their counts
    num: GaugeMetricFamily
    den: GaugeMetricFamily

    def add(self, k: Kpi, lv: list[str], v: Any) -> None:
        if v is None:  # an undefined ratio (0/0), or a statistic "other" cannot have, is absent, not 0
            return
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
        else:
            self.own[k.name].add_metric(lv, float(v))
