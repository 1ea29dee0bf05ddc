"""Opsgenie outgoing webhook (the "Webhook" integration's alert action data) -> ``Alert`` list.

Body: ``{"action": "Create", "alert": {...}, "source": {...}, "integrationId", "integrationName"}``.
``alert`` carries ``alertId``, ``alias`` (Opsgenie's own dedup key), ``message``, ``tinyId``,
``tags`` (list), ``teams``, ``priority`` (P1..P5), ``details`` (map), ``entity``, ``source``,
``createdAt`` (epoch ms) and ``updatedAt`` (epoch ns). One action becomes one alert:
``Close`` and ``Delete`` resolve it, every other action (Create, Acknowledge, AddNote, Escalate,
...) reports it as firing. The alert's identity is its ``alias`` (else ``alertId``), so all
actions on one Opsgenie alert land on the same incident. The service is ``details.service``, else
a ``service:<name>`` tag, else ``entity``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bot.intake.alerts import Alert, AlertStatus, Severity
from handlers.parsers._common import (
    LooseMap,
    LooseText,
    Text,
    WireModel,
    cap_map,
    cap_text,
    or_none,
    require_object,
    validate,
)
from handlers.parsers.source import Source

RESOLVING_ACTIONS = frozenset({"close", "delete"})


def _epoch_any(value: Any) -> datetime | None:
    """Opsgenie mixes epoch milliseconds (createdAt) and nanoseconds (updatedAt); unknown -> None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    while seconds > 1e11:  # ms, µs, ns -> s
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _text_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        cap_text(str(v)) for v in value[:64] if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]


TextList = Annotated[list[str], BeforeValidator(_text_list)]
Epoch = Annotated[datetime | None, BeforeValidator(_epoch_any)]


class OpsgenieAlert(WireModel):
    alertId: LooseText = None
    alias: LooseText = None
    tinyId: LooseText = None
    message: Annotated[Text, Field(min_length=1)]
    description: LooseText = None
    priority: LooseText = None
    entity: LooseText = None
    source: LooseText = None
    tags: TextList = Field(default_factory=list)
    teams: TextList = Field(default_factory=list)
    details: LooseMap = Field(default_factory=dict)
    createdAt: Epoch = None
    updatedAt: Epoch = None


class OpsgeniePayload(WireModel):
    action: Annotated[Text, Field(min_length=1)]
    alert: OpsgenieAlert
    integrationName: LooseText = None


def parse_opsgenie(body: Any) -> list[Alert]:
    payload = validate(OpsgeniePayload, require_object(body))
    item = payload.alert
    message = item.message.strip() or item.message
    labels: dict[str, str] = {**item.details}
    if item.tags:
        labels["tags"] = ",".join(item.tags)
    if item.teams:
        labels["teams"] = ",".join(item.teams)
    for key, value in (
        ("priority", item.priority),
        ("entity", item.entity),
        ("tiny_id", item.tinyId),
        ("opsgenie_source", item.source),
        ("integration", payload.integrationName),
    ):
        if value:
            labels.setdefault(key, value)
    resolved = payload.action.strip().lower() in RESOLVING_ACTIONS
    return [
        Alert(
            source="opsgenie",
            name=message,
            status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
            severity=Severity.parse(item.priority),
            service=_service(item),
            summary=message,
            description=item.description or "",
            labels=cap_map(labels),
            annotations={"action": payload.action},
            starts_at=item.createdAt,
            ends_at=item.updatedAt if resolved else None,
            source_fingerprint=or_none(item.alias) or or_none(item.alertId),
        )
    ]


def _service(item: OpsgenieAlert) -> str | None:
    if item.details.get("service"):
        return item.details["service"]
    for tag in item.tags:
        key, sep, value = tag.partition(":")
        if sep and key.strip().lower() == "service" and value.strip():
            return value.strip()
    return or_none(item.entity)


SOURCE = Source("opsgenie", parse_opsgenie)
