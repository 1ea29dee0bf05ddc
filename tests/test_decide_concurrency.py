"""Limits that hold under concurrency (issue 16, deliverable 5), through signed Slack clicks on the real
HTTP + Bolt app, on SQLite and PostgreSQL.

With ``rate_limit_per_hour: 2``, 8 approvals of 8 requests for one service clicked at the same moment ran
5 times on PostgreSQL and 2–4 times on SQLite: the limit counted ``started_at`` (set later, by the claim,
in another transaction) and nothing serialised approvals of different requests. Now the limit counts
approved-but-not-started runs and is decided under one lock per (service, action type).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.kernel.models import Approval, Incident, RemediationRequest
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app
from tests.decide_helpers import concurrently, incident_id, overload_alert, prompt_of, replica, write_runbook

ROUNDS = 20
LIMIT = 2
APPROVERS = [f"U0APP{i}" for i in range(8)]
POLICY = f"""\
defaults:
  approvers: [S0ONCALL]
  approvals_required: 1
  rate_limit_per_hour: {LIMIT}
"""


@pytest.fixture
def limited(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> Iterator[App]:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    with running_app(
        db_url,
        fake_encoder,
        target,
        policy_path=policy,
        runbooks_dir=write_runbook(tmp_path / "runbooks"),
        usergroups={"S0ONCALL": APPROVERS},
    ) as app:
        yield app


def _eight_requests(app: App, service: str) -> list[int]:
    assert app.alert("alertmanager", overload_alert(service)).status_code == 202
    inc = incident_id(app, service)
    ids = [
        app.rt.service.request_action(incident_id=inc, action_id=f"act-{i}", user_id="U0REQ")
        for i in range(8)
    ]
    app.drain()
    return ids


def _runs(app: App, service: str) -> int:
    with app.rt.sessions() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(RemediationRequest)
                .join(Incident)
                .where(Incident.service == service, RemediationRequest.started_at.is_not(None))
            )
            or 0
        )


def _round(apps: list[App], target: WebhookTarget, rnd: int) -> None:
    service = f"svc-{rnd}"
    first = apps[0]
    ids = _eight_requests(first, service)
    before = len(target.received)
    prompts = [prompt_of(first.stub, rid) for rid in ids]
    replicas = [apps[i % len(apps)] for i in range(8)]  # clicks alternate between the replicas given
    clicks = [
        (lambda a=replicas[i], u=APPROVERS[i], p=prompts[i]: a.click(u, p, "Approve")) for i in range(8)
    ]
    responses = concurrently(clicks)  # type: ignore[arg-type]
    assert all(r.status_code == 200 for r in responses)  # type: ignore[attr-defined]
    ran = [r for r in target.received[before:] if r.body["service"] == service]
    assert len(ran) == LIMIT, f"round {rnd}: {len(ran)} runs under a limit of {LIMIT}"
    assert _runs(first, service) == LIMIT
    with first.rt.sessions() as s:
        statuses = sorted(s.scalars(select(RemediationRequest.status).where(RemediationRequest.id.in_(ids))))
    assert statuses == ["pending"] * (8 - LIMIT) + ["succeeded"] * LIMIT, statuses


def test_rate_limit_holds_for_eight_simultaneous_approvals(limited: App, target: WebhookTarget) -> None:
    for rnd in range(ROUNDS):
        _round([limited], target, rnd)
    refused = [t for t in limited.ephemerals() if "Rate limit" in t]
    assert len(refused) == ROUNDS * (8 - LIMIT)  # every click that lost was told why
    assert len({r.idempotency_key for r in target.received}) == ROUNDS * LIMIT


@pytest.mark.postgres
def test_rate_limit_holds_across_two_replicas(
    limited: App, target: WebhookTarget, fake_encoder: HashingEncoder
) -> None:
    if limited.rt.engine.dialect.name != "postgresql":
        pytest.skip("replicas share a PostgreSQL database (SQLite is one process by design)")
    with replica(limited, fake_encoder) as second:
        for rnd in range(ROUNDS):
            _round([limited, second], target, rnd)  # clicks alternate between the two replicas


def test_twenty_concurrent_approvals_of_one_of_n_record_one_approval(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> None:
    """On SQLite 20 concurrent approvals used to record up to 5 approval rows when 1 was required (the
    status was read before pysqlite's implicit BEGIN) and the webhook's approved_by listed up to 7 people."""
    group = [f"U0ONCALL{i:02d}" for i in range(21)]
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "defaults:\n  approvers: [S0ONCALL]\n  approvals_required: 1\n  rate_limit_per_hour: 0\n"
    )
    with running_app(
        db_url,
        fake_encoder,
        target,
        policy_path=policy,
        runbooks_dir=write_runbook(tmp_path / "runbooks", actions=1),
        usergroups={"S0ONCALL": group},
    ) as app:
        for rnd in range(ROUNDS):
            service = f"svc-{rnd}"
            assert app.alert("alertmanager", overload_alert(service)).status_code == 202
            rid = app.rt.service.request_action(
                incident_id=incident_id(app, service), action_id="act-0", user_id=group[20]
            )
            app.drain()
            prompt = prompt_of(app.stub, rid)
            concurrently([(lambda u=u, p=prompt: app.click(u, p, "Approve")) for u in group[:20]])
            with app.rt.sessions() as s:
                rows = list(s.scalars(select(Approval.user_id).where(Approval.request_id == rid)))
                status = s.get(RemediationRequest, rid).status  # type: ignore[union-attr]
            assert len(rows) == 1, f"round {rnd}: {len(rows)} approval rows for 1 required"
            assert status == "succeeded"
            assert len(target.received) == rnd + 1
            assert target.received[-1].body["approved_by"] == rows[0]  # one person, the one recorded
        told = [t for t in app.ephemerals() if "already approved and about to run" in t or "already" in t]
        assert len(told) == ROUNDS * 19  # every later click is refused, and not recorded
