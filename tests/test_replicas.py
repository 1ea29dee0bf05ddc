"""Several real `incident-bot serve` processes on one real PostgreSQL: the same Alertmanager groups sent
to every replica at once, Slack failing for a while, one replica killed with SIGKILL. Exactly one incident
per group, one Slack post per incident, no accepted alert lost."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.db import make_engine, make_sessionmaker
from bot.kernel.models import AlertPayload, Incident
from incident_bot.demo.slack_stub import SlackStub, block_action_body, find_button, signed_headers
from incident_bot.demo.webhook_target import WebhookTarget
from tests.apphelpers import HMAC_SECRET
from tests.conftest import pg_url_from_template

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
CHECKOUT = json.loads((SAMPLE_DATA / "alerts" / "alertmanager_checkout.json").read_text())
GROUPS = 12
SENDS_PER_REPLICA = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service(n: int) -> str:
    # group 0 stays on checkout, a service the db-connection-pool runbook lists (its services narrow the match)
    return "checkout" if n == 0 else f"svc-{n}"


def _group(n: int) -> dict[str, Any]:
    body = copy.deepcopy(CHECKOUT)
    body["groupKey"] = f'{{}}:{{service="{_service(n)}"}}'
    for alert in body["alerts"]:
        alert.pop("fingerprint", None)
        alert["labels"]["service"] = _service(n)
    return body


def _start(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with open(cwd / f"serve-{port}.log", "wb") as log:  # a file, not a pipe: a full pipe would block serve
        return subprocess.Popen(
            [sys.executable, "-m", "incident_bot", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=5, transport=httpx.HTTPTransport(retries=120)
    ) as client:
        # the transport retries connection errors while the server starts (model load)
        assert client.get("/healthz").status_code == 200, f"serve on {port} exited: {proc.poll()}"


def test_replicas_share_one_database_without_duplicates_or_loss(tmp_path: Path, pg_server: str) -> None:
    db_url = pg_url_from_template(pg_server)
    ports = [_free_port(), _free_port()]
    with SlackStub() as stub, WebhookTarget(secret=HMAC_SECRET) as target:
        stub.fail("chat.postMessage", status=500)  # Slack is down while the storm arrives
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SLACK_BOT_TOKEN": "xoxb-t",
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_API_URL": stub.base_url,
            "ALERT_WEBHOOK_TOKEN": "tok",
            "HF_HUB_OFFLINE": "1",
            "RUNBOOKS_DIR": str(SAMPLE_DATA / "runbooks"),
            "OUTBOX_LEASE_SECONDS": "5",
            "SLACK_UPDATE_INTERVAL_SECONDS": "0.5",
            "ACTION_BASE_URL": target.url,
            "EXECUTOR_HMAC_SECRET": HMAC_SECRET,
        }
        procs = [_start(p, env, tmp_path) for p in ports]
        try:
            for port, proc in zip(ports, procs, strict=True):
                _wait_up(port, proc)
            jobs = [(port, n) for n in range(GROUPS) for port in ports for _ in range(SENDS_PER_REPLICA)]

            def send(job: tuple[int, int]) -> int:
                port, n = job
                resp = httpx.post(
                    f"http://127.0.0.1:{port}/alerts/alertmanager",
                    json=_group(n),
                    timeout=30,
                    headers={"Authorization": "Bearer tok"},
                )
                return resp.status_code

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(send, jobs))
            assert statuses == [202] * len(jobs)
            stub.wait_for_failures(3, timeout=30)  # the replicas tried, and Slack answered 500
            procs[0].send_signal(signal.SIGKILL)  # a replica dies; its share of the outbox is not lost
            procs[0].wait(10)
            stub.heal()
            stub.fail(
                "chat.postMessage", status=429, retry_after=1, times=2
            )  # then Slack rate-limits briefly
            stub.wait_for(lambda cs: sum(c.method == "chat.postMessage" for c in cs) >= GROUPS, timeout=45)
            assert {s for _, s in stub.failed} == {500, 429}
            # Restarted, the killed replica serves again; the same approval clicked at once on both
            # replicas, by two approvers, runs the action once.
            ports[0] = _free_port()
            procs[0] = _start(ports[0], env, tmp_path)
            _wait_up(ports[0], procs[0])
            _approve_on_every_replica_at_once(stub, ports, target)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(20)
        posts = [p for p in stub.of("chat.postMessage") if not p.params.get("thread_ts")]
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            incidents = list(session.scalars(select(Incident)))
            stored = session.scalar(select(func.count()).select_from(AlertPayload))
    finally:
        engine.dispose()
    by_group = sorted(i.group_key for i in incidents)
    assert len(by_group) == GROUPS and len(set(by_group)) == GROUPS  # exactly one incident per group
    assert stored == len(jobs)  # every 2xx is a committed payload
    assert len(posts) == GROUPS  # one Slack post per incident, although two replicas and a crash
    assert all(i.slack_ts is not None for i in incidents)
    assert len({p.response["ts"] for p in posts}) == GROUPS


def _click(port: int, user: str, message: Any, label: str) -> int:
    body = block_action_body(
        user=user,
        button=find_button(message.params["blocks"], label),
        channel="C0INCIDENTS",
        message_ts=message.response["ts"],
    )
    return httpx.post(
        f"http://127.0.0.1:{port}/slack/events", content=body, headers=signed_headers("sig", body), timeout=30
    ).status_code


def _approve_on_every_replica_at_once(stub: SlackStub, ports: list[int], target: WebhookTarget) -> None:
    post = next(p for p in stub.of("chat.postMessage") if "(checkout)" in p.params["text"])
    assert _click(ports[0], "U0ONCALL1", post, "Request:") == 200
    prompt = stub.wait_for(lambda cs: any("Approval needed" in (c.params.get("text") or "") for c in cs))
    prompt_call = next(c for c in prompt if "Approval needed" in (c.params.get("text") or ""))
    clicks = [(port, user) for port in ports for user in ("U0SRELEAD", "U0ONCALL2")]
    with ThreadPoolExecutor(len(clicks)) as pool:
        codes = list(pool.map(lambda c: _click(c[0], c[1], prompt_call, "Approve"), clicks))
    assert codes == [200] * len(clicks)
    # every click has been answered: one result in the thread, the others told it was already decided
    stub.wait_for(lambda cs: any("succeeded" in (c.params.get("text") or "") for c in cs), timeout=30)
    stub.wait_for(lambda cs: sum(c.method == "chat.postEphemeral" for c in cs) >= len(clicks) - 1, timeout=30)
    assert len(target.received) == 1 and target.received[0].signature_ok
