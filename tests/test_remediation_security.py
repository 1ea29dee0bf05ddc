"""Approval security through the real HTTP + Bolt app with signed requests, on SQLite and PostgreSQL:
user groups, N-of-M, self-approval, expiry, the kill switch, the rate limit, and the audit export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, update

from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.models import RemediationRequest
from bot.remediation import killswitch
from incident_bot.cli.main import main
from incident_bot.demo.slack_stub import ApiCall, signed_headers
from incident_bot.demo.webhook_target import WebhookTarget
from tests.apphelpers import SIGNING_SECRET, App, running_app

POLICY = """
defaults:
  rate_limit_per_hour: 0
actions:
  restart-pgbouncer:
    approvers: [S0SRE, U0SRELEAD]
    approvals_required: 2
    ttl_minutes: 15
  terminate-idle-transactions:
    approvers: [U0SRELEAD, U0ONCALL2]
    rate_limit_per_hour: 1
"""


@pytest.fixture
def sec(db_url: str, fake_encoder, target: WebhookTarget, tmp_path: Path) -> Iterator[App]:  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    with running_app(
        db_url, fake_encoder, target, policy_path=policy, usergroups={"S0SRE": ["U0SRE1", "U0SRE2"]}
    ) as a:
        a.sample("alertmanager", "alertmanager_checkout.json")
        yield a


def _request(app: App, label: str = "Request: Restart PgBouncer", user: str = "U0ONCALL1") -> ApiCall:
    app.click(user, app.posts()[0], label)
    return [c for c in app.posts() if str(c.params.get("text", "")).startswith("Approval needed")][-1]


def _req(app: App) -> RemediationRequest:
    with app.rt.sessions() as s:
        row = s.scalars(select(RemediationRequest).order_by(RemediationRequest.id.desc())).first()
        assert row is not None
        return row


def test_user_group_members_approve_n_of_m_needs_distinct_people(sec: App, target: WebhookTarget) -> None:
    prompt = _request(sec)
    text = json.dumps(prompt.params["blocks"])
    assert "0 of 2" in text and "<@U0SRE1>" in text and "POST /actions/restart-pgbouncer" in text
    sec.click("U0SRE1", prompt, "Approve")
    sec.click("U0SRE1", prompt, "Approve")  # the same person twice counts once
    assert target.received == [] and _req(sec).status == "pending"
    assert any("already approved" in t for t in sec.ephemerals())
    update_call = sec.stub.of("chat.update")[-1]
    assert "1 of 2 (&lt;@U0SRE1&gt;)" in json.dumps(update_call.params) or "1 of 2 (<@U0SRE1>)" in json.dumps(
        update_call.params["blocks"]
    )
    sec.click("U0OUTSIDER", prompt, "Approve")
    assert any("not on the approver list" in t for t in sec.ephemerals())
    sec.click("U0SRE2", prompt, "Approve")
    assert len(target.received) == 1 and _req(sec).status == "succeeded"
    assert "U0SRE1,U0SRE2" == target.received[0].body["approved_by"]


def test_requester_in_the_group_cannot_approve_own_request(sec: App, target: WebhookTarget) -> None:
    prompt = _request(sec, user="U0SRE1")
    sec.click("U0SRE1", prompt, "Approve")
    assert any("You requested this action" in t for t in sec.ephemerals())
    assert target.received == [] and _req(sec).status == "pending"


def test_approval_after_expiry_is_refused_and_prompt_loses_buttons(sec: App, target: WebhookTarget) -> None:
    prompt = _request(sec)
    with transaction(sec.rt.sessions) as s:
        s.execute(update(RemediationRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    sec.click("U0SRE1", prompt, "Approve")
    assert any("expired" in t for t in sec.ephemerals())
    assert _req(sec).status == "expired" and target.received == []
    last = sec.stub.of("chat.update")[-1].params
    assert "Expired" in json.dumps(last["blocks"]) and "remediation_approve" not in json.dumps(last["blocks"])


def test_scheduler_job_expires_due_requests_and_updates_slack(sec: App) -> None:
    _request(sec)
    assert sec.rt.service.expire_requests() == []  # not due yet
    with transaction(sec.rt.sessions) as s:
        s.execute(update(RemediationRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert sec.rt.service.expire_requests() == [_req(sec).id]
    assert _req(sec).status == "expired" and _req(sec).reason == "not approved before it expired"
    sec.drain()  # the prompt's re-render was queued with the expiry; an outbox worker delivers it
    assert "Expired" in json.dumps(sec.stub.of("chat.update")[-1].params["blocks"])
    assert sec.rt.service.expire_requests() == []


def _slash(app: App, user: str, text: str) -> None:
    assert _slash_response(app, user, text).status_code == 200


def _slash_response(app: App, user: str, text: str):  # type: ignore[no-untyped-def]
    body = urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": user,
            "channel_id": "C0INCIDENTS",
            "response_url": app.stub.base_url + "response",
            "trigger_id": "t",
            "team_id": "T0TEAM",
            "user_name": "x",
            "channel_name": "incidents",
            "api_app_id": "A0APP",
            "token": "x",
        }
    ).encode()
    return app.client.post(
        "/slack/events",
        content=body,
        headers={**signed_headers(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_freeze_blocks_approval_and_an_approved_unstarted_request(sec: App, target: WebhookTarget) -> None:
    _slash(sec, "U0OUTSIDER", "freeze")
    assert not sec.rt.remediation.frozen()  # only approvers may flip it
    prompt = _request(sec)
    sec.click("U0SRE1", prompt, "Approve")
    _slash(sec, "U0SRE2", "freeze")  # a group member is an approver
    assert sec.rt.remediation.frozen()
    sec.click("U0SRELEAD", prompt, "Approve")
    assert any("frozen" in t for t in sec.ephemerals()) and target.received == []
    _request(sec, label="Request: Terminate idle")  # cannot even be requested while frozen
    assert any("frozen" in t for t in sec.ephemerals())
    # an approved request that has not started yet is stopped by the switch too
    with transaction(sec.rt.sessions) as s:
        s.execute(update(RemediationRequest).values(status="approved"))
    assert sec.rt.remediation.run(_req(sec).id) is None
    assert _req(sec).status == "cancelled" and target.received == []
    _slash(sec, "U0SRELEAD", "unfreeze")
    assert not sec.rt.remediation.frozen()


def test_rate_limit_refuses_the_second_run_within_the_hour(sec: App, target: WebhookTarget) -> None:
    prompt = _request(sec, label="Request: Terminate idle")
    sec.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1
    prompt = _request(sec, label="Request: Terminate idle")
    sec.click("U0SRELEAD", prompt, "Approve")
    assert len(target.received) == 1 and _req(sec).status == "pending"
    assert any("Rate limit" in t for t in sec.ephemerals())


def test_kill_switch_and_audit_export_from_the_cli(
    sec: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sec.rt.settings.database_url)
    prompt = _request(sec, label="Request: Terminate idle")
    sec.click("U0SRELEAD", prompt, "Approve")
    assert main(["actions", "freeze", "--reason", "change freeze"]) == 0
    with sec.rt.sessions() as s:
        assert killswitch.is_frozen(s)
    assert main(["actions", "unfreeze"]) == 0
    capsys.readouterr()
    assert main(["audit", "export", "--since", "30d", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [r["event"] for r in rows]
    assert "remediation.requested" in events and "remediation.succeeded" in events
    assert "remediation.frozen" in events and "remediation.unfrozen" in events
    succ = next(r for r in rows if r["event"] == "remediation.succeeded")
    assert succ["action_id"] == "terminate-idle-transactions" and len(succ["payload_sha256"]) == 64
    assert main(["audit", "export", "--since", "30d", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("at,actor,event,incident_id,request_id") and len(out) >= len(rows) + 1
    with pytest.raises(SystemExit):
        main(["audit", "export", "--since", "soon"])
