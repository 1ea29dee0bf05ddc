"""Policy at the moment of decision and approvals people can read (issue 16, deliverables 4 and 7), through
signed Slack clicks, slash commands and the CLI on the real HTTP + Bolt app, on SQLite and PostgreSQL.

Each defect the issue reports is a test here: a request made before a policy change that now forbids it was
approved and ran; an unreadable user group read "_none configured_"; the final prompt named only the last
approver; ``actions freeze`` from the CLI posted nothing and pending prompts kept their Approve button.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.kernel.db import transaction
from bot.kernel.models import Approval, AuditEvent, RemediationRequest
from handlers.blocks.render import render_text
from incident_bot.cli.main import main
from incident_bot.demo.slack_stub import ApiCall, find_button
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app
from tests.decide_helpers import overload_alert, prompt_of, write_runbook
from tests.test_remediation_security import _slash_response

BASE = """\
defaults:
  approvers: [U0APP0, U0APP1]
  approvals_required: 1
  rate_limit_per_hour: 0
"""


@dataclass
class Env:
    app: App
    policy: Path

    def set_policy(self, text: str) -> None:
        """Rewrite policy.yml as an operator would (the mtime moves forward, so the change is seen)."""
        before = self.policy.stat().st_mtime_ns
        self.policy.write_text(text, encoding="utf-8")
        os.utime(self.policy, ns=(before + 10**9, before + 10**9))

    def request(self, action: str = "Shed load step 0", user: str = "U0REQ") -> tuple[ApiCall, int]:
        assert self.app.click(user, self.app.posts()[0], f"Request: {action}").status_code == 200
        rid = self.last().id
        return prompt_of(self.app.stub, rid), rid

    def last(self) -> RemediationRequest:
        with self.app.rt.sessions() as s:
            row = s.scalars(select(RemediationRequest).order_by(RemediationRequest.id.desc())).first()
            assert row is not None
            return row

    def prompt_now(self, prompt: ApiCall) -> list[dict]:  # type: ignore[type-arg]
        """The prompt's blocks as Slack shows them now (the last chat.update of its ts, else the post)."""
        updates = [c for c in self.app.stub.of("chat.update") if c.params.get("ts") == prompt.response["ts"]]
        return list((updates[-1] if updates else prompt).params["blocks"])

    def events(self, name: str) -> list[AuditEvent]:
        with self.app.rt.sessions() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.event == name)))


@pytest.fixture
def env(db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path) -> Iterator[Env]:
    policy = tmp_path / "policy.yml"
    policy.write_text(BASE)
    with running_app(
        db_url,
        fake_encoder,
        target,
        policy_path=policy,
        runbooks_dir=write_runbook(tmp_path / "runbooks", actions=2),
        usergroups={"S0SRE": ["U0SRE1", "U0SRE2"]},
    ) as app:
        assert app.alert("alertmanager", overload_alert("payments")).status_code == 202
        yield Env(app, policy)


def _has_approve(blocks: list[dict]) -> bool:  # type: ignore[type-arg]
    try:
        find_button(blocks, "Approve")
    except LookupError:
        return False
    return True


# ---- deliverable 4: the policy as it is at the moment of decision ----------------------------------------
def test_request_made_before_a_policy_change_that_now_forbids_it_is_refused_at_approval(
    env: Env, target: WebhookTarget
) -> None:
    prompt, rid = env.request()
    env.set_policy(BASE + "  services: [notifications, search]\n")  # the change
    env.app.click("U0APP0", prompt, "Approve")
    assert target.received == []  # it did not run
    row = env.last()
    assert row.status == "refused" and "only for services notifications, search" in (row.reason or "")
    told = env.app.ephemerals()[-1]
    assert f"Request #{rid} refused" in told and "notifications, search" in told
    shown = render_text(env.prompt_now(prompt))
    assert "Refused: nothing changed" in shown and "notifications, search" in shown
    assert not _has_approve(env.prompt_now(prompt))
    assert [e.request_id for e in env.events("remediation.refused")] == [rid]
    with env.app.rt.sessions() as s:  # the refused approval is not recorded as one
        assert list(s.scalars(select(Approval).where(Approval.request_id == rid))) == []


def test_approvers_and_approvals_required_are_read_at_each_approval(env: Env, target: WebhookTarget) -> None:
    prompt, rid = env.request()
    env.set_policy(BASE.replace("[U0APP0, U0APP1]", "[S0SRE]").replace("required: 1", "required: 2"))
    env.app.click("U0APP0", prompt, "Approve")  # on the list when requested, not any more
    assert "not on the approver list" in env.app.ephemerals()[-1] and env.last().status == "pending"
    env.app.click("U0SRE1", prompt, "Approve")  # now 2 are required: nothing runs yet
    assert target.received == [] and env.last().status == "pending"
    pending = json.dumps(env.prompt_now(prompt))
    assert (
        "1 of 2" in pending and "Approvers: <@U0SRE1>, <@U0SRE2>" in pending
    )  # the prompt shows the approvers as they are now
    env.app.click("U0SRE2", prompt, "Approve")
    assert len(target.received) == 1 and target.received[0].body["approved_by"] == "U0SRE1,U0SRE2"
    # deliverable 7: the result names every approver, with the request number
    final = json.dumps(env.prompt_now(prompt), ensure_ascii=False)
    assert f"request #{rid}" in final and "*Approved* by <@U0SRE1>, <@U0SRE2>" in final, final
    reply = env.app.posts()[-1].params["text"]
    assert f"(request #{rid}, approved by <@U0SRE1>, <@U0SRE2>)" in reply and "succeeded" in reply, reply


