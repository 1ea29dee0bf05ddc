"""The probable origin across services: pure functions of the dependency graph and the alerting incidents.

Two incidents are related when one's service depends on the other's (a path of at most ``max_hops`` edges in
the catalog graph, networkx) and they started within ``window`` of each other; services that are not
connected are never related, however close in time. Each alerting incident gets a score as the origin of
what it is related to:

- ``cover``: the share of its related incidents that depend on it (a broken dependency explains its callers),
- ``count``: how many incidents depend on it, relative to the most any incident in the set explains,
- ``root``: none of its own dependencies is alerting (else it is more likely a victim itself),
- ``early``: the share of its related incidents that started after it (ties count half).

An incident's probable origin is the best-scored incident among those its service depends on, when that
one outscores the incident itself. The benchmark (benchmarks/origin.py) ranks with these same functions;
the weights were chosen there on the tuning topology only (see benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import networkx as nx


@dataclass(frozen=True)
class Signal:
    """An alerting incident (or, in the benchmark, a simulated alert) on one service."""

    key: int
    service: str
    started_at: datetime
    label: str = ""  # e.g. the incident title; not used for scoring


@dataclass(frozen=True)
class OriginParams:
    window: timedelta = timedelta(minutes=30)
    max_hops: int = 6
    w_cover: float = 1.0
    w_count: float = 1.0  # chosen on the tuning topology (benchmarks/origin.py --tune; benchmarks/README.md)
    w_root: float = 0.5
    w_early: float = 0.5


@dataclass(frozen=True)
class Scored:
    signal: Signal
    score: float
    dependents: int  # related incidents whose service depends on this one's
    related: int  # related incidents, either direction
    alerting_deps: int  # related incidents this one's service depends on


@dataclass(frozen=True)
class Origin:
    """The probable origin of an incident, seen from that incident."""

    origin: Scored
    hops: int
    lead: timedelta  # how much earlier the origin started (negative: later)
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """ "2 hops upstream, started 4 min earlier" """
        return f"{_hops(self.hops)} upstream, {_lead(self.lead)}"


@dataclass(frozen=True)
class Affected:
    """An incident that names this one as its probable origin."""

    signal: Signal
    hops: int
    lead: timedelta  # how much later it started than the origin


class Analysis:
    """Scores for one set of signals over one graph (distances computed once per signal's service)."""

    def __init__(self, graph: nx.DiGraph, signals: Sequence[Signal], params: OriginParams | None = None):
        self.params = params or OriginParams()
        self.signals = {s.key: s for s in signals if s.service in graph}
        self._down: dict[str, dict[str, int]] = {}
        for s in self.signals.values():
            if s.service not in self._down:
                lengths = nx.single_source_shortest_path_length(graph, s.service, cutoff=self.params.max_hops)
                self._down[s.service] = {t: d for t, d in lengths.items() if d > 0}
        raw = {k: self._score(s) for k, s in self.signals.items()}
        most = max((x.dependents for x in raw.values()), default=0)
        self.scores = {
            k: replace(x, score=x.score + self.params.w_count * x.dependents / most) if most else x
            for k, x in raw.items()
        }

    def hops(self, caller: Signal, dependency: Signal) -> int | None:
        """Edges from ``caller``'s service down to ``dependency``'s, if it depends on it (within max_hops)."""
        return self._down.get(caller.service, {}).get(dependency.service)

    def _close(self, a: Signal, b: Signal) -> bool:
        return abs(a.started_at - b.started_at) <= self.params.window

    def related(self, s: Signal) -> list[Signal]:
        return [
            o
            for o in self.signals.values()
            if o.key != s.key
            and self._close(s, o)
            and (self.hops(s, o) is not None or self.hops(o, s) is not None)
        ]

    def _score(self, s: Signal) -> Scored:
        p = self.params
        rel = self.related(s)
        dependents = sum(1 for o in rel if self.hops(o, s) is not None)
        deps = sum(1 for o in rel if self.hops(s, o) is not None)
        later = sum(
            1.0 if o.started_at > s.started_at else 0.5 if o.started_at == s.started_at else 0.0 for o in rel
        )
        n = max(1, len(rel))
        score = p.w_cover * dependents / n + p.w_root * (deps == 0) + p.w_early * later / n
        return Scored(s, score, dependents, len(rel), deps)

    def rank(self) -> list[Scored]:
        """Every signal, most probable origin first (ties: earlier start, then key)."""
        return sorted(self.scores.values(), key=lambda x: (-x.score, x.signal.started_at, x.signal.key))

    def origin_of(self, key: int) -> Origin | None:
        """The probable origin of incident ``key``: the best-scored incident its service depends on, when it
        scores above the incident itself; None when nothing connected alerts (or it is its own origin)."""
        s = self.signals.get(key)
        if s is None:
            return None
        upstream = [o for o in self.related(s) if self.hops(s, o) is not None]
        if not upstream:
            return None
        best = min(
            (self.scores[o.key] for o in upstream),
            key=lambda x: (-x.score, x.signal.started_at, x.signal.key),
        )
        if best.score <= self.scores[key].score:
            return None
        hops = self.hops(s, best.signal) or 0
        lead = s.started_at - best.signal.started_at
        reasons = [
            f"{_hops(hops)} upstream ({s.service} depends on {best.signal.service})",
            _lead(lead),
            f"{best.dependents} of {best.related} related alerting incidents depend on it",
        ]
        if best.alerting_deps == 0:
            reasons.append("none of its own dependencies is alerting")
        return Origin(best, hops, lead, reasons)

    def affected_by(self, key: int) -> list[Affected]:
        """The incidents whose probable origin is ``key``, nearest first."""
        s = self.signals.get(key)
        if s is None:
            return []
        out = []
        for o in self.related(s):
            found = self.origin_of(o.key)
            if found is not None and found.origin.signal.key == key:
                out.append(Affected(o, found.hops, found.lead))
        return sorted(out, key=lambda a: (a.hops, a.signal.started_at, a.signal.key))


def _hops(n: int) -> str:
    return f"{n} hop{'s' if n != 1 else ''}"


def _lead(lead: timedelta) -> str:
    minutes = round(abs(lead.total_seconds()) / 60)
    if minutes == 0:
        return "started within a minute of it" if lead else "started at the same time"
    return f"started {minutes} min {'earlier' if lead > timedelta(0) else 'later'}"
