"""What an incident message shows besides its alerts: changes before it, linked incidents, triage notes.

Built from database state at render time (indexed lookups), as plain data for the pure Block Kit builders
and for the retrieval query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from bot.advice.novelty import Novelty, novelty_of
from bot.catalog.lookup import OriginNote, ServiceCatalog
from bot.intake import changes
from bot.kernel.models import Incident
from bot.triage import correlation


@dataclass(frozen=True)
class ChangeNote:
    text: str  # "started 4 min after deploy checkout v1.42 by @ana" (plain, unescaped)
    url: str | None = None


@dataclass(frozen=True)
class LinkNote:
    relation: str  # correlation.CAUSED_BY | correlation.AFFECTING
    incident_id: int
    title: str
    service: str | None
    model_name: str | None
    status: str

    @property
    def text(self) -> str:
        """ "may be caused by #12 latency on fraud-scoring" / "may be affecting model fraud-model (#13 drift)"."""
        if self.relation == correlation.AFFECTING:
            return f"may be affecting model {self.model_name} (#{self.incident_id} {self.title})"
        return f"{correlation.CAUSED_BY} #{self.incident_id} {self.title} on {self.service}"


@dataclass(frozen=True)
class IncidentContext:
    changes: list[ChangeNote] = field(default_factory=list)
    links: list[LinkNote] = field(default_factory=list)
    origin: OriginNote | None = None  # probable origin / probably affecting (bot/catalog/lookup.py)
    priority: int | None = None  # 1..4 (bot/catalog/priority.py)
    novelty: Novelty | None = None  # new / rare / frequent for its service (bot/advice/novelty.py)

    def query_text(self) -> str:
        """What the retrieval query learns from the context (change reasons, linked incidents)."""
        return "\n".join([*(c.text for c in self.changes), *(link.text for link in self.links)])


class ContextFinder:
    def __init__(
        self,
        *,
        change_window: timedelta,
        model_services: Mapping[str, str],
        catalog: ServiceCatalog | None = None,
    ) -> None:
        self._window = change_window
        self._model_services = dict(model_services)
        self._catalog = catalog

    def __call__(self, session: Session, incident: Incident) -> IncidentContext:
        start = incident.first_alert_at or incident.created_at
        notes = []
        if start is not None:
            for change in changes.changes_before(
                session, incident, window=self._window, model_services=self._model_services
            ):
                notes.append(ChangeNote(changes.describe(change, start), change.url))
        links = []
        for link, other in correlation.links_for(session, incident.id):
            relation = (
                correlation.AFFECTING
                if link.reason.startswith(correlation.AFFECTING)
                else correlation.CAUSED_BY
            )
            links.append(
                LinkNote(relation, other.id, other.title, other.service, other.model_name, other.status)
            )
        novelty = novelty_of(session, incident)
        if self._catalog is None:
            return IncidentContext(notes, links, novelty=novelty)
        origin = self._catalog.note(session, incident)
        return IncidentContext(
            notes, links, origin=origin, priority=self._catalog.priority_of(incident), novelty=novelty
        )
