"""ML-model monitor alert -> ``Alert`` list (``kind=model``).

Body: one object, or ``{"alerts": [object, ...]}``. An object::

    {
      "model": "churn-classifier",       # required: the model's name
      "serving_service": "churn-api",    # the service that serves it (or "service", or label serving_service;
                                         # else MODEL_SERVICES maps the model to its service)
      "metric": "psi_drift",             # required
      "value": 0.31,                     # required number
      "threshold": 0.2,                  # required number
      "direction": "above",              # "above" (default) | "below": which side breaches
      "version": "3.1.0", "owner": "ml-platform",
      "alert_name": "Churn model drift", # default: "<metric> threshold breached"
      "status": "firing", "severity": "high",  # defaults
      "summary": "...", "description": "...", "labels": {...},
      "starts_at": "2024-05-01T12:00:00Z", "url": "https://...", "fingerprint": "..."
    }

The same model+metric is the same alert (its fingerprint ignores value and version);
a new value or version is an update (it changes the content hash).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, Field, Strict

from bot.intake.alerts import Alert, AlertKind, AlertStatus, ModelInfo, Severity
from handlers.parsers._common import (
    LooseMap,
    LooseText,
    Text,
    Timestamp,
    WireModel,
    cap_text,
    or_none,
    validate_batch,
)
from handlers.parsers.source import Source

Number = Annotated[float, Strict(), AllowInfNan(False)]
NonEmpty = Annotated[Text, Field(min_length=1)]


class ModelAlert(WireModel):
    model: NonEmpty
    metric: NonEmpty
    value: Number
    threshold: Number
    direction: Literal["above", "below"] = "above"
    version: LooseText = None
    owner: Text | None = None
    alert_name: Text | None = None
    status: Literal["firing", "resolved"] = "firing"
    severity: Text = "high"
    summary: Text | None = None
    description: Text | None = None
    labels: LooseMap = Field(default_factory=dict)
    annotations: LooseMap = Field(default_factory=dict)
    starts_at: Timestamp = None
    ends_at: Timestamp = None
    url: Text | None = None
    fingerprint: Text | None = None
    group_key: Text | None = None
    service: Text | None = None
    serving_service: Text | None = None


def parse_model(body: Any) -> list[Alert]:
    """Parse an ML-monitor alert body (already JSON-decoded)."""
    return [_to_alert(item) for item in validate_batch(ModelAlert, body)]


def _to_alert(item: ModelAlert) -> Alert:
    version = or_none(item.version)
    return Alert(
        source="model",
        name=item.alert_name or f"{item.metric} threshold breached",
        status=AlertStatus(item.status),
        severity=Severity.parse(item.severity),
        service=or_none(item.serving_service)
        or or_none(item.service)
        or or_none(item.labels.get("serving_service")),
        summary=item.summary or cap_text(_default_summary(item, version)),
        description=item.description or "",
        labels=item.labels,
        annotations=item.annotations,
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        group_key=or_none(item.group_key),
        source_fingerprint=or_none(item.fingerprint),
        url=or_none(item.url),
        kind=AlertKind.MODEL,
        model=ModelInfo(
            name=item.model,
            version=version,
            metric=item.metric,
            value=item.value,
            threshold=item.threshold,
            owner=or_none(item.owner),
        ),
    )


def _default_summary(item: ModelAlert, version: str | None) -> str:
    """``churn v3: psi_drift 0.31 over threshold 0.2`` ("under" when direction is below)."""
    label = item.model
    if version:
        label += f" {version}" if version[:1] in "vV" else f" v{version}"
    side = "under" if item.direction == "below" else "over"
    return f"{label}: {item.metric} {_num(item.value)} {side} threshold {_num(item.threshold)}"


def _num(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


SOURCE = Source("model", parse_model)
