"""The ``service-owner`` approver role (issue 18, deliverable 1): the members of the Slack user group that owns
the incident's service in the service catalog, resolved at each decision, never from an alert; through the real
HTTP + Bolt app with signed clicks, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.kernel.models import RemediationRequest
from bot.remediation.policy import PolicyError, load_policy
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import running_app
from tests.decide_helpers import overload_alert, prompt_of, write_runbook

POLICY = """\
defaults:
  approvers: [service-owner]
  approvals_required: 1
  rate_limit_per_hour: 0
"""

CATALOG = """\
services:
  payments:
    owner: group:payments-team
    slack_usergroup: S0PAYTEAM
    tier: 1
  search:
    owner: group:search-team
"""


def test_service_owner_group_approves_for_its_own_service_only(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> None:
    (tmp_path / "policy.yml").write_text(POLICY)
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    with running_app(
        db_url,
        fake_encoder,
        target,
        policy_path=tmp_path / "policy.yml",
        runbooks_dir=write_runbook(tmp_path / "runbooks", actions=1),
        service_catalog=tmp_path / "catalog.yaml",
        usergroups={"S0PAYTEAM": ["U0PAYOWNER"], "S0OTHER": ["U0OTHER"]},
    ) as app:
        assert app.alert("alertmanager", overload_alert("payments")).status_code == 202
        assert app.click("U0REQ", app.posts()[0], "Request: Shed load step 0").status_code == 200
        with app.rt.sessions() as s:
            req = s.scalars(select(RemediationRequest)).one()
        prompt = prompt_of(app.stub, req.id)
        assert "<@U0PAYOWNER>" in json.dumps(prompt.params["blocks"])  # the owner group's members, by mention
        app.click("U0OTHER", prompt, "Approve")  # not in the payments owner group
        assert "not on the approver list" in app.ephemerals()[-1] and target.received == []
        app.click("U0PAYOWNER", prompt, "Approve")
        assert len(target.received) == 1 and target.received[0].body["approved_by"] == "U0PAYOWNER"

        # search has an owner but no Slack user group: nobody can approve, and the prompt says why
        assert app.alert("alertmanager", overload_alert("search")).status_code == 202
        search_post = next(
            p for p in app.posts() if "search" in p.params.get("text", "") and not p.params.get("thread_ts")
        )
        assert app.click("U0REQ", search_post, "Request: Shed load step 0").status_code == 200
        with app.rt.sessions() as s:
            req2 = s.scalars(select(RemediationRequest).order_by(RemediationRequest.id.desc())).first()
        assert req2 is not None
        shown = json.dumps(prompt_of(app.stub, req2.id).params["blocks"])
        assert "service-owner: the service catalog gives search no owner group with members" in shown
        app.click("U0PAYOWNER", prompt_of(app.stub, req2.id), "Approve")  # owns payments, not search
        assert "not on the approver list" in app.ephemerals()[-1] and len(target.received) == 1


def test_policy_accepts_the_role_and_still_refuses_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    assert load_policy(path).defaults.approvers == ("service-owner",)
    path.write_text(POLICY.replace("service-owner", "service-owners"))
    with pytest.raises(PolicyError, match="'service-owner'"):
        load_policy(path)