def test_a_broken_policy_change_refuses_approvals_until_fixed(env: Env, target: WebhookTarget) -> None:
    prompt, _ = env.request()
    env.set_policy(BASE + "  approvals_required: many\n")
    env.app.click("U0APP0", prompt, "Approve")
    told = env.app.ephemerals()[-1]
    assert "policy.yml" in told and "approvals are refused until policy.yml is fixed" in told, told
    assert target.received == [] and env.last().status == "pending"  # still approvable once fixed
    env.set_policy(BASE)
    env.app.click("U0APP0", prompt, "Approve")
    assert len(target.received) == 1 and env.last().status == "succeeded"


def test_the_run_reads_the_policy_again(env: Env, target: WebhookTarget) -> None:
    """Approved, not yet started, and the policy changes: the claim refuses it instead of running it."""
    prompt, rid = env.request()
    with transaction(env.app.rt.sessions) as s:
        s.execute(update(RemediationRequest).values(status="approved"))
    env.set_policy(BASE + "  environments: [staging]\n")
    assert env.app.rt.remediation.run(rid) is None
    env.app.drain()
    assert target.received == [] and env.last().status == "refused"
    assert "only in environments staging" in (env.last().reason or "")
    assert "Refused: nothing changed" in render_text(env.prompt_now(prompt))


# ---- deliverable 7: approvals people can read ---------------------------------------------------------
def test_an_unreadable_user_group_says_so_instead_of_none_configured(env: Env) -> None:
    env.app.stub.usergroup_errors["S0BROKEN"] = "missing_scope"
    env.set_policy(BASE.replace("[U0APP0, U0APP1]", "[S0BROKEN]"))
    prompt, _ = env.request()
    shown = render_text(prompt.params["blocks"])
    assert "Approvers: nobody: user group S0BROKEN could not be read: missing_scope" in shown, shown
    assert "none configured" not in shown
    env.set_policy(BASE.replace("[U0APP0, U0APP1]", "[S0BROKEN, U0APP1]"))
    env.app.click("U0APP1", prompt, "Approve")  # the readable approver still can; the note stays
    assert env.last().status == "succeeded"


def _channel_lines(app: App) -> list[str]:
    return [
        str(c.params["text"])
        for c in app.posts()
        if not c.params.get("thread_ts") and "blocks" not in c.params
    ]


def test_freeze_from_the_cli_tells_the_channel_and_takes_approve_off_pending_prompts(
    env: Env, target: WebhookTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt, _ = env.request()
    assert _has_approve(env.prompt_now(prompt))
    monkeypatch.setenv("DATABASE_URL", env.app.rt.settings.database_url)
    assert main(["actions", "freeze", "--reason", "change freeze"]) == 0
    env.app.drain()  # the CLI has no Slack client: the running bot's outbox delivers what it queued
    lines = _channel_lines(env.app)
    assert len(lines) == 1 and "frozen" in lines[0] and "change freeze" in lines[0], lines
    assert "1 pending approval prompt(s) lost their Approve button" in lines[0]
    frozen = env.prompt_now(prompt)
    assert not _has_approve(frozen) and "frozen (kill switch)" in render_text(frozen)
    assert main(["actions", "unfreeze"]) == 0
    env.app.drain()
    lines = _channel_lines(env.app)
    assert len(lines) == 2 and "unfrozen" in lines[1]
    assert _has_approve(env.prompt_now(prompt))
    env.app.click("U0APP0", prompt, "Approve")
    assert len(target.received) == 1


def test_freeze_from_slack_posts_one_line_and_rerenders_prompts(env: Env) -> None:
    prompt, _ = env.request()
    assert _slash_response(env.app, "U0APP1", "freeze").status_code == 200
    env.app.drain()
    lines = _channel_lines(env.app)
    assert len(lines) == 1 and "frozen* by <@U0APP1>" in lines[0], lines
    assert not _has_approve(env.prompt_now(prompt))
    responses = [c for c in env.app.stub.calls if c.method == "response"]
    assert responses and all(c.params.get("response_type") == "ephemeral" for c in responses)
    assert _slash_response(env.app, "U0APP1", "unfreeze").status_code == 200
    env.app.drain()
    assert len(_channel_lines(env.app)) == 2 and _has_approve(env.prompt_now(prompt))
