"""Model lifecycle told apart (issue 18, 7): a registration is not a promotion; a promotion's lead time is
its time minus its version's registration (stored earlier, or MLflow's ``model-versions/get``); ``/changes``
accepts ``registered_at`` and reports unknown fields in its 202's ``warnings``. Through the real HTTP app
(SQLite and PostgreSQL) and, for the registry lookup, a real MLflow server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.intake.model_registry import MlflowRegistrations
from bot.kernel.models import ChangeEvent, ChangeKind
from handlers.parsers.changes import MAX_WARNINGS, parse_changes, unknown_fields
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app
from tests.mlflow_fixtures import MlflowRest
from tests.test_changes_http import post_change


def mlflow_body(entity: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The envelope MLflow's webhook delivery posts (mlflow.webhooks.delivery.deliver_webhook)."""
    return {"entity": entity, "action": "created", "timestamp": at.isoformat(), "data": data}


def _rows(app: App) -> list[ChangeEvent]:
    with app.rt.sessions() as s:
        return list(s.scalars(select(ChangeEvent).order_by(ChangeEvent.id)))


def test_own_shape_accepts_registered_at_and_registration_kind() -> None:
    promo, reg = parse_changes(
        {
            "changes": [
                {
                    "kind": "model_promotion",
                    "model": "kpi-model",
                    "version": "4",
                    "occurred_at": "2026-11-22T03:25:00Z",
                    "registered_at": "2026-11-22T03:00:00Z",
                },
                {"kind": "model_registration", "model": "kpi-model", "version": "5"},
            ]
        }
    )
    assert promo.registered_at == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert (promo.kind, reg.kind) == (ChangeKind.MODEL_PROMOTION, ChangeKind.MODEL_REGISTRATION)


def test_unknown_fields_are_named_with_their_path() -> None:
    assert unknown_fields({"kind": "deploy", "servce": "x", "meta": {"anything": 1}}) == [
        "servce: unknown field, ignored"
    ]
    assert unknown_fields({"changes": [{"kind": "deploy"}, {"kind": "config", "by": "ana"}], "x": 1}) == [
        "x: unknown field, ignored",
        "changes[1].by: unknown field, ignored",
    ]
    # MLflow's documented fields (and its free-form tags) are all read: no warning for a real body
    real = mlflow_body(
        "model_version",
        {"name": "m", "version": "1", "source": "s", "run_id": "r", "tags": {"k": "v"}, "description": "d"},
        datetime(2026, 11, 22, tzinfo=UTC),
    )
    assert unknown_fields(real) == []
    assert unknown_fields({**real, "data": {**real["data"], "stage": "x"}}) == [
        "data.stage: unknown field, ignored"
    ]
    many = unknown_fields({"kind": "deploy", **{f"f{i}": i for i in range(30)}})
    assert len(many) == MAX_WARNINGS + 1 and many[-1] == "…and 10 more unknown fields"


def test_generic_registered_at_is_kept_and_unknown_fields_are_warned(app: App) -> None:
    resp = post_change(
        app,
        {
            "kind": "model_promotion",
            "model": "kpi-model",
            "version": "4",
            "occurred_at": "2026-11-22T03:25:00Z",
            "registered_at": "2026-11-22T03:00:00Z",
            "deployed_by": "ana",
        },
    )
    assert resp.status_code == 202
    assert resp.json() == {
        "status": "accepted",
        "change_id": 1,
        "warnings": ["deployed_by: unknown field, ignored"],
    }
    (row,) = _rows(app)
    assert row.registered_at is not None
    assert row.occurred_at - row.registered_at == timedelta(minutes=25)


def test_registration_then_alias_gives_lead_time(app: App) -> None:
    """The issue's defect: the registration stored as a promotion with lead time 0, the alias without one.
    Now: the registration is stored as such, the alias 25 min later is the promotion with lead time 25 min."""
    registered = datetime(2026, 11, 22, 2, 40, tzinfo=UTC)
    promoted = registered + timedelta(minutes=25)
    reg = post_change(app, mlflow_body("model_version", {"name": "kpi-model", "version": "4"}, registered))
    promo = post_change(
        app,
        mlflow_body(
            "model_version_alias", {"name": "kpi-model", "alias": "champion", "version": "4"}, promoted
        ),
    )
    assert reg.status_code == promo.status_code == 202 and "warnings" not in promo.json()
    r, p = _rows(app)
    assert (r.kind, p.kind) == ("model_registration", "model_promotion")
    assert p.registered_at == registered and p.occurred_at - p.registered_at == timedelta(minutes=25)


def test_only_the_promotion_is_shown_on_the_incident(app: App) -> None:
    """A registration and a promotion of v4 on the incident's service: one line, the promotion's."""
    tags = {"serving_service": "inventory"}
    registered = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    body = mlflow_body("model_version", {"name": "kpi-model", "version": "4", "tags": tags}, registered)
    assert post_change(app, body).status_code == 202
    promotion = {
        "kind": "model_promotion",
        "model": "kpi-model",
        "version": "4",
        "service": "inventory",
        "occurred_at": "2026-11-22T03:25:00Z",
    }
    assert post_change(app, promotion).status_code == 202
    app.sample("generic", "generic.json")  # inventory, starts 03:30
    text = json.dumps(app.posts()[0].params["blocks"])
    assert "started 5 min after model promotion kpi-model v4 on inventory" in text
    assert "model registration" not in text and text.count("kpi-model v4") == 1
    rows = _rows(app)
    assert rows[-1].registered_at == registered  # our shape gets the stored registration too
    assert rows[-1].meta["registered_at_from"] == "stored registration"


def test_registration_in_the_same_delivery_counts(app: App) -> None:
    resp = post_change(
        app,
        {
            "changes": [
                {"kind": "model_registration", "model": "m", "version": "2", "when": "2026-11-22T03:00:00Z"},
                {"kind": "model_promotion", "model": "m", "version": "2", "when": "2026-11-22T03:10:00Z"},
                {"kind": "model_promotion", "model": "m", "version": "3", "when": "2026-11-22T03:20:00Z"},
            ]
        },
    )
    assert resp.status_code == 202 and resp.json()["change_ids"] == [1, 2, 3]
    _, known, unknown = _rows(app)
    assert known.registered_at == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert unknown.registered_at is None  # nobody knows v3's registration: unknown, never 0


@pytest.mark.mlflow
def test_alias_event_reads_the_registration_from_mlflow(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, mlflow_rest: MlflowRest
) -> None:
    model, versions = mlflow_rest.seed(versions=2)
    created = datetime.fromtimestamp(int(versions[1]["creation_timestamp"]) / 1000, UTC)
    with running_app(db_url, fake_encoder, target, mlflow_tracking_uri=mlflow_rest.url) as app:
        promoted = created + timedelta(minutes=7)
        body = mlflow_body(
            "model_version_alias", {"name": model, "alias": "champion", "version": "2"}, promoted
        )
        assert post_change(app, body).status_code == 202
        unknown = mlflow_body("model_version_alias", {"name": model, "alias": "x", "version": "99"}, promoted)
        assert post_change(app, unknown).status_code == 202  # MLflow answers 404: stored, lead time unknown
        found, missing = _rows(app)
    assert found.registered_at == created and found.meta["registered_at_from"] == "model registry"
    assert missing.registered_at is None


def test_registry_down_leaves_lead_time_unknown() -> None:
    with httpx.Client() as client:
        lookup = MlflowRegistrations(client=client, tracking_uri="http://user:pw@127.0.0.1:9", timeout=1.0)
        assert lookup("m", "1") is None
