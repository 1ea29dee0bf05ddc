"""PagerDuty webhook v3 -> ``Alert`` list (one alert per incident event).

Envelope: ``{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client",
"data"}}``. Only events whose ``data`` is an incident (``incident.triggered``,
``.acknowledged``, ``.resolved``, ``.priority_updated``, ``.reopened``, ...) become an alert;
others (``pagey.ping``, notes, responder events, services) are valid but carry no incident
state, so they parse to an empty list and the endpoint can still answer 2xx.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated, Any

from pydantic import Field

from bot.intake.alerts import Alert, AlertStatus, Severity
from handlers.parsers._common import (
    LooseText,
    Text,
    Timestamp,
    WireModel,
    cap_map,
    cap_text,
    require_object,
    validate,
)
from handlers.parsers.source import SignatureAuth, Source

_PRIORITY = re.compile(r"\s*p[1-5]\s*", re.IGNORECASE)


class Reference(WireModel):
    id: LooseText = None
    summary: LooseText = None
    html_url: LooseText = None


class Incident(WireModel):
    id: Annotated[Text, Field(min_length=1)]
    title: Annotated[Text, Field(min_length=1)]
    status: LooseText = None
    urgency: LooseText = None
    priority: Reference | None = None
    service: Reference | None = None
    escalation_policy: Reference | None = None
    assignees: list[Reference] = Field(default_factory=list)
    teams: list[Reference] = Field(default_factory=list)
    html_url: LooseText = None
    number: LooseText = None
    incident_key: LooseText = None
    description: LooseText = None
    created_at: Timestamp = None


class Event(WireModel):
    id: LooseText = None
    event_type: Annotated[Text, Field(min_length=1)]
    resource_type: LooseText = None
    occurred_at: Timestamp = None
    agent: Reference | None = None
    data: dict[str, Any]


class Envelope(WireModel):
    event: Event


def parse_pagerduty(body: Any) -> list[Alert]:
    """Parse a PagerDuty v3 webhook body (already JSON-decoded)."""
    event = validate(Envelope, require_object(body)).event
    if (event.data.get("type") or event.resource_type) != "incident":
        return []
    incident = validate(Incident, event.data, ("event", "data"))
    resolved = incident.status == "resolved" or event.event_type == "incident.resolved"
    priority = incident.priority.summary if incident.priority else None
    service = incident.service.summary if incident.service else None
    labels = {
        "service": service,
        "urgency": incident.urgency,
        "priority": priority,
        "team": _names(incident.teams),
    }
    annotations = {
        "event_type": event.event_type,
        "incident_number": incident.number,
        "incident_key": incident.incident_key,
        "assignees": _names(incident.assignees),
        "escalation_policy": incident.escalation_policy.summary if incident.escalation_policy else None,
        "agent": event.agent.summary if event.agent else None,
    }
    return [
        Alert(
            source="pagerduty",
            name=incident.title,
            status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
            severity=_severity(priority, incident.urgency),
            service=service or None,
            summary=incident.title,
            description=incident.description or "",
            labels=cap_map({k: v for k, v in labels.items() if v}),
            annotations=cap_map({k: v for k, v in annotations.items() if v}),
            starts_at=incident.created_at,
            ends_at=event.occurred_at if resolved else None,
            source_fingerprint=incident.id,
            url=incident.html_url or None,
        )
    ]


def _severity(priority: str | None, urgency: str | None) -> Severity:
    """Priority P1..P5 when set (P1 critical ... P4/P5 info), else urgency high/low."""
    if priority and _PRIORITY.fullmatch(priority):
        return Severity.parse(priority)
    if (urgency or "").lower() == "high":
        return Severity.HIGH
    return Severity.WARNING


def _names(refs: list[Reference]) -> str | None:
    return cap_text(", ".join(r.summary for r in refs if r.summary)) or None


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """PagerDuty v3: ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>``; several
    signatures may be listed, comma-separated (during a secret rotation). Any valid one is enough."""
    if not header:
        return False
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), part.strip().encode()) for part in header.split(","))


SOURCE = Source(
    "pagerduty",
    parse_pagerduty,
    signature=SignatureAuth(
        setting="pagerduty_webhook_secret", header="X-PagerDuty-Signature", verify=signature_ok
    ),
)
