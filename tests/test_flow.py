"""End to end through the real HTTP app and the real Bolt app: alerts, dedup, grouping, resolve,
approvals and their refusals, executor results, and the audit trail. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.kernel import audit
from bot.kernel.models import DeadLetter, Incident, RemediationRequest
from incident_bot.demo.webhook_target import WebhookTarget
from tests.apphelpers import ALERTS, App, feature_staleness


def _count(app: App, model: type) -> int:
    with app.rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_alertmanager_group_opens_one_incident_and_posts_once(app: App) -> None:
    resp = app.sample("alertmanager", "alertmanager_checkout.json")
    assert resp.status_code == 202
    assert resp.json()["incidents_created"] == [1]
    posts = app.posts()
    assert len(posts) == 1
    blocks_json = json.dumps(posts[0].params["blocks"])
    assert "Similar past incidents" in blocks_json and "Request: Restart PgBouncer" in blocks_json
    assert "INC-" in blocks_json  # past incidents from the sample knowledge base are shown
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and len(inc.alerts) == 2 and inc.slack_ts == posts[0].response["ts"]
        assert inc.runbook_id == "db-connection-pool"


def test_repeat_is_deduplicated_and_posts_nothing(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    again = app.sample("alertmanager", "alertmanager_checkout.json")
    assert again.json()["duplicates"] == 2 and again.json()["incidents_created"] == []
    assert len(app.posts()) == 1
    assert app.stub.of("chat.update") == []
    assert _count(app, Incident) == 1


def test_alerts_without_group_key_group_by_service_and_name(app: App) -> None:
    body = json.loads((ALERTS / "generic.json").read_text())
    first = app.alert("generic", body).json()
    other_host = {**body, "fingerprint": "another-host", "labels": {"host": "inv-db-3"}}
    second = app.alert("generic", other_host).json()
    assert first["incidents_created"] == [1]
    assert second["incidents_created"] == [] and second["incidents_updated"] == [1]
    different = {**body, "name": "CPUThrottling", "fingerprint": "cpu-1"}
    assert app.alert("generic", different).json()["incidents_created"] == [2]


def test_resolved_group_resolves_incident_and_updates_message(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    resp = app.sample("alertmanager", "alertmanager_checkout_resolved.json")
    assert resp.json()["incidents_resolved"] == [1]
    assert len(app.posts()) == 1  # updated, not re-posted
    update = app.stub.of("chat.update")[-1]
    assert update.params["ts"] == app.posts()[0].response["ts"]
    assert "Resolved" in json.dumps(update.params["blocks"])
    assert "Request:" not in json.dumps(update.params["blocks"])


def test_partial_resolve_keeps_incident_open(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    body = json.loads((ALERTS / "alertmanager_checkout_resolved.json").read_text())
    body["alerts"] = body["alerts"][:1]
    assert app.alert("alertmanager", body).json()["incidents_resolved"] == []
    with app.rt.sessions() as s:
        assert s.get(Incident, 1).status == "open"  # type: ignore[union-attr]


def _request_restart(app: App, user: str = "U0ONCALL1"):  # type: ignore[no-untyped-def]
    app.sample("alertmanager", "alertmanager_checkout.json")
    assert app.click(user, app.posts()[0], "Request:").status_code == 200
    return app.posts()[-1]


def test_approval_runs_action_once_with_signed_webhook(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    assert "Approve" in json.dumps(prompt.params["blocks"]) and prompt.params["thread_ts"]
    app.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1
    got = target.received[0]
    assert got.signature_ok and got.path == "/actions/restart-pgbouncer"
    assert got.body["approved_by"] == "U0SRELEAD" and got.body["params"]["deployment"] == "pgbouncer-checkout"
    with app.rt.sessions() as s:
        req = s.get(RemediationRequest, 1)
        assert req is not None and req.status == "succeeded" and req.result["status_code"] == 200
        events = [e.event for e in audit.trail(s, incident_id=1)]
    assert events[-5:] == [
        "remediation.requested",
        "remediation.approval",
        "remediation.approved",
        "remediation.running",
        "remediation.succeeded",
    ]
    assert any("succeeded" in (c.params.get("text") or "") for c in app.posts())


def test_double_approval_runs_once(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    app.click("U0SRELEAD", prompt, "Approve")
    app.click("U0SRELEAD", prompt, "Approve")
    app.click("U0ONCALL2", prompt, "Approve")
    assert len(target.received) == 1
    assert sum("already" in t for t in app.ephemerals()) == 2
    assert "has already run and succeeded; nothing more to approve" in app.ephemerals()[-1]  # plain words


def test_unauthorised_user_cannot_approve(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    app.click("U0RANDOM", prompt, "Approve")
    assert target.received == []
    assert "not on the approver list" in app.ephemerals()[-1]
    with app.rt.sessions() as s:
        assert s.get(RemediationRequest, 1).status == "pending"  # type: ignore[union-attr]
        assert "remediation.denied" in [e.event for e in audit.trail(s, incident_id=1)]


def test_requester_cannot_approve_own_request_even_if_approver(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app, user="U0SRELEAD")  # U0SRELEAD is on the approver list
    app.click("U0SRELEAD", prompt, "Approve")
    assert target.received == []
    assert "someone else" in app.ephemerals()[-1]


def test_forged_button_value_cannot_widen_authority(app: App, target: WebhookTarget) -> None:
    """The click names only a request id; who may approve comes from the database row."""
    prompt = _request_restart(app)
    for block in prompt.params["blocks"]:
        for el in block.get("elements", []):
            if el.get("type") == "button":
                el["value"] = "1"  # same id; nothing else in the payload is trusted
    app.click("U0EVIL", prompt, "Approve")
    assert target.received == []


def test_reject_closes_request_without_running(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    app.click("U0ONCALL2", prompt, "Reject")
    app.click("U0SRELEAD", prompt, "Approve")
    assert target.received == []
    with app.rt.sessions() as s:
        assert s.get(RemediationRequest, 1).status == "rejected"  # type: ignore[union-attr]


def test_model_owner_from_settings_approves_model_action(app: App, target: WebhookTarget) -> None:
    app.alert("model", feature_staleness())
    msg = app.posts()[0]
    assert "Request: Run incremental feature materialization" in json.dumps(msg.params["blocks"])
    app.click("U0ONCALL1", msg, "Request:")
    prompt = app.posts()[-1]
    app.click("U0MLOWNER", prompt, "Approve")
    assert len(target.received) == 1 and target.received[0].path == "/actions/feast-materialize"
    assert target.received[0].body["params"] == {"model": "fraud-model", "mode": "incremental"}


def test_failed_action_is_reported_as_failure(app: App, target: WebhookTarget) -> None:
    target.status = 500
    prompt = _request_restart(app)
    app.click("U0SRELEAD", prompt, "Approve")
    with app.rt.sessions() as s:
        req = s.get(RemediationRequest, 1)
        assert req is not None and req.status == "failed" and req.result["error"] == "HTTP 500"
    assert any("FAILED" in (c.params.get("text") or "") for c in app.posts())
    assert "Failed" in json.dumps(app.stub.of("chat.update")[-1].params["blocks"])


def test_bad_signature_is_rejected_and_kept(app: App) -> None:
    _request_restart(app)
    before = len(app.posts())
    resp = app.click("U0SRELEAD", app.posts()[-1], "Approve", secret="wrong-secret")
    assert resp.status_code == 401
    assert len(app.posts()) == before
    with app.rt.sessions() as s:
        dl = s.scalars(select(DeadLetter).where(DeadLetter.source == "slack")).all()
        assert dl and "401" in dl[-1].reason and "payload=" in dl[-1].body


def test_stale_timestamp_is_rejected(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    import time

    resp = app.click("U0SRELEAD", prompt, "Approve", timestamp=int(time.time()) - 600)
    assert resp.status_code == 401
    assert target.received == []


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"{not json", 400, "not valid JSON"),
        (
            json.dumps({"version": "4", "status": "firing", "alerts": [{"labels": {}}]}).encode(),
            400,
            "alertname",
        ),
        (
            json.dumps({"model": "m", "metric": "psi", "value": "high", "threshold": 0.2}).encode(),
            400,
            "value",
        ),
    ],
)
def test_malformed_alert_gets_4xx_naming_problem_and_dead_letter(
    app: App, body: bytes, status: int, problem: str
) -> None:
    source = "model" if b'"model"' in body else "alertmanager"
    resp = app.alert(source, body)
    assert resp.status_code == status
    assert problem in resp.json()["error"]
    with app.rt.sessions() as s:
        dl = s.get(DeadLetter, resp.json()["dead_letter_id"])
        assert dl is not None and dl.body == body.decode() and problem in dl.reason
    assert _count(app, Incident) == 0


def test_alert_endpoints_require_bearer_token(app: App) -> None:
    resp = app.alert("generic", (ALERTS / "generic.json").read_bytes(), token="nope")
    assert resp.status_code == 401
    assert _count(app, Incident) == 0


def test_unknown_source_is_404_and_kept(app: App) -> None:
    resp = app.alert("nagios", b"{}")
    assert resp.status_code == 404 and "alertmanager" in resp.json()["error"]
    assert _count(app, DeadLetter) == 1


def test_untrusted_alert_text_is_escaped_in_slack(app: App) -> None:
    evil = "<!channel> pay now <https://evil.example|click me> & <@U0BOSS>"
    app.alert(
        "generic",
        {
            "name": "Injected",
            "service": "checkout",
            "summary": evil,
            "description": evil,
            "labels": {"note": evil},
        },
    )
    text = json.dumps(app.posts()[0].params["blocks"]) + app.posts()[0].params["text"]
    for raw in ("<!channel>", "<https://evil.example", "<@U0BOSS>"):
        assert raw not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


def test_resolve_with_rca_note_learns_it(app: App) -> None:
    app.sample("model", "model_drift.json")
    app.click("U0MLOWNER", app.posts()[0], "Resolve")
    view = app.stub.of("views.open")[0].params["view"]
    from incident_bot.demo.slack_stub import view_submission_body

    note = "Upstream merchant_category mapping changed; rolled champion alias back to v11."
    body = view_submission_body(user="U0MLOWNER", view=view, values={"rca": {"rca_note": {"value": note}}})
    assert app.slack(body).status_code == 200
    from retrieval.types import Query

    hits = app.rt.kb.search(Query(text="merchant_category mapping changed champion alias"), top_k=3)
    assert hits[0].id == "incident-1"
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and inc.status == "resolved" and inc.rca_note == note


def test_acknowledge_updates_message(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.click("U0ONCALL1", app.posts()[0], "Acknowledge")
    blocks = json.dumps(app.stub.of("chat.update")[-1].params["blocks"])
    assert "U0ONCALL1" in blocks and "Acknowledge" not in blocks.split("Resolve")[0][-200:]
    with app.rt.sessions() as s:
        assert s.get(Incident, 1).acknowledged_by == "U0ONCALL1"  # type: ignore[union-attr]


def test_unhelpful_feedback_removes_match_for_that_incident(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    msg = app.posts()[0]
    app.click("U0ONCALL1", msg, "👎")
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None
        view = app.rt.advisor.advise(s, inc)
    first_doc = json.loads(json.dumps(msg.params["blocks"]))
    down = next(
        el
        for b in first_doc
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["text"]["text"] == "👎"
    )
    excluded = down["value"].split(":", 2)[2]
    assert excluded not in [m.id for m in view.matches]
    # the message was re-rendered at once without the unhelpful match, still showing three others
    updated = json.dumps(app.stub.of("chat.update")[-1].params["blocks"], ensure_ascii=False)
    assert excluded not in updated and updated.count('"👎"') >= 3


def test_slack_outage_loses_nothing_and_retry_posts_later(app: App) -> None:
    import socket

    from slack_sdk import WebClient

    with socket.socket() as s:  # a port nobody listens on: Slack is unreachable
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/api/"
    working = app.rt.chat.client
    app.rt.chat.client = WebClient(token="xoxb-test", base_url=dead, timeout=2)
    resp = app.sample("alertmanager", "alertmanager_checkout.json")
    assert resp.status_code == 202 and resp.json()["incidents_created"] == [1]
    assert app.posts() == [] and app.rt.service.unposted_incident_ids() == [1]
    assert app.rt.service.outbox.depth() == 1  # the post is kept in the outbox, committed with the incident
    app.rt.chat.client = working  # Slack is back; an outbox worker delivers:
    app.drain()
    assert len(app.posts()) == 1 and app.rt.service.unposted_incident_ids() == []
    assert app.rt.service.outbox.depth() == 0


def test_an_incident_that_opens_and_resolves_during_a_slack_outage_is_still_posted_once(app: App) -> None:
    working = app.rt.chat.client
    app.rt.chat.client = _dead_slack(app)
    assert app.sample("alertmanager", "alertmanager_checkout.json").json()["incidents_created"] == [1]
    assert app.sample("alertmanager", "alertmanager_checkout_resolved.json").json()["incidents_resolved"] == [
        1
    ]
    assert app.posts() == []
    app.rt.chat.client = working  # Slack is back
    app.drain()
    posts = app.posts()
    assert len(posts) == 1  # posted once, not lost because it resolved first
    assert "resolved by source:alertmanager" in json.dumps(posts[0].params)  # and it says so
    assert app.rt.service.outbox.depth() == 0


def _dead_slack(app: App):  # type: ignore[no-untyped-def]
    """A Slack client whose Slack is unreachable (a port nobody listens on)."""
    import socket

    from slack_sdk import WebClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/api/"
    return WebClient(token="xoxb-test", base_url=dead, timeout=2)


def test_owner_named_in_alert_payload_grants_no_authority(app: App, target: WebhookTarget) -> None:
    app.alert("model", feature_staleness(owner="U0MALLORY"))
    app.click("U0ONCALL1", app.posts()[0], "Request:")
    prompt = app.posts()[-1]
    app.click("U0MALLORY", prompt, "Approve")
    assert target.received == [] and "not on the approver list" in app.ephemerals()[-1]
    with app.rt.sessions() as s:
        assert s.get(RemediationRequest, 1).approvers == ["U0MLOWNER", "U0MLLEAD"]  # type: ignore[union-attr]


def test_action_runs_and_is_recorded_even_if_slack_fails_after_approval(
    app: App, target: WebhookTarget
) -> None:
    prompt = _request_restart(app)
    app.rt.chat.client = _dead_slack(app)
    app.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1
    with app.rt.sessions() as s:
        assert s.get(RemediationRequest, 1).status == "succeeded"  # type: ignore[union-attr]


def test_prompt_and_decisions_during_a_slack_outage_arrive_after_it(app: App, target: WebhookTarget) -> None:
    """The approval prompt and its re-renders are outbox rows committed with the request and each decision:
    Slack failing loses none of them, and a second click never makes a second request."""
    app.sample("alertmanager", "alertmanager_checkout.json")
    msg = app.posts()[0]
    app.stub.fail("chat.postMessage", status=503)
    app.click("U0ONCALL1", msg, "Request:")
    assert ("chat.postMessage", 503) in app.stub.failed and len(app.posts()) == 1  # not delivered yet
    app.click("U0ONCALL2", msg, "Request:")
    assert "already requested" in app.ephemerals()[-1]
    with app.rt.sessions() as s:
        assert _count(app, RemediationRequest) == 1
        assert s.get(RemediationRequest, 1).slack_ts is None  # type: ignore[union-attr]
    app.stub.heal()
    app.drain()
    prompt = app.posts()[-1]
    assert (
        "Approve" in json.dumps(prompt.params["blocks"]) and prompt.params["thread_ts"] == msg.response["ts"]
    )
    app.stub.fail("chat.update", status=429, retry_after=1)
    app.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1  # the action ran; Slack's state cannot hold it up
    app.stub.heal()
    app.drain()
    final = app.stub.of("chat.update")[-1]
    assert final.params["ts"] == prompt.response["ts"] and "Succeeded" in json.dumps(final.params["blocks"])
    with app.rt.sessions() as s:
        assert s.get(RemediationRequest, 1).slack_ts == prompt.response["ts"]  # type: ignore[union-attr]
    assert app.rt.service.outbox.depth() == 0


def test_approval_after_incident_resolved_is_refused(app: App, target: WebhookTarget) -> None:
    prompt = _request_restart(app)
    app.sample("alertmanager", "alertmanager_checkout_resolved.json")
    app.click("U0SRELEAD", prompt, "Approve")
    assert target.received == [] and "resolved" in app.ephemerals()[-1]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"name": "x", "starts_at": ' + b"9" * 5000 + b"}", 400),
        (b'{"name": "x", "labels": {"v": NaN}}', 400),
        (b'{"name": "x\\u0000y", "service": "svc\\ud800"}', 202),
        (json.dumps({"name": "x", "service": "s" * 3000, "group_key": "g" * 3000}).encode(), 202),
    ],
)
def test_odd_generic_bodies_never_500(app: App, body: bytes, status: int) -> None:
    resp = app.alert("generic", body)
    assert resp.status_code == status, resp.text
    if status >= 400:
        with app.rt.sessions() as s:
            assert s.get(DeadLetter, resp.json()["dead_letter_id"]) is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"payload=notjson", 400),
        (b"payload=%7B%7D", 404),
        (b"garbage", 404),
    ],
)
def test_signed_but_malformed_slack_payload_is_4xx_and_kept(app: App, body: bytes, status: int) -> None:
    resp = app.slack(body)
    assert resp.status_code == status
    with app.rt.sessions() as s:
        dl = s.scalars(select(DeadLetter).where(DeadLetter.source == "slack")).all()
        assert len(dl) == 1 and dl[0].body == body.decode()


def test_button_with_garbage_value_gets_a_private_explanation(app: App, target: WebhookTarget) -> None:
    from incident_bot.demo.slack_stub import block_action_body

    button = {
        "action_id": "remediation_approve",
        "value": "1; DROP TABLE",
        "text": {"type": "plain_text", "text": "x"},
    }
    resp = app.slack(
        block_action_body(user="U0SRELEAD", button=button, channel="C0INCIDENTS", message_ts="1.1")
    )
    assert resp.status_code == 200 and target.received == []
    assert "invalid remediation request id" in app.ephemerals()[-1]
