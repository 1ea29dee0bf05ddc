"""Noise accounting: per hour, source and service, what arrived and what triage made of it.

**The one noise definition** (``noise_reduction``), used by ``incident-bot noise`` from these counters and by
the KPI report (bot/reports/kpi.py: ``/incident kpi``, ``incident-bot kpi``, ``/metrics``, the chart) from the
alert rows: noise reduction = 1 − incidents opened / deliveries, where a delivery is one alert (firing or
resolved) in a batch that belongs to an alert triage keeps: firsts, exact repeats, content updates, resolves,
flaps. Not deliveries: change events (``changes``) and **orphaned resolves** (``orphaned_resolves``: a resolve
for an alert never seen firing, or forgotten after ``DEDUP_WINDOW_MINUTES``; it belongs to no alert and no
incident, so counting it would lower the noise without anything having been reduced). Both surfaces count the
same events; the KPI report takes the incidents *opened* in a period with all their deliveries, this report
the deliveries that *arrived* in the period's hours, so they agree over any period that holds the incidents'
whole lives and differ only by the deliveries of incidents that straddle its edges.

Triage adds up one batch in memory (``Tally``) and writes it with one upsert per (source, service)
(``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``), so concurrent replicas add up correctly
and the hot path does no per-alert counting query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.kernel.models import NoiseCount

COUNTERS = (
    "deliveries",
    "duplicates",
    "flaps_suppressed",
    "grouped",
    "incidents_opened",
    "changes",
    "orphaned_resolves",
)


@dataclass
class Counts:
    deliveries: int = (
        0  # every alert of a kept alert in every batch: firsts, repeats, updates, flaps, resolves
    )
    duplicates: int = 0  # exact repeats (same fingerprint, same content)
    flaps_suppressed: int = 0  # re-fires after a resolve absorbed into the same incident (no new page)
    grouped: int = 0  # new alerts that joined an existing incident
    incidents_opened: int = 0
    changes: int = 0  # change events (deploys, flags, …) sent as alerts; never incidents
    orphaned_resolves: int = 0  # resolves of no known alert: not deliveries (the module's docstring)


@dataclass
class Tally:
    by_key: dict[tuple[str, str], Counts] = field(default_factory=dict)

    def at(self, source: str, service: str | None) -> Counts:
        key = (source[:32], (service or "")[:200])
        if key not in self.by_key:
            self.by_key[key] = Counts()
        return self.by_key[key]

    def flush(self, session: Session, now: datetime) -> None:
        """One statement for the batch: an executemany of the upsert, in sorted key order (so two
        replicas touching the same rows lock them in the same order)."""
        bucket = now.replace(minute=0, second=0, microsecond=0)
        rows = []
        for (source, service), counts in sorted(self.by_key.items()):
            values = asdict(counts)
            if any(values.values()):
                rows.append({"bucket": bucket, "source": source, "service": service, **values})
        self.by_key.clear()
        if rows:
            session.connection().execute(_upsert(session.get_bind().dialect.name), rows)


def _upsert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (bucket, source, service) DO UPDATE SET n = n + excluded.n``, built once."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        table = cast(Table, NoiseCount.__table__)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(table)
        stmt = base.on_conflict_do_update(
            index_elements=["bucket", "source", "service"],
            set_={c: table.c[c] + base.excluded[c] for c in COUNTERS},
        )
        _UPSERTS[dialect] = stmt
    return stmt


_UPSERTS: dict[str, Any] = {}


def report(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    """The noise report: totals and one row per (source, service), most deliveries first.

    Buckets are hours, so ``since`` is rounded down to its hour.
    """
    start = since.replace(minute=0, second=0, microsecond=0)
    sums = [func.coalesce(func.sum(getattr(NoiseCount, c)), 0).label(c) for c in COUNTERS]
    rows = session.execute(
        select(NoiseCount.source, NoiseCount.service, *sums)
        .where(NoiseCount.bucket >= start, NoiseCount.bucket <= until)
        .group_by(NoiseCount.source, NoiseCount.service)
    ).all()
    groups = []
    for row in rows:
        counts = {c: int(getattr(row, c)) for c in COUNTERS}
        groups.append(
            {
                "source": row.source,
                "service": row.service or None,
                **counts,
                "noise_reduction": _rounded(counts),
            }
        )
    groups.sort(key=lambda g: (-g["deliveries"], g["source"], g["service"] or ""))
    totals = {c: sum(g[c] for g in groups) for c in COUNTERS}
    return {
        "since": start.isoformat(),
        "until": until.isoformat(),
        "totals": {**totals, "noise_reduction": _rounded(totals)},
        "groups": groups,
    }


def noise_reduction(deliveries: int, incidents: int) -> float | None:
    """1 − incidents opened / deliveries: the share of deliveries that did not become a new page (None
    without deliveries). The one definition, for every surface that shows a noise reduction."""
    return 1 - incidents / deliveries if deliveries else None


def _rounded(counts: dict[str, int]) -> float | None:
    value = noise_reduction(counts["deliveries"], counts["incidents_opened"])
    return None if value is None else round(value, 4)
