"""Prometheus Alertmanager webhook (``version: "4"``) -> ``Alert`` list.

One body carries one notification group; every entry of ``alerts[]`` becomes an ``Alert``.
The per-alert ``status`` wins over the group's (old Alertmanagers omit it per alert).
Grafana's unified-alerting webhook reuses this shape; see ``grafana.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from bot.intake.alerts import Alert, AlertStatus, Severity
from handlers.parsers._common import (
    SERVICE_LABELS,
    Count,
    LooseText,
    StrMap,
    Text,
    Timestamp,
    WireModel,
    cap_map,
    first_of,
    or_none,
    require_object,
    validate,
)
from handlers.parsers.errors import MAX_PROBLEMS, PayloadError
from handlers.parsers.source import Source

Status = Literal["firing", "resolved"]


class AlertmanagerAlert(WireModel):
    status: Status | None = None
    labels: StrMap
    annotations: StrMap = Field(default_factory=dict)
    startsAt: Timestamp = None
    endsAt: Timestamp = None
    generatorURL: Text | None = None
    fingerprint: Text | None = None


class AlertmanagerPayload(WireModel):
    version: LooseText = None
    groupKey: Text | None = None
    status: Status
    receiver: Text | None = None
    groupLabels: StrMap = Field(default_factory=dict)
    commonLabels: StrMap = Field(default_factory=dict)
    commonAnnotations: StrMap = Field(default_factory=dict)
    externalURL: Text | None = None
    truncatedAlerts: Count | None = None  # clamped: 2^63 is 2^31 - 1, not a lost batch
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


def parse_alertmanager(body: Any) -> list[Alert]:
    """Parse an Alertmanager v4 webhook body (already JSON-decoded)."""
    payload = validate(AlertmanagerPayload, require_object(body))
    return build_alerts(payload, source="alertmanager")


def build_alerts(
    payload: AlertmanagerPayload,
    *,
    source: str,
    url: Callable[[Any], str | None] | None = None,
    extra_annotations: Callable[[Any], dict[str, str]] | None = None,
) -> list[Alert]:
    """Turn a validated Alertmanager-shaped payload into alerts.

    ``url`` picks each alert's link (default: its ``generatorURL`` verbatim);
    ``extra_annotations`` adds source-specific annotations that the alert does not already set.
    """
    problems: list[str] = []
    alerts: list[Alert] = []
    common = payload.commonAnnotations
    for i, item in enumerate(payload.alerts):
        name = item.labels.get("alertname")
        if name is None:
            problems.append(f"alerts[{i}].labels.alertname: field required")
            continue
        if not name:
            problems.append(f"alerts[{i}].labels.alertname: must not be empty")
            continue
        annotations = dict(item.annotations)
        if extra_annotations is not None:
            for key, value in extra_annotations(item).items():
                annotations.setdefault(key, value)
        alerts.append(
            Alert(
                source=source,
                name=name,
                status=AlertStatus(item.status or payload.status),
                severity=Severity.parse(item.labels.get("severity")),
                service=first_of(item.labels, SERVICE_LABELS),
                summary=_pick(item.annotations, common, ("summary",)),
                description=_pick(item.annotations, common, ("description", "message")),
                labels=dict(item.labels),
                annotations=cap_map(annotations),
                starts_at=item.startsAt,
                ends_at=item.endsAt,
                group_key=or_none(payload.groupKey),
                source_fingerprint=or_none(item.fingerprint),
                url=url(item) if url is not None else or_none(item.generatorURL),
                truncated_alerts=payload.truncatedAlerts or 0,
            )
        )
    if problems:
        raise PayloadError(*problems[:MAX_PROBLEMS], more=len(problems) - MAX_PROBLEMS)
    return alerts


def _pick(own: dict[str, str], common: dict[str, str], keys: tuple[str, ...]) -> str:
    """The alert's own annotation, else the group's common one, else empty."""
    return first_of(own, keys) or first_of(common, keys) or ""


SOURCE = Source("alertmanager", parse_alertmanager)
