"""Change events for ``POST /changes``: our own JSON shape and MLflow's model-registry webhook.

Our shape (one object, or ``{"changes": [object, ...]}``)::

    {
      "kind": "deploy",                  # deploy | config | feature_flag | model_promotion | model_registration
      "service": "checkout",             # the service changed (or serving the model)
      "model": "fraud-model",            # for model promotions and registrations
      "version": "v1.42", "environment": "prod",
      "actor": "ana",                    # or "who"
      "title": "Deploy checkout v1.42",  # default: built from kind, service/model and version
      "occurred_at": "2024-05-01T12:00:00Z",  # or "when"; RFC 3339 or Unix epoch; default: received time
      "registered_at": "2024-05-01T11:35:00Z",  # a promotion: when its version was registered (lead time)
      "url": "https://ci/run/42"         # or "link"
    }

Fields we do not know are not an error (senders add their own), but they are not dropped in silence either:
``unknown_fields`` names them and ``POST /changes`` returns them in its 202's ``warnings``.

MLflow (``mlflow.webhooks``, OSS 3.x) posts ``{"entity", "action", "timestamp", "data"}``:
``model_version``/``created`` (a version registered) is a ``model_registration`` (its ``registered_at`` is the
event time); ``model_version_alias``/``created`` (an alias such as ``champion`` moved to a version) is a
``model_promotion``, whose ``registered_at`` is filled in when it is stored (the registration stored earlier,
or MLflow's ``model-versions/get`` when ``MLFLOW_TRACKING_URI`` is set: ``IncidentService.record_changes``).
The serving service comes from a ``serving_service`` (or ``service``) tag, or from ``MODEL_SERVICES`` when the
incident is shown.
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
    kind: Literal["deploy", "config", "feature_flag", "model_promotion", "model_registration"]
    service: Text | None = None
    model: Text | None = None
    version: LooseText = None
    environment: Text | None = None
    actor: Text | None = None
    who: Text | None = None
    title: Text | None = None
    occurred_at: Timestamp = None
    when: Timestamp = None
    registered_at: Timestamp = None
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
    workspace: Text | None = None  # sent when MLflow runs with workspaces


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
        registered_at=item.registered_at,
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
    registration = event.entity == "model_version"
    verb = "registered" if registration else "promoted"
    service = d.tags.get("serving_service") or d.tags.get("service")
    return Change(
        kind=ChangeKind.MODEL_REGISTRATION if registration else ChangeKind.MODEL_PROMOTION,
        title=f"model {d.name} v{d.version or '?'} {verb}{alias}"[:300],
        service=service,
        model_name=d.name,
        version=or_none(d.version),
        actor=d.tags.get("actor"),
        occurred_at=event.timestamp,
        # a promotion's registration time is looked up when it is stored (IncidentService.record_changes)
        registered_at=event.timestamp if registration else None,
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


MAX_WARNINGS = 20


def unknown_fields(body: Any) -> list[str]:
    """Warnings for the fields of a ``/changes`` body that no parser reads ("changes[1].deployed_by: unknown
    field, ignored"): kept out of the change, but reported to the sender instead of dropped in silence.
    ``meta`` and MLflow's ``tags`` are free-form and never reported. At most ``MAX_WARNINGS`` (then a count)."""
    found = _unknown_paths(body) if isinstance(body, dict) else []
    warnings = [f"{path[:200]}: unknown field, ignored" for path in found[:MAX_WARNINGS]]
    if len(found) > MAX_WARNINGS:
        warnings.append(f"…and {len(found) - MAX_WARNINGS} more unknown fields")
    return warnings


def _unknown_paths(body: dict[str, Any]) -> list[str]:
    if "entity" in body and "action" in body:
        found = [k for k in body if k not in MlflowEvent.model_fields]
        data = body.get("data")
        if isinstance(data, dict):
            found += [f"data.{k}" for k in data if k not in MlflowData.model_fields]
        return found
    if "changes" in body:
        items = body["changes"] if isinstance(body["changes"], list) else []
        found = [k for k in body if k != "changes"]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                found += [f"changes[{i}].{k}" for k in item if k not in ChangeIn.model_fields]
        return found
    return [k for k in body if k not in ChangeIn.model_fields]
