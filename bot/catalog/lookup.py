"""The catalog as the rest of the bot uses it: an incident's probable origin and what it is probably
affecting (read from the database at render time), the incidents to re-render when a related one opens,
an incident's priority, and the owner group of a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import networkx as nx
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog.loader import CatalogSource
from bot.catalog.model import Catalog, Service
from bot.catalog.origin import Analysis, OriginParams, Signal, _hops, _lead
from bot.catalog.priority import priority
from bot.intake.alerts import AlertKind
from bot.kernel.models import Incident

MAX_SIGNALS = 200  # incidents looked at per render (newest first); a storm beyond that is not one cascade


@dataclass(frozen=True)
class RelatedNote:
    incident_id: int
    service: str
    title: str
    status: str
    summary: str  # "2 hops upstream, started 4 min earlier" (plain, unescaped)


@dataclass(frozen=True)
class OriginNote:
    """What an incident message says about other services' incidents (plain text, escaped by the builder)."""

    origin: RelatedNote | None = None
    origin_reasons: list[str] = field(default_factory=list)
    affecting: list[RelatedNote] = field(default_factory=list)
    affecting_reasons: list[str] = field(default_factory=list)


class ServiceCatalog:
    def __init__(self, source: CatalogSource, params: OriginParams | None = None) -> None:
        self.source = source
        self.params = params or OriginParams()

    @property
    def catalog(self) -> Catalog:
        return self.source.current()

    def service(self, name: str | None) -> Service | None:
        return self.catalog.get(name)

    def priority_of(self, incident: Incident) -> int:
        return priority(incident.severity, self.service(incident.service))

    def owner_group(self, service: str | None) -> str | None:
        s = self.service(service)
        return s.owner_group if s else None

    # ---- origin ---------------------------------------------------------------------------------
    def _analysis(self, session: Session, incident: Incident) -> Analysis | None:
        catalog = self.catalog
        if not incident.service or incident.service not in catalog:
            return None
        start = _start(incident)
        graph = catalog.graph
        hops = self.params.max_hops
        down = set(nx.single_source_shortest_path_length(graph, incident.service, cutoff=hops))
        near: set[str] = set(down)  # its dependencies, and whatever else depends on them (their callers)
        rev = graph.reverse(copy=False)
        for d in down:
            near.update(nx.single_source_shortest_path_length(rev, d, cutoff=hops))
        window = self.params.window
        rows = session.scalars(
            select(Incident)
            .where(
                Incident.service.in_(sorted(near)),
                Incident.kind != AlertKind.CHANGE.value,
                Incident.last_alert_at >= start - window,
            )
            .order_by(Incident.id.desc())
            .limit(MAX_SIGNALS)
        ).all()
        rows = [r for r in rows if _start(r) <= start + window]
        if incident.id not in {r.id for r in rows}:
            rows.append(incident)
        signals = [Signal(r.id, r.service or "", _start(r), r.title) for r in rows]
        return Analysis(graph, signals, self.params)

    def note(self, session: Session, incident: Incident) -> OriginNote | None:
        """The probable origin of ``incident`` and what it is probably affecting, or None (no connected
        service alerting within the window)."""
        analysis = self._analysis(session, incident)
        if analysis is None:
            return None
        titles = {
            r.id: r for r in session.scalars(select(Incident).where(Incident.id.in_(list(analysis.signals))))
        }
        origin = analysis.origin_of(incident.id)
        affected = analysis.affected_by(incident.id)
        if origin is None and not affected:
            return None

        def related(key: int, service: str, summary: str) -> RelatedNote:
            row = titles.get(key)
            return RelatedNote(key, service, row.title if row else "", row.status if row else "", summary)

        note = OriginNote()
        if origin is not None:
            o = origin.origin.signal
            note = OriginNote(origin=related(o.key, o.service, origin.summary), origin_reasons=origin.reasons)
        if affected:
            me = analysis.scores[incident.id]
            reasons = [
                f"{me.dependents} of {me.related} related alerting incidents depend on {incident.service}"
            ]
            if me.alerting_deps == 0:
                reasons.append("none of its own dependencies is alerting")
            note = OriginNote(
                origin=note.origin,
                origin_reasons=note.origin_reasons,
                affecting=[
                    related(a.signal.key, a.signal.service, f"{_hops(a.hops)} downstream, {_lead(-a.lead)}")
                    for a in affected
                ],
                affecting_reasons=reasons,
            )
        return note

    def related_ids(self, session: Session, incident_id: int) -> list[int]:
        """Incidents whose message may change now that ``incident_id`` opened (connected and in the window)."""
        incident = session.get(Incident, incident_id)
        if incident is None:
            return []
        analysis = self._analysis(session, incident)
        if analysis is None or incident_id not in analysis.signals:
            return []
        return sorted(o.key for o in analysis.related(analysis.signals[incident_id]))


def _start(incident: Incident) -> datetime:
    start = incident.first_alert_at or incident.created_at
    assert start is not None  # created_at has a default; set on every stored row
    return start if start.tzinfo else start.replace(tzinfo=UTC)
