"""Is this new, rare or frequent for its service? Counted from past incidents and the knowledge base.

An earlier occurrence is
- a past incident on the same service (none: the incidents without a service) that had an alert of the same
  name, opened before this one started (change events and this incident itself are not occurrences);
- a knowledge-base record (an imported ticket or an RCA note) about the same service whose title or text names
  one of this incident's alerts; an RCA note written for a past incident already counted is not counted twice.

Labels, over the ``WINDOW`` (90 days) before the incident started (documented in the README):
- **new**: no occurrence in the window ("first time this has been seen", or "not seen in 90 days, last on …");
- **rare**: 1 or 2 (``RARE_MAX``) occurrences in the window;
- **frequent**: 3 or more.
The counts behind the label are always shown. Computed at render time from indexed lookups (incidents by
service, alerts by incident, documents by service), like the rest of the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.kernel.models import AlertRecord, Incident, KnowledgeDocument

WINDOW = timedelta(days=90)
RARE_MAX = 2  # occurrences in the window up to which it is "rare"; above, "frequent"
MAX_NAMES = 10  # alert names of one incident looked up
MAX_DOCS = 500  # knowledge-base candidates of one service read
CHANGE_KIND = "change"  # incidents.kind of old rows that were change events


@dataclass(frozen=True)
class Novelty:
    label: str  # new | rare | frequent
    service: str | None
    incidents: int  # past incidents in the window
    documents: int  # knowledge-base records in the window
    last_seen: date | None  # the latest earlier occurrence, of any age
    older: int  # occurrences before the window (or undated records)

    @property
    def occurrences(self) -> int:
        return self.incidents + self.documents

    @property
    def text(self) -> str:
        """ "rare for checkout: happened 2 times in 90 days, last on 2026-11-02 (1 past incident, 1 knowledge-base
        record)" (plain, unescaped)."""
        where = f" for {self.service}" if self.service else ""
        days = WINDOW.days
        if self.occurrences == 0:
            if self.last_seen is None and self.older == 0:
                return f"new{where}: first time this has been seen"
            last = f", last on {self.last_seen.isoformat()}" if self.last_seen else ""
            return f"new{where}: not seen in {days} days ({self.older} earlier{last})"
        times = "once" if self.occurrences == 1 else f"{self.occurrences} times"
        counts = [
            _plural(self.incidents, "past incident"),
            _plural(self.documents, "knowledge-base record"),
        ]
        last = f", last on {self.last_seen.isoformat()}" if self.last_seen else ""
        return f"{self.label}{where}: happened {times} in {days} days{last} ({', '.join(counts)})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _aware(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=UTC)


def novelty_of(session: Session, incident: Incident) -> Novelty | None:
    """None for an incident without alerts (nothing to compare)."""
    names = sorted({a.name for a in incident.alerts})[:MAX_NAMES]
    start = _aware(incident.first_alert_at or incident.created_at)
    if not names or start is None:
        return None
    since = start - WINDOW
    same_service = (
        Incident.service == incident.service if incident.service is not None else Incident.service.is_(None)
    )
    opened = func.coalesce(Incident.first_alert_at, Incident.created_at)
    past = list(  # the service's incidents first (indexed), then their alerts by incident (indexed)
        session.execute(
            select(Incident.id, opened)
            .join(AlertRecord, AlertRecord.incident_id == Incident.id)
            .where(
                same_service,
                Incident.id != incident.id,
                Incident.kind != CHANGE_KIND,
                opened < start,
                AlertRecord.name.in_(names),
            )
            .distinct()
        )
    )
    seen: list[datetime | None] = [_aware(at) for _, at in past]
    documents: list[datetime | None] = []
    if incident.service is not None:
        counted = {f"incident-{i}" for i, _ in past} | {f"incident-{incident.id}"}  # RCA notes' ids
        mentions = [
            or_(
                func.lower(KnowledgeDocument.title).contains(n.lower(), autoescape=True),
                func.lower(KnowledgeDocument.text).contains(n.lower(), autoescape=True),
            )
            for n in names
        ]
        for external_id, created in session.execute(
            select(KnowledgeDocument.external_id, KnowledgeDocument.created_at)
            .where(KnowledgeDocument.service == incident.service, or_(*mentions))
            .limit(MAX_DOCS)
        ):
            when = _aware(created)
            if external_id not in counted and (when is None or when < start):  # undated: counted as older
                documents.append(when)
    in_window_incidents = sum(1 for t in seen if t is not None and since <= t < start)
    in_window_docs = sum(1 for t in documents if t is not None and since <= t < start)
    dated = [t for t in [*seen, *documents] if t is not None and t < start]
    occurrences = in_window_incidents + in_window_docs
    label = "new" if occurrences == 0 else ("rare" if occurrences <= RARE_MAX else "frequent")
    return Novelty(
        label=label,
        service=incident.service,
        incidents=in_window_incidents,
        documents=in_window_docs,
        last_seen=max(dated).date() if dated else None,
        older=len(seen) + len(documents) - occurrences,
    )
