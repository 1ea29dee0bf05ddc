"""Change events for ``POST /changes``: our own JSON shape and MLflow's model-registry webhook.

Our shape (one object, or ``{"changes": [object, ...]}``)::

    {
      "kind": "deploy",                  # deploy | config | feature_flag | model_promotion (required)
      "service": "checkout",             # the service changed (or serving the model)
      "model": "fraud-model",            # for model promotions
      "version": "v1.42", "environment": "prod",
      "actor": "ana",                    # or "who"
      "title": "Deploy checkout v1.42",  # default: built from kind, service/model and version
      "occurred_at": "2024-05-01T12:00:00Z",  # or "when"; RFC 3339 or Unix epoch; default: received time
      "url": "https://ci/run/42"         # or "link"
    }

MLflow (``mlflow.webhooks``, OSS 3.x) posts ``{"entity", "action", "timestamp", "data"}``:
``model_version``/``created`` (a version registered) and ``model_version_alias``/``created`` (an alias such
as ``champion`` moved to a version: a promotion) become ``model_promotion`` changes. The serving service
comes from a ``serving_service`` (or ``service``) tag, or from ``MODEL_SERVICES`` when the incident is shown.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.intake.changes import Change
from bot.kernel.models import ChangeKind
from handlers.parsers._common import LooseMap, LooseText, Text, Timestamp, WireModel, or_none, validate_batch
from handlers.parsers.errors import PayloadError

MLFLOW_EVENTS = {("model_version", "created"), ("model_version_alias", "created")}


class ChangeIn(WireModel):
    kind: Literal["deploy", "config", "feature_flag", "model_promotion"]
    service: Text | None = None
    model: Text | None = None
    version: LooseText = None
    environment: Text | None = None
    actor: Text | None = None
    who: Text | None = None
    title: Text | None = None
    occurred_at: Timestamp = None
    when: Timestamp = None
    url: Text | None = None
    link: Text | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class MlflowData(WireModel):
    name: Text = Field(min_length=1)
    version: LooseText = None
    alias: Text | None = None
    source: Text | None = None
    run_id: Text | None = None
    description: Text | None = None
    tags: LooseMap = Field(default_factory=dict)


class MlflowEvent(WireModel):
    entity: Text
    action: Text
    timestamp: Timestamp = None
    data: MlflowData


def parse_changes(body: Any) -> list[Change]:
    """Parse a ``POST /changes`` body (already JSON-decoded) into changes; PayloadError names the field."""
    if isinstance(body, dict) and "entity" in body and "action" in body:
        return [_from_mlflow(validate_batch(MlflowEvent, body)[0])]
    if isinstance(body, dict) and "changes" in body:
        body = {"alerts": body["changes"]}  # validate_batch reads "alerts"; paths say alerts[i]
    return [_to_change(item) for item in validate_batch(ChangeIn, body)]


def _to_change(item: ChangeIn) -> Change:
    kind = ChangeKind(item.kind)
    subject = or_none(item.service) or or_none(item.model)
    title = item.title or " ".join(p for p in (kind.value.replace("_", " "), subject, item.version) if p)
    return Change(
        kind=kind,
        title=title,
        service=or_none(item.service),
        model_name=or_none(item.model),
        version=or_none(item.version),
        environment=or_none(item.environment),
        actor=or_none(item.actor) or or_none(item.who),
        url=or_none(item.url) or or_none(item.link),
        occurred_at=item.occurred_at or item.when,
        meta=dict(item.meta),
    )


def _from_mlflow(event: MlflowEvent) -> Change:
    if (event.entity, event.action) not in MLFLOW_EVENTS:
        raise PayloadError(
            f"entity/action: MLflow event {event.entity}.{event.action} is not a change we record; "
            f"expected one of {sorted(f'{e}.{a}' for e, a in MLFLOW_EVENTS)}"
        )
    d = event.data
    alias = f" as {d.alias}" if d.alias else ""
    verb = "registered" if event.entity == "model_version" else "promoted"
    service = d.tags.get("serving_service") or d.tags.get("service")
    return Change(
        kind=ChangeKind.MODEL_PROMOTION,
        title=f"model {d.name} v{d.version or '?'} {verb}{alias}"[:300],
        service=service,
        model_name=d.name,
        version=or_none(d.version),
        actor=d.tags.get("actor"),
        occurred_at=event.timestamp,
        registered_at=event.timestamp if event.entity == "model_version" else None,
        meta={
            "mlflow": {
                "entity": event.entity,
                "action": event.action,
                "alias": d.alias,
                "source": d.source,
                "run_id": d.run_id,
                "tags": dict(d.tags),
            }
        },
    )
