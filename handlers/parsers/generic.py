"""incident-bot's own generic JSON alert format -> ``Alert`` list.

Body: one alert object, or ``{"alerts": [object, ...]}``. An object::

    {
      "name": "Checkout latency high",     # required, non-empty
      "status": "firing",                  # "firing" (default) | "resolved"
      "kind": "infra",                     # "infra" (default) | "change" (deploys, config pushes)
      "severity": "critical",              # any common spelling, see Severity.parse
      "service": "checkout",
      "summary": "...", "description": "...",
      "labels": {"env": "prod"},           # values converted to text, nulls dropped
      "annotations": {"runbook": "..."},
      "fingerprint": "abc123",             # your own stable id for this alert
      "group_key": "...", "url": "https://...",
      "starts_at": "2024-05-01T12:00:00Z", # RFC 3339 (no offset = UTC) or Unix epoch s/ms
      "ends_at": null
    }

A deploy is sent as ``{"name": "Deploy", "kind": "change", "service": "api",
"labels": {"version": "1.4.2"}}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from bot.intake.alerts import Alert, AlertKind, AlertStatus, Severity
from bot.kernel.config import Settings
from handlers.parsers._common import LooseMap, Text, Timestamp, WireModel, or_none, validate_batch
from handlers.parsers.mapping import FieldMap
from handlers.parsers.source import Rewrite, Source


class GenericAlert(WireModel):
    name: Annotated[Text, Field(min_length=1)]
    status: Literal["firing", "resolved"] = "firing"
    kind: Literal["infra", "change"] = "infra"
    severity: Text | None = None
    service: Text | None = None
    summary: Text | None = None
    description: Text | None = None
    labels: LooseMap = Field(default_factory=dict)
    annotations: LooseMap = Field(default_factory=dict)
    fingerprint: Text | None = None
    group_key: Text | None = None
    starts_at: Timestamp = None
    ends_at: Timestamp = None
    url: Text | None = None


def parse_generic(body: Any) -> list[Alert]:
    """Parse a generic-format body (already JSON-decoded)."""
    return [_to_alert(item) for item in validate_batch(GenericAlert, body)]


def _to_alert(item: GenericAlert) -> Alert:
    return Alert(
        source="generic",
        name=item.name,
        status=AlertStatus(item.status),
        severity=Severity.parse(item.severity),
        service=or_none(item.service),
        summary=item.summary or "",
        description=item.description or "",
        labels=item.labels,
        annotations=item.annotations,
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        group_key=or_none(item.group_key),
        source_fingerprint=or_none(item.fingerprint),
        url=or_none(item.url),
        kind=AlertKind(item.kind),
    )


def field_map(settings: Settings) -> Rewrite | None:
    """With ``GENERIC_FIELD_MAP`` set, a foreign body is first rewritten into the generic format
    (handlers/parsers/mapping.py); a bad map raises ``ValueError`` when the edge is built."""
    return FieldMap(settings.generic_field_map).apply if settings.generic_field_map else None


SOURCE = Source("generic", parse_generic, prepare=field_map)
