"""The value types retrieval works on. Kept stable: bot/ and benchmarks depend on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Document:
    """A past ticket or RCA note. ``id`` is the external id (ticket key)."""

    id: str
    title: str
    text: str
    service: str | None = None
    root_cause: str | None = None
    resolution: str | None = None
    created_at: datetime | None = None
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # alert_name, labels, model, source, ...


@dataclass
class Query:
    text: str
    service: str | None = None
    alert_name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    now: datetime | None = None
    exclude_ids: frozenset[str] = frozenset()


@dataclass
class Match:
    id: str
    title: str
    score: float
    why: list[str]
    document: Document
    features: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": round(self.score, 4), "why": self.why}
