"""The one typed alert every source is normalised into, and its two hashes.

* ``fingerprint`` says *which* alert this is (identity, used for dedup).
* ``content_hash`` says whether anything about it changed (update vs. exact repeat).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """Our four levels, most severe first: the order of the members *is* the severity rank, written down
    nowhere else (an incident takes its worst alert's level; App Home and the KPI chart sort by it)."""

    CRITICAL = "critical"
    HIGH = "high"
    WARNING = "warning"
    INFO = "info"

    @classmethod
    def parse(cls, raw: str | None) -> Severity:
        """Map the many spellings sources use onto our four levels (unknown -> warning)."""
        value = (raw or "").strip().lower()
        aliases = {
            "critical": cls.CRITICAL,
            "crit": cls.CRITICAL,
            "p1": cls.CRITICAL,
            "sev1": cls.CRITICAL,
            "fatal": cls.CRITICAL,
            "page": cls.CRITICAL,
            "emergency": cls.CRITICAL,
            "high": cls.HIGH,
            "error": cls.HIGH,
            "err": cls.HIGH,
            "major": cls.HIGH,
            "p2": cls.HIGH,
            "sev2": cls.HIGH,
            "warning": cls.WARNING,
            "warn": cls.WARNING,
            "medium": cls.WARNING,
            "p3": cls.WARNING,
            "sev3": cls.WARNING,
            "minor": cls.WARNING,
            "info": cls.INFO,
            "low": cls.INFO,
            "p4": cls.INFO,
            "p5": cls.INFO,
            "none": cls.INFO,
            "informational": cls.INFO,
            "ok": cls.INFO,
        }
        return aliases.get(value, cls.WARNING)

    @property
    def rank(self) -> int:
        """0 for the most severe."""
        return _SEVERITY_RANK[self]

    @classmethod
    def rank_of(cls, value: str) -> int:
        """The rank of a stored severity string (a column value); one we do not know sorts after all four."""
        return _SEVERITY_RANK.get(value, len(_SEVERITY_RANK))


_SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(Severity)}  # a member hashes as its string


class AlertKind(StrEnum):
    INFRA = "infra"
    MODEL = "model"
    CHANGE = "change"


@dataclass(frozen=True)
class ModelInfo:
    """What an ML-model monitor tells us about the model behind an alert."""

    name: str
    version: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    owner: str | None = None


# Labels that change between evaluations of the same alert and must not change its identity.
VOLATILE_LABELS = frozenset({"value", "__value__", "timestamp"})


@dataclass(frozen=True)
class Alert:
    source: str
    name: str
    status: AlertStatus
    severity: Severity = Severity.WARNING
    service: str | None = None
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    group_key: str | None = None
    source_fingerprint: str | None = None
    url: str | None = None
    kind: AlertKind = AlertKind.INFRA
    model: ModelInfo | None = None
    # Alerts the source had but did not send in this batch (Alertmanager's ``truncatedAlerts``, when
    # ``max_alerts`` cuts a group): the same count on every alert of the batch; not part of either hash.
    truncated_alerts: int = 0

    # Both hashes are computed once per alert (an alert is not changed after it is built: the dataclass is
    # frozen and nothing mutates its label dicts); triage reads them several times per delivery. Copy an
    # alert with ``dataclasses.replace`` (fields only), never through ``__dict__``, which holds the cache.
    @cached_property
    def fingerprint(self) -> str:
        """Identity: source + the source's own id if it has one, else name + stable labels."""
        if self.source_fingerprint:
            basis: object = [self.source, self.source_fingerprint]
        else:
            labels = {k: v for k, v in sorted(self.labels.items()) if k not in VOLATILE_LABELS}
            model = [self.model.name, self.model.metric] if self.model else None
            basis = [self.source, self.name, self.service, labels, model]
        return _sha256(basis)

    @cached_property
    def content_hash(self) -> str:
        """Everything a human would call a change: status, severity, text, values."""
        model = None
        if self.model:
            model = [self.model.version, self.model.value, self.model.threshold, self.model.owner]
        basis = [
            self.status.value,
            self.severity.value,
            self.summary,
            self.description,
            sorted(self.labels.items()),
            sorted(self.annotations.items()),
            self.ends_at.isoformat() if self.ends_at else None,
            model,
        ]
        return _sha256(basis)

    @property
    def title(self) -> str:
        return self.summary or self.name

    def search_text(self) -> str:
        """Text used to look for similar past incidents."""
        parts = [self.name, self.summary, self.description]
        if self.model:
            parts.append(f"model {self.model.name} metric {self.model.metric}")
        return "\n".join(p for p in parts if p)


def _sha256(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
