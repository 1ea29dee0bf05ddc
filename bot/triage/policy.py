"""What triage is told (its windows and thresholds) and what it answers (the outcome of a batch), and the two
pure decisions every replica must take alike: an alert's group key and the service its incident is filed under."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.intake.alerts import Alert


@dataclass(frozen=True)
class TriagePolicy:
    """The windows and thresholds of triage (settings, built once)."""

    group_window: timedelta = timedelta(minutes=30)
    flap_window: timedelta = timedelta(minutes=30)
    flap_threshold: int = 2  # re-fires after a resolve before an incident is marked flapping
    dedup_window: timedelta = timedelta(minutes=60)
    reopen_grace: timedelta = timedelta(minutes=10)
    correlation_window: timedelta = timedelta(minutes=60)
    change_window: timedelta = timedelta(minutes=60)
    model_services: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any) -> TriagePolicy:
        m = timedelta(minutes=1)
        return cls(
            group_window=settings.group_window_minutes * m,
            flap_window=settings.flap_window_minutes * m,
            flap_threshold=settings.flap_threshold,
            dedup_window=settings.dedup_window_minutes * m,
            reopen_grace=settings.reopen_grace_minutes * m,
            correlation_window=settings.correlation_window_minutes * m,
            change_window=settings.change_window_minutes * m,
            model_services=dict(settings.model_services),
        )

    def serving_service(self, alert: Alert) -> str | None:
        """The service serving a model alert's model: the payload's, else the MODEL_SERVICES mapping."""
        if alert.model is None:
            return None
        return alert.service or self.model_services.get(alert.model.name)


@dataclass
class Reopened:
    """A person's Resolve that the source undid: the incident re-opened because its alert still fires."""

    incident_id: int
    resolved_by: str
    source: str
    minutes: int  # since the person's resolve


@dataclass
class TriageOutcome:
    """What one batch did to incidents; drives what is posted or updated in Slack."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    duplicates: int = 0
    orphans: int = 0  # resolved alerts for which no open incident exists
    flaps: int = 0  # re-fires after a resolve absorbed into the same incident
    grouped: int = 0  # new alerts that joined an existing incident
    changes: list[int] = field(default_factory=list)  # change events recorded (never incidents)
    reopened: list[Reopened] = field(default_factory=list)  # told in the thread, mentioning the resolver
    chat_due: bool = True  # set by the service: False when none of its chat messages is due yet (no wake)

    @property
    def incident_ids(self) -> list[int]:
        seen: dict[int, None] = {}
        for i in [*self.created, *self.updated, *self.resolved]:
            seen[i] = None
        return list(seen)

    def touch(self, incident_id: int) -> None:
        if incident_id not in self.updated and incident_id not in self.created:
            self.updated.append(incident_id)


def group_key_for(alert: Alert) -> str:
    """Alertmanager/Grafana group keys win; otherwise service + alert name (+ model)."""
    if alert.group_key:
        key = f"{alert.source}:{alert.group_key}"
    else:
        model = f"|model={alert.model.name}" if alert.model else ""
        key = f"svc={alert.service or '-'}|name={alert.name}{model}"
    if len(key) > 400:  # fits the column; long keys stay distinct by their hash
        key = key[:330] + "#" + hashlib.sha256(key.encode()).hexdigest()
    return key


def incident_service(alert: Alert, policy: TriagePolicy) -> str | None:
    """The service an alert's incident is filed under (a model alert: its serving service, else the model)."""
    service = policy.serving_service(alert) if alert.model else alert.service
    if service is None and alert.model is not None:
        service = alert.model.name
    return service[:200] if service else None
