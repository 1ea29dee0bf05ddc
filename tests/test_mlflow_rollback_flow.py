"""The model rollback end to end, against a real MLflow tracking server (issue 6, "Done when").

Three versions registered, alias ``champion`` on v3; a drift alert for that model through the real HTTP
endpoint; the rollback offered by rule; a request through a signed Slack click; the policy wants two
approvals besides the requester (a model owner and the ML lead); the prompt shows current → target
version with creation times and run ids; after the second approval the alias is on v2 in MLflow and the
incident thread says so. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.models import AuditEvent, RemediationRequest
from handlers.blocks.render import render_text
from incident_bot.demo.mlflow_local import runbooks_with_mlflow_rollback
from incident_bot.demo.slack_stub import find_button
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERTS, running_app
from tests.mlflow_fixtures import MlflowRest

pytestmark = pytest.mark.mlflow

POLICY = """\
defaults: {approvals_required: 1, ttl_minutes: 30}
actions:
  rollback-model-alias:
    approvers: [model-owner, U0MLLEAD]
    approvals_required: 2
"""


def test_two_person_rollback_moves_the_alias_back_and_the_thread_says_so(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, mlflow_rest: MlflowRest, tmp_path: Path
) -> None:
    model, versions = mlflow_rest.seed(versions=3)
    assert mlflow_rest.alias_version(model) == "3"
    runbooks = runbooks_with_mlflow_rollback(SAMPLE_DATA / "runbooks", tmp_path / "runbooks", models=[model])
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY, encoding="utf-8")
    alert = json.loads((ALERTS / "model_drift.json").read_text())
    alert.update(model=model, version="3", summary=f"{model} v3: psi_drift on merchant_category is 0.31")

    with running_app(
        db_url,
        fake_encoder,
        target,
        runbooks_dir=runbooks,
        policy_path=policy,
        mlflow_tracking_uri=mlflow_rest.url,
        model_owners={model: ["U0MLOWNER"]},
    ) as app:
        assert app.alert("model", alert).status_code == 202
        app.drain()
        incident_msg = app.posts()[0]
        offered = json.dumps(incident_msg.params["blocks"])
        assert "Request: Roll back MLflow alias" in offered

        app.click("U0ONCALL1", incident_msg, "Request:")
        prompt = app.posts()[-1]
        shown = render_text(prompt.params["blocks"])
        v2, v3 = versions[1], versions[2]
        # Show before approve: model, alias, current → target with run ids, the exact call, k of N.
        assert f"{model}@champion" in shown and "v3" in shown and "v2" in shown, shown
        assert v3["run_id"] in shown and v2["run_id"] in shown, shown
        assert "POST /api/2.0/mlflow/registered-models/alias" in shown, shown
        assert "0 of 2" in shown, shown

        app.click("U0MLOWNER", prompt, "Approve")  # first approval: nothing runs yet
        assert mlflow_rest.alias_version(model) == "3"
        with app.rt.sessions() as s:
            req = s.get(RemediationRequest, 1)
            assert req is not None and req.status == "pending"
        app.click("U0MLOWNER", prompt, "Approve")  # the same person twice is still one approval
        assert mlflow_rest.alias_version(model) == "3"
        assert any("already" in t for t in app.ephemerals())

        app.click("U0MLLEAD", prompt, "Approve")  # second distinct approver: the rollback runs
        app.drain()
        assert mlflow_rest.alias_version(model) == "2"
        with app.rt.sessions() as s:
            req = s.get(RemediationRequest, 1)
            assert req is not None and req.status == "succeeded"
            assert req.result["detail"]["from_version"] == "3" and req.result["detail"]["to_version"] == "2"
        replies = [
            c.params.get("text") or render_text(c.params.get("blocks") or [])
            for c in app.posts()
            if c.params.get("thread_ts") == incident_msg.response["ts"]
        ]
        assert any("succeeded" in r and "v2" in r for r in replies), replies
        assert target.received == []  # a real MLflow call, not the webhook stand-in
        # The rollback prompt no longer offers Approve.
        final = app.stub.of("chat.update")[-1]
        with pytest.raises(LookupError):
            find_button(final.params["blocks"], "Approve")


def test_what_runs_is_what_the_prompt_showed_even_if_the_alias_moves_meanwhile(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, mlflow_rest: MlflowRest, tmp_path: Path
) -> None:
    model, _ = mlflow_rest.seed(versions=4, alias_version=3)
    runbooks = runbooks_with_mlflow_rollback(SAMPLE_DATA / "runbooks", tmp_path / "runbooks", models=[model])
    alert = {**json.loads((ALERTS / "model_drift.json").read_text()), "model": model}
    with running_app(
        db_url,
        fake_encoder,
        target,
        runbooks_dir=runbooks,
        mlflow_tracking_uri=mlflow_rest.url,
        model_owners={model: ["U0MLOWNER"]},
    ) as app:
        app.alert("model", alert)
        app.drain()
        app.click("U0ONCALL1", app.posts()[0], "Request:")
        prompt = app.posts()[-1]
        assert "v3 (created" in render_text(prompt.params["blocks"])  # shown: v3 → v2
        with app.rt.sessions() as s:
            params = s.get(RemediationRequest, 1).action["params"]  # type: ignore[union-attr]
        assert params["target_version"] == 2 and params["expected_current_version"] == 3  # pinned when shown
        mlflow_rest.set_alias(model, 4)  # someone promotes v4 before the approval
        app.click("U0MLOWNER", prompt, "Approve")
        assert mlflow_rest.alias_version(model) == "4"  # not rolled back from a version nobody approved
        app.drain()
        with app.rt.sessions() as s:
            req = s.get(RemediationRequest, 1)
            assert req is not None and req.status == "refused"  # nothing was attempted: not "failed"
            assert "moved to v4 since the preview showed v3" in req.result["error"]
            events = [e.event for e in s.scalars(select(AuditEvent).where(AuditEvent.request_id == 1))]
        assert "remediation.refused" in events and "remediation.failed" not in events
        final = render_text(app.stub.of("chat.update")[-1].params["blocks"])
        assert "Refused: nothing changed" in final and "moved to v4" in final and "Failed" not in final
        reply = app.posts()[-1].params["text"]
        assert "was refused, nothing changed" in reply and "request #1, approved by <@U0MLOWNER>" in reply
