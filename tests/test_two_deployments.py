"""Keys unique across deployments (issue 16, deliverable 6): two bots on two databases, one real MLflow
tracking server, one webhook receiver, on SQLite and PostgreSQL.

The second deployment's rollback used to be refused with "this request already moved fraud-model@champion
from v3 to v2": the idempotency key was ``incident-bot-request-<row id>`` and both bots have a request #1.
Each request now carries a random UUID, sent as the Idempotency-Key, in the webhook body and in the MLflow
tag that the "already moved" check reads.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.models import RemediationRequest
from incident_bot.demo.mlflow_local import runbooks_with_mlflow_rollback
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERTS, App, running_app
from tests.conftest import pg_url_from_template, sqlite_url_from_template
from tests.decide_helpers import incident_id, overload_alert, prompt_of, write_runbook
from tests.mlflow_fixtures import MlflowRest

pytestmark = pytest.mark.mlflow

POLICY = "defaults:\n  approvers: [model-owner, U0APP0]\n  approvals_required: 1\n  rate_limit_per_hour: 0\n"


def _rollback(app: App, model: str) -> RemediationRequest:
    alert = {**json.loads((ALERTS / "model_drift.json").read_text()), "model": model, "version": "3"}
    assert app.alert("model", alert).status_code == 202
    message = next(p for p in app.posts() if model in json.dumps(p.params))
    app.click("U0ONCALL1", message, "Request: Roll back MLflow alias")
    prompt = prompt_of(app.stub, _last(app).id)
    app.click("U0MLOWNER", prompt, "Approve")
    app.drain()
    return _last(app)


def _webhook(app: App, service: str) -> RemediationRequest:
    assert app.alert("alertmanager", overload_alert(service)).status_code == 202
    rid = app.rt.service.request_action(
        incident_id=incident_id(app, service), action_id="act-0", user_id="U0ONCALL1"
    )
    app.drain()
    app.click("U0APP0", prompt_of(app.stub, rid), "Approve")
    return _last(app)


def _last(app: App) -> RemediationRequest:
    with app.rt.sessions() as s:
        row = s.scalars(select(RemediationRequest).order_by(RemediationRequest.id.desc())).first()
        assert row is not None
        return row


def test_two_bots_on_two_databases_share_one_mlflow_and_one_receiver(
    request: pytest.FixtureRequest,
    db_url: str,
    sqlite_template: Path,
    fake_encoder: HashingEncoder,
    target: WebhookTarget,
    mlflow_rest: MlflowRest,
    tmp_path: Path,
) -> None:
    other_db = (
        sqlite_url_from_template(sqlite_template, tmp_path)
        if db_url.startswith("sqlite")
        else pg_url_from_template(request.getfixturevalue("pg_server"))
    )
    model, _ = mlflow_rest.seed(versions=3)
    runbooks = runbooks_with_mlflow_rollback(SAMPLE_DATA / "runbooks", tmp_path / "runbooks", models=[model])
    write_runbook(runbooks, actions=1)
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    common = dict(
        runbooks_dir=runbooks,
        policy_path=policy,
        mlflow_tracking_uri=mlflow_rest.url,
        model_owners={model: ["U0MLOWNER"]},
    )
    with (
        running_app(db_url, fake_encoder, target, **common) as first,
        running_app(other_db, fake_encoder, target, **common) as second,
    ):
        a = _rollback(first, model)
        assert a.status == "succeeded" and mlflow_rest.alias_version(model) == "2"
        mlflow_rest.set_alias(model, 3)  # v3 is promoted again (fixed), then drifts again
        b = _rollback(second, model)  # the other deployment's request #1 rolls it back too
        assert b.status == "succeeded", b.result
        assert mlflow_rest.alias_version(model) == "2"
        assert a.id == b.id == 1 and a.uid and b.uid and a.uid != b.uid  # same row id, different keys
        assert str(uuid.UUID(a.uid)) == a.uid
        tags = mlflow_rest.call("GET", "/registered-models/get", params={"name": model})["registered_model"]
        last = json.loads(
            next(t["value"] for t in tags["tags"] if t["key"] == "incident_bot.last_rollback.champion")
        )
        assert last["idempotency_key"] == b.uid

        wa, wb = _webhook(first, "payments"), _webhook(second, "payments")
    assert wa.status == wb.status == "succeeded"
    assert len(target.received) == 2  # one receiver, both actions ran
    keys = [r.idempotency_key for r in target.received]
    assert keys == [wa.uid, wb.uid] and keys[0] != keys[1]
    assert [r.body["idempotency_key"] for r in target.received] == keys  # the body carries the key too
    assert all(r.signature_ok for r in target.received)
