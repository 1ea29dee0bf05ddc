"""Exactly-once under concurrency, through the real HTTP + Bolt app with signed requests, on SQLite and
PostgreSQL: concurrent "Request" clicks make one request; concurrent approvals run it at most once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.kernel.models import Approval, AuditEvent, RemediationRequest
from incident_bot.demo.webhook_target import WebhookTarget
from tests.apphelpers import App, running_app
from tests.decide_helpers import concurrently

ROUNDS = 20
GROUP = [f"U0ONCALL{i:02d}" for i in range(20)]


@pytest.fixture
def group_app(db_url: str, fake_encoder, target: WebhookTarget, tmp_path: Path) -> Iterator[App]:  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "defaults:\n  rate_limit_per_hour: 0\nactions:\n"
        "  restart-pgbouncer:\n    approvers: [S0ONCALL]\n    approvals_required: 1\n"
    )
    with running_app(db_url, fake_encoder, target, policy_path=policy, usergroups={"S0ONCALL": GROUP}) as a:
        yield a


def _open_requests(app: App) -> int:
    with app.rt.sessions() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(RemediationRequest)
                .where(RemediationRequest.status.in_(["pending", "approved", "running"]))
            )
            or 0
        )


def _prompts(app: App) -> list:  # type: ignore[type-arg]
    return [c for c in app.posts() if str(c.params.get("text", "")).startswith("Approval needed")]


def test_concurrent_request_clicks_make_one_request_and_one_run(
    group_app: App, target: WebhookTarget
) -> None:
    app = group_app
    assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
    message = app.posts()[0]
    for rnd in range(ROUNDS):
        n = 2 + rnd % 19  # 2..20 people at once
        responses = concurrently(
            [(lambda u=u: app.click(u, message, "Request: Restart PgBouncer")) for u in GROUP[:n]]
        )
        assert all(r.status_code == 200 for r in responses)  # type: ignore[attr-defined]
        assert _open_requests(app) == 1, f"round {rnd}: {n} clicks"
        assert len(_prompts(app)) == rnd + 1  # one prompt per round
        prompt = _prompts(app)[-1]
        requester = prompt.params["blocks"][0]["text"]["text"].split(">")[0].removeprefix("<@")
        approvers = [u for u in GROUP if u != requester][:2]  # 20 concurrent approvals: the test below
        concurrently([(lambda u=u, p=prompt: app.click(u, p, "Approve")) for u in approvers])
        assert len(target.received) == rnd + 1, f"round {rnd}: executed {len(target.received)} times in total"
        assert _open_requests(app) == 0
    with app.rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RemediationRequest)) == ROUNDS
        statuses = set(s.scalars(select(RemediationRequest.status)))
    assert statuses == {"succeeded"}
    assert len({r.idempotency_key for r in target.received}) == ROUNDS


def test_twenty_concurrent_approvals_run_once(group_app: App, target: WebhookTarget) -> None:
    app = group_app
    assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
    message = app.posts()[0]
    for rnd in range(ROUNDS):
        requester = GROUP[rnd % len(GROUP)]
        app.click(requester, message, "Request: Restart PgBouncer")
        prompt = _prompts(app)[-1]
        concurrently(
            [(lambda u=u, p=prompt: app.click(u, p, "Approve")) for u in GROUP if u != requester]
            + [lambda p=prompt: app.click("U0OUTSIDER", p, "Approve")]
        )
        assert len(target.received) == rnd + 1, f"round {rnd}"
    with app.rt.sessions() as s:
        approved = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "remediation.approved")
        )
        running = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "remediation.running")
        )
        outsiders = s.scalar(
            select(func.count()).select_from(Approval).where(Approval.user_id == "U0OUTSIDER")
        )
    assert approved == running == ROUNDS and outsiders == 0
