"""Actions bound to the incident (issue 16, deliverables 1, 2 and 9): templates over the incident, specific
matches, target parameters that name only the incident, and an import that names the missing setting.

The HTTP tests go through the real ``/alerts/generic`` endpoint and signed Slack payloads on SQLite and
PostgreSQL (``db_url``), with the example runbooks a team copies (``examples/runbooks``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.kernel.models import AlertRecord, Incident, RemediationRequest
from bot.remediation.actions import ActionError, validate_actions
from bot.remediation.binding import (
    TemplateProblem,
    bind,
    fully_bound,
    incident_vars,
    names_service,
    render,
    wrong_target,
)
from bot.remediation.executors.kubernetes import K8sRestartParams
from bot.remediation.registry import ExecutorRegistry
from bot.remediation.runbook_store import import_dir
from incident_bot.demo.slack_stub import block_action_body
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "runbooks"


def _alert(name: str, service: str, fp: str, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": "firing",
        "severity": "warning",
        "service": service,
        "summary": f"{name} on {service}",
        "fingerprint": fp,
        "labels": labels,
    }


def _blocks(app: App) -> str:
    return json.dumps(app.posts()[-1].params["blocks"])


def _request_buttons(app: App) -> list[str]:
    return [
        el["text"]["text"]
        for b in app.posts()[-1].params["blocks"]
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["text"]["text"].startswith("Request:")
    ]


def _forge(app: App, incident_id: int, action_id: str) -> None:
    button = {
        "action_id": "remediation_request:1",
        "value": f"{incident_id}:{action_id}",
        "text": {"type": "plain_text", "text": "Request: forged"},
    }
    ts = app.posts()[-1].response["ts"]
    app.slack(block_action_body(user="U0ONCALL1", button=button, channel="C0INCIDENTS", message_ts=ts))


def _requests(app: App) -> list[RemediationRequest]:
    with app.rt.sessions() as s:
        return list(s.scalars(select(RemediationRequest).order_by(RemediationRequest.id)))


# ---- templates, in the sandbox ---------------------------------------------------------------------------
def test_templates_render_from_the_incident_and_say_what_is_missing() -> None:
    variables = {
        "service": "search",
        "model": None,
        "labels": {"deployment": "search-api"},
        "annotations": {},
    }
    assert render({"d": "{{ labels.deployment }}", "n": 3}, variables) == {"d": "search-api", "n": 3}
    assert render({"d": "{{ labels['deployment'] }}-x"}, variables) == {"d": "search-api-x"}
    with pytest.raises(TemplateProblem, match=r"^label `pod` missing \(`d`\)$"):
        render({"d": "{{ labels.pod }}"}, variables)
    with pytest.raises(TemplateProblem, match=r"^the incident has no model \(`m`\)$"):
        render({"m": "{{ model }}"}, variables)
    # a default is the runbook author's choice, and fills
    assert render({"d": "{{ labels.pod | default(service) }}"}, variables) == {"d": "search"}


def test_label_values_are_data_never_templates_and_the_sandbox_holds() -> None:
    variables = {"service": "s", "labels": {"deployment": "{{ 7*7 }}", "x": "{{ ''.__class__ }}"}}
    assert render({"d": "{{ labels.deployment }}"}, variables) == {"d": "{{ 7*7 }}"}  # not evaluated again
    with pytest.raises(TemplateProblem):
        render({"d": "{{ labels.__class__.__mro__[1].__subclasses__() }}"}, variables)
    with pytest.raises(TemplateProblem):
        render({"d": "{{ service.__class__.__init__.__globals__ }}"}, variables)


def test_template_errors_at_import_name_file_action_and_parameter() -> None:
    reg = ExecutorRegistry()
    base = {"id": "a", "title": "A", "type": "webhook", "url": "/x"}
    with pytest.raises(ActionError, match=r"^rb\.md: actions\[0\]\.params\.deployment: template error: "):
        validate_actions([{**base, "params": {"deployment": "{{ labels.deployment "}}], reg, path="rb.md")
    with pytest.raises(
        ActionError, match=r"params\.d: unknown template variable 'incident' \(known: service"
    ):
        validate_actions([{**base, "params": {"d": "{{ incident.service }}"}}], reg, path="rb.md")
    with pytest.raises(
        ActionError, match=r"actions\[0\]\.offer_on: Input should be 'alert' or 'any_alert_of_service'"
    ):
        validate_actions([{**base, "offer_on": "always", "params": {}}], reg, path="rb.md")
    # a templated parameter is checked when rendered; the others now (k8s names must be DNS names)
    base = {"id": "a", "title": "A"}
    spec = validate_actions(
        [
            {
                **base,
                "type": "k8s_restart",
                "params": {"namespace": "prod", "deployment": "{{ labels.deployment }}"},
            }
        ],
        reg,
        path="rb.md",
    )[0]
    assert spec.params["deployment"] == "{{ labels.deployment }}"
    with pytest.raises(ActionError, match=r"actions\[0\]\.params\.namespace: String should match pattern"):
        validate_actions(
            [
                {
                    **base,
                    "type": "k8s_restart",
                    "params": {"namespace": "Prod!", "deployment": "{{ service }}"},
                }
            ],
            reg,
            path="rb.md",
        )


def test_target_parameters_must_name_the_incident() -> None:
    assert names_service("checkout", "checkout") and names_service("pgbouncer-checkout", "checkout")
    assert names_service("checkout-worker", "checkout") and not names_service("checkouts", "checkout")
    assert not names_service("notifications-worker", "reporting")
    # the issue's prompts: every one named another service
    assert "not the incident's service payments" in (
        wrong_target({"service": "checkout"}, service="payments", model=None) or ""
    )
    assert "does not name the incident's service payments" in (
        wrong_target({"database": "checkout"}, service="payments", model=None) or ""
    )
    assert wrong_target({"deployment": "notifications-email-consumer"}, service="search", model=None)
    assert wrong_target({"model": "churn-model"}, service=None, model="fraud-model")
    # a service the action's policy scope allows is fine
    assert wrong_target({"service": "checkout"}, service="payments", model=None, allowed=["checkout"]) is None
    assert fully_bound({"service": "{{ service }}", "replicas": 3})
    assert not fully_bound({"service": "{{ service }}", "deployment": "notifications-worker"})
    assert not fully_bound({"mode": "incremental"})


def test_labels_the_alerts_of_an_incident_disagree_on_are_missing() -> None:
    inc = Incident(id=7, title="t", severity="warning", source="generic", group_key="g", service="search")
    inc.alerts = [
        AlertRecord(name="A", labels={"deployment": "search-api", "pod": "p1"}, annotations={}),
        AlertRecord(name="B", labels={"deployment": "search-api", "pod": "p2"}, annotations={}),
    ]
    v = incident_vars(inc)
    assert v["labels"] == {"deployment": "search-api"} and v["alert_name"] == "A" and v["incident_id"] == 7
    assert bind({"pod": "{{ labels.pod }}"}, None, inc) == "label `pod` missing (`pod`)"
    bound = bind({"namespace": "search", "deployment": "{{ labels.deployment }}"}, K8sRestartParams, inc)
    assert not isinstance(bound, str) and bound.params["deployment"] == "search-api"
    assert "String should match pattern" in str(
        bind({"namespace": "search", "deployment": "{{ labels.deployment }}_X"}, K8sRestartParams, inc)
    )


# ---- through the HTTP endpoints, with the example runbooks ------------------------------------------------
@pytest.fixture
def examples_app(db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget) -> Iterator[App]:
    with running_app(db_url, fake_encoder, target, runbooks_dir=EXAMPLES) as a:
        yield a


def test_the_issues_near_misses_get_no_buttons(examples_app: App) -> None:
    app = examples_app
    # matched db-connection-pool by `services:` / `labels: {team: payments}` alone before
    assert (
        app.alert(
            "generic", _alert("PaymentsWebhookQueueStuck", "payments", "nm-1", team="payments")
        ).status_code
        == 202
    )
    assert _request_buttons(app) == []
    assert "not offered" in _blocks(app)
    _forge(app, 1, "restart-pgbouncer")
    assert (
        app.alert(
            "generic", _alert("PaymentsQueueBacklog", "payments-worker", "nm-2", team="payments")
        ).status_code
        == 202
    )
    assert _request_buttons(app) == []
    _forge(app, 2, "terminate-idle-transactions")
    # a Job is not a Deployment: no runbook names KubeJobFailed, whatever the service
    assert (
        app.alert(
            "generic", _alert("KubeJobFailed", "reporting", "nm-3", job_name="reporting-nightly")
        ).status_code
        == 202
    )
    assert _request_buttons(app) == []
    _forge(app, 3, "rollback-deployment")
    assert _requests(app) == []  # no forged click made a request
    assert len(app.ephemerals()) == 3 and all(
        "not offered" in t or "too weakly" in t for t in app.ephemerals()
    )


def test_a_shared_runbook_binds_its_action_to_each_incident(examples_app: App, target: WebhookTarget) -> None:
    app = examples_app
    app.alert("generic", _alert("KafkaConsumerLagHigh", "search", "k-1", consumergroup="search-indexer"))
    assert _request_buttons(app) == ["Request: Scale consumer deployment"]
    app.click("U0ONCALL1", app.posts()[-1], "Request: Scale consumer deployment")
    prompt = app.posts()[-1]
    shown = json.dumps(prompt.params["blocks"])
    assert "search-indexer" in shown and "notifications" not in shown  # the prompt shows the bound params
    (req,) = _requests(app)
    assert req.action["params"] == {
        "url": "/actions/scale-deployment",
        "service": "search",
        "deployment": "search-indexer",
        "replicas": 12,
    }
    app.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1
    assert target.received[0].body["params"] == {
        "service": "search",
        "deployment": "search-indexer",
        "replicas": 12,
    }


def test_an_action_whose_template_cannot_be_filled_is_shown_with_the_reason(examples_app: App) -> None:
    app = examples_app
    app.alert("generic", _alert("KubePodCrashLooping", "checkout", "p-1", pod="checkout-7d9f-x2k4q"))
    assert _request_buttons(app) == []
    blocks = _blocks(app)
    assert "Roll back to previous ReplicaSet: not offered: label `deployment` missing" in blocks
    assert "Suggested runbook:* Pods OOMKilled" in blocks  # still shown for reading
    _forge(app, 1, "rollback-deployment")
    assert _requests(app) == [] and "label `deployment` missing" in app.ephemerals()[-1]
    app.alert("generic", _alert("KubePodCrashLooping", "inventory", "p-2", deployment="inventory-api"))
    assert _request_buttons(app) == ["Request: Roll back to previous ReplicaSet"]


def test_a_constant_target_naming_another_service_is_never_offered(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> None:
    (tmp_path / "rb.md").write_text(
        "---\nid: shared\ntitle: Roll back a deployment\nalert_names: [KubeDeploymentReplicasMismatch]\n"
        "actions:\n"
        "  - {id: fixed, title: Roll back notifications, url: /x, approvers: [U0SRELEAD],\n"
        "     params: {service: notifications, deployment: notifications-worker}}\n"
        "  - {id: bound, title: Roll back this one, url: /x, approvers: [U0SRELEAD],\n"
        "     params: {service: '{{ service }}', deployment: '{{ labels.deployment }}'}}\n"
        "---\nbody\n"
    )
    with running_app(db_url, fake_encoder, target, runbooks_dir=tmp_path) as app:
        app.alert(
            "generic",
            _alert("KubeDeploymentReplicasMismatch", "reporting", "r-1", deployment="reporting-api"),
        )
        assert _request_buttons(app) == ["Request: Roll back this one"]
        assert "`service` is &#x27;notifications&#x27;" in _blocks(app) or "is 'notifications'" in _blocks(
            app
        )
        _forge(app, 1, "fixed")
        assert _requests(app) == []
        assert "not the incident's service reporting" in app.ephemerals()[-1]


def test_offer_on_any_alert_of_service_needs_a_fully_bound_action(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> None:
    (tmp_path / "rb.md").write_text(
        "---\nid: search-generic\ntitle: Search service first aid\nservices: [search]\n"
        "actions:\n"
        "  - {id: restart, title: Restart this deployment, url: /restart, approvers: [U0SRELEAD],\n"
        "     offer_on: any_alert_of_service, params: {deployment: '{{ labels.deployment }}'}}\n"
        "  - {id: flush, title: Flush the search cache, url: /flush, approvers: [U0SRELEAD],\n"
        "     offer_on: any_alert_of_service, params: {deployment: search-cache}}\n"
        "  - {id: reindex, title: Reindex, url: /reindex, approvers: [U0SRELEAD],\n"
        "     params: {service: '{{ service }}'}}\n"
        "---\nbody\n"
    )
    with running_app(db_url, fake_encoder, target, runbooks_dir=tmp_path) as app:
        app.alert("generic", _alert("SearchLatencyHigh", "search", "s-1", deployment="search-api"))
        assert _request_buttons(app) == ["Request: Restart this deployment"]
        blocks = _blocks(app)
        assert (
            "Flush the search cache: not offered: offer_on: any_alert_of_service needs every target" in blocks
        )
        assert "Reindex: not offered: the runbook names neither this alert nor this model" in blocks
        app.alert("generic", _alert("SearchLatencyHigh", "billing", "s-2", deployment="billing-api"))
        assert _request_buttons(app) == []  # another service: the runbook does not apply at all


def test_mlflow_rollback_without_mlflow_is_imported_and_names_the_setting(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget
) -> None:
    with running_app(db_url, fake_encoder, target, runbooks_dir=EXAMPLES) as app:
        with app.rt.sessions() as s:
            report = import_dir(s, EXAMPLES, registry=app.rt.remediation.executors)
        assert report.errors == []
        assert report.warnings == [
            f"{EXAMPLES / 'model-drift-rollback.md'}: actions[0].type: action type 'mlflow_rollback' needs "
            "MLFLOW_TRACKING_URI; imported, not offered until it is set"
        ]
        app.sample("model", "model_drift.json")
        blocks = _blocks(app)
        assert "Suggested runbook:* ML model feature drift" in blocks and _request_buttons(app) == []
        assert "not offered: action type &#x27;mlflow_rollback&#x27; needs MLFLOW_TRACKING_URI" in blocks or (
            "not offered: action type 'mlflow_rollback' needs MLFLOW_TRACKING_URI" in blocks
        )
