"""`incident-bot demo`: the whole flow on embedded defaults, no Slack account needed.

A temporary SQLite database, the bundled knowledge base and runbooks, the real embedding model, the
real HTTP server on a local port, a local stand-in for the Slack Web API and a local webhook target.
Alerts are replayed through the real endpoints and buttons are clicked through signed payloads.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import tempfile
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from bot.kernel import audit
from bot.kernel.config import SAMPLE_DATA, Settings
from bot.kernel.models import Incident
from handlers.blocks.render import render_text
from incident_bot.demo.mlflow_local import (
    mlflow_unavailable_reason,
    runbooks_with_mlflow_rollback,
    runbooks_with_webhook_rollback,
    seeded_registry,
)
from incident_bot.demo.prometheus_local import (
    checkout_history,
    local_prometheus,
    prometheus_unavailable_reason,
)
from incident_bot.demo.slack_stub import (
    ApiCall,
    SlackStub,
    block_action_body,
    find_button,
    signed_headers,
    view_submission_body,
)
from incident_bot.demo.webhook_target import WebhookTarget
from incident_bot.runtime import Runtime, build_runtime
from retrieval.types import Query

ALERTS = SAMPLE_DATA / "alerts"
# The sample payloads were written with fixed times; the demo replays them as if the checkout alert had
# started a few minutes ago (every timestamp moved by the same offset, none later than the moment it is
# sent), so the incident says "started 5 min ago" and the KPIs show minutes, not the files' age.
SAMPLE_EPOCH = datetime(2026, 11, 22, 3, 12, tzinfo=UTC)  # startsAt of alertmanager_checkout.json
_TIMESTAMP = re.compile(r'"(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')


def retime(body: bytes, offset: timedelta, now: datetime) -> bytes:
    """Every ISO-8601 UTC timestamp in a sample payload moved by ``offset``, capped at ``now`` (an
    alert cannot have started or ended in the future). Alertmanager's zero time (0001-01-01) stays."""

    def move(m: re.Match[str]) -> str:
        t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        return '"' + min(t + offset, now).strftime("%Y-%m-%dT%H:%M:%SZ") + '"'

    return _TIMESTAMP.sub(move, body.decode("utf-8")).encode("utf-8")


def _rule(title: str) -> None:
    print(f"\n{'=' * 12} {title} {'=' * max(0, 70 - len(title))}")


class Demo:
    def __init__(self, rt: Runtime, stub: SlackStub, base: str, secret: str, token: str) -> None:
        self.rt, self.stub, self.base, self.secret = rt, stub, base, secret
        self.http = httpx.Client(base_url=base, timeout=60)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.offset = datetime.now(UTC) - timedelta(minutes=5) - SAMPLE_EPOCH

    def send_alert(self, source: str, file: str) -> dict[str, Any]:
        body = retime((ALERTS / file).read_bytes(), self.offset, datetime.now(UTC))
        resp = self.http.post(
            f"/alerts/{source}", content=body, headers={**self.auth, "Content-Type": "application/json"}
        )
        print(f"POST /alerts/{source} ({file}) -> {resp.status_code} {resp.text}")
        return dict(resp.json())

    def wait_calls(self, method: str, count: int) -> list[ApiCall]:
        self.stub.wait_for(lambda calls: len(self.calls(method, calls)) >= count, timeout=60)
        return self.calls(method)

    def calls(self, method: str, calls: list[ApiCall] | None = None) -> list[ApiCall]:
        """The stub's calls of ``method``, without the graph's "📉 No graph ..." thread lines (the script counts
        messages by position; a Prometheus that fails must not shift them)."""
        return [
            c
            for c in (self.stub.of(method) if calls is None else calls)
            if c.method == method and not str(c.params.get("text") or "").startswith("📉")
        ]

    def click(self, user: str, message: ApiCall, label: str, channel: str = "C0INCIDENTS") -> None:
        button = find_button(message.params["blocks"], label)
        ts = message.params.get("ts") or message.response["ts"]
        body = block_action_body(user=user, button=button, channel=channel, message_ts=ts)
        resp = self.http.post("/slack/events", content=body, headers=signed_headers(self.secret, body))
        print(f"<{user}> clicks [{button['text']['text']}] -> HTTP {resp.status_code}")

    def show(self, call: ApiCall) -> None:
        where = f" (thread {call.params['thread_ts']})" if call.params.get("thread_ts") else ""
        print(f"--- Slack {call.method} to {call.params.get('channel')}{where}")
        if call.params.get("blocks"):
            print(render_text(call.params["blocks"]))
        else:
            print(call.params.get("text"))


DEMO_POLICY = """\
defaults: {approvals_required: 1, ttl_minutes: 30}
actions:
  rollback-model-alias:                 # the requester plus BOTH the model owner and the ML lead
    approvers: [model-owner, U0MLLEAD]
    approvals_required: 2
"""


def _demo_policy(tmp: Path) -> Path:
    path = tmp / "policy.yml"
    path.write_text(DEMO_POLICY, encoding="utf-8")
    return path


def run_demo(*, keep_db: Path | None = None) -> int:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="incident-bot-demo-")))
        db_path = keep_db or tmp / "demo.db"
        stub = stack.enter_context(SlackStub())
        hmac_secret, signing_secret, token = (secrets.token_hex(16) for _ in range(3))
        target = stack.enter_context(WebhookTarget(secret=hmac_secret))
        _rule("setup")
        mlflow_uri, runbooks_dir = _start_mlflow(stack, tmp)
        prometheus_url = _start_prometheus(stack, tmp)
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{db_path}",
            slack_bot_token="xoxb-demo",  # noqa: S106
            slack_signing_secret=signing_secret,
            slack_api_url=stub.base_url,
            incident_channel="#incidents",
            alert_webhook_token=token,
            runbooks_dir=runbooks_dir,
            action_base_url=target.url,
            mlflow_tracking_uri=mlflow_uri,
            executor_hmac_secret=hmac_secret,
            model_owners={"fraud-model": ["U0MLOWNER"]},
            policy_path=_demo_policy(tmp),
            slack_update_interval_seconds=0.2,
            service_catalog=SAMPLE_DATA / "catalog",  # Backstage + plain YAML: the cascade step's origin
            prometheus_url=prometheus_url,
        )
        print(
            f"database {db_path}; Slack Web API stand-in {stub.base_url}; action webhook target {target.url}"
        )
        print("loading the embedding model (all-MiniLM-L6-v2, bundled) ...")
        rt = build_runtime(settings)
        stack.callback(rt.close)
        rt.warm()  # runbook embeddings now, not at the first incident (as `serve` does)
        rt.outbox.start(threads=1)  # Slack messages leave through the outbox, as in `serve`
        report = rt.kb.import_file(SAMPLE_DATA / "knowledge_base.jsonl")
        print(
            f"knowledge base: {report.inserted} past incidents imported; runbooks from {runbooks_dir.name}/"
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # connections queue until uvicorn accepts: no race with the first request
        stack.callback(sock.close)  # runs last: after the server has stopped
        server = uvicorn.Server(uvicorn.Config(rt.http, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        demo = Demo(rt, stub, base, signing_secret, token)
        stack.callback(demo.http.close)
        demo.http.get("/healthz")  # the server is up once this answers
        out_dir = keep_db.parent if keep_db else Path(tempfile.gettempdir())
        chart = out_dir / "incident-bot-demo-kpi.png"
        graph = out_dir / "incident-bot-demo-alert-graph.png" if prometheus_url else None
        return _script(demo, target, mlflow_uri, graph) or _kpis(demo, chart) or _cascade(demo)
    return 1


def _start_mlflow(stack: ExitStack, tmp: Path) -> tuple[str | None, Path]:
    """A real local MLflow registry (fraud-model v1-v12, champion on v12) and the bundled runbooks, whose model
    rollback is an ``mlflow_rollback``; without mlflow installed, say why and make the rollback a signed webhook."""
    reason = mlflow_unavailable_reason()
    if reason:
        print(f"MLflow: not started ({reason}); the model rollback goes to the webhook target instead")
        return None, runbooks_with_webhook_rollback(SAMPLE_DATA / "runbooks", tmp / "runbooks")
    print("starting a local MLflow tracking server (sqlite backend) ...")
    # twelve versions, the champion on v12: the version the sample drift alert names
    server, versions = stack.enter_context(
        seeded_registry("fraud-model", versions=12, workdir=tmp / "mlflow")
    )
    print(
        f"MLflow {server.url}: fraud-model registered as v1..v{len(versions)}, alias 'champion' on "
        f"v{versions[-1]['version']}"
    )
    return server.url, runbooks_with_mlflow_rollback(SAMPLE_DATA / "runbooks", tmp / "runbooks")


DEPLOYED_BEFORE = timedelta(
    minutes=9
)  # the checkout deploy, before the sample alert (which starts 5 min ago)


def _start_prometheus(stack: ExitStack, tmp: Path) -> str | None:
    """A local Prometheus with the checkout pool's (synthetic) history, for the alert's graph; or say why not."""
    reason = prometheus_unavailable_reason()
    if reason:
        print(f"Prometheus: not started ({reason}); incidents get no graph")
        return None
    now = datetime.now(UTC)
    url = stack.enter_context(
        local_prometheus(tmp / "prometheus", checkout_history(now=now, deploy_at=now - DEPLOYED_BEFORE))
    )
    print(
        f"Prometheus {url}: 45 min of pgbouncer waiting clients for checkout backfilled with promtool "
        "(synthetic: no pgbouncer runs here), for the alert's graph"
    )
    return url


def _champion(mlflow_uri: str) -> str:
    resp = httpx.get(
        f"{mlflow_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": "fraud-model", "alias": "champion"},
        timeout=30,
    )
    return f"v{resp.json()['model_version']['version']}"


def _script(demo: Demo, target: WebhookTarget, mlflow_uri: str | None, graph: Path | None) -> int:
    _rule("1. A deploy of checkout, then its Alertmanager group fires")
    deployed = (datetime.now(UTC) - DEPLOYED_BEFORE).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = {"kind": "deploy", "service": "checkout", "version": "v1.38", "who": "ana", "when": deployed}
    resp = demo.http.post("/changes", json=change, headers=demo.auth)
    print(f"POST /changes (deploy checkout v1.38) -> {resp.status_code} {resp.text}")
    demo.send_alert("alertmanager", "alertmanager_checkout.json")
    checkout_msg = demo.wait_calls("chat.postMessage", 1)[0]
    demo.show(checkout_msg)
    if graph is not None:
        _alert_graph(demo, checkout_msg, graph)

    _rule("2. The same group again (dedup: nothing new is posted)")
    demo.send_alert("alertmanager", "alertmanager_checkout.json")

    _rule("3. ML monitor: fraud-model drift")
    demo.send_alert("model", "model_drift.json")
    model_msg = demo.wait_calls("chat.postMessage", 2)[1]
    demo.show(model_msg)

    _rule("4. On-call requests the runbook action; prompt in the thread")
    demo.click("U0ONCALL1", checkout_msg, "Request:")
    prompt = demo.wait_calls("chat.postMessage", 3)[2]
    demo.show(prompt)

    _rule("5. The requester tries to approve their own request")
    demo.click("U0ONCALL1", prompt, "Approve")
    demo.show(demo.wait_calls("chat.postEphemeral", 1)[0])

    _rule("6. An approver on the list approves: the action runs once")
    demo.click("U0SRELEAD", prompt, "Approve")
    demo.wait_calls("chat.postMessage", 4)
    demo.show(demo.wait_calls("chat.update", 1)[-1])
    demo.show(demo.calls("chat.postMessage")[3])
    got = target.received[-1]
    print(
        f"webhook target received POST {got.path} signature_ok={got.signature_ok} "
        f"idempotency_key={got.idempotency_key} body={json.dumps(got.body)[:160]}"
    )

    _rule("7. A double click on Approve runs nothing more")
    demo.click("U0SRELEAD", prompt, "Approve")
    demo.show(demo.wait_calls("chat.postEphemeral", 2)[1])
    print(f"webhook calls so far: {len(target.received)}")

    _rule("8. Model rollback: policy needs the requester + the model owner + the ML lead (two approvals)")
    print(DEMO_POLICY)
    if mlflow_uri:
        print(f"MLflow before: fraud-model@champion is {_champion(mlflow_uri)}")
    demo.click("U0ONCALL1", model_msg, "Request:")
    rollback_prompt = demo.wait_calls("chat.postMessage", 5)[4]
    demo.show(rollback_prompt)
    n_updates = len(demo.stub.of("chat.update"))
    demo.click("U0MLOWNER", rollback_prompt, "Approve")
    print("the prompt now counts 1 of 2; nothing has run yet:")
    demo.show(demo.wait_calls("chat.update", n_updates + 1)[-1])
    demo.click("U0MLLEAD", rollback_prompt, "Approve")
    demo.show(demo.wait_calls("chat.postMessage", 6)[5])
    demo.wait_calls("chat.update", n_updates + 2)  # the rollback prompt now shows its outcome
    if mlflow_uri:
        print(f"MLflow after: fraud-model@champion is {_champion(mlflow_uri)} (read back from the registry)")

    _rule("9. Alertmanager sends resolved: the message is updated, not re-posted")
    n_updates = len(demo.stub.of("chat.update"))
    demo.send_alert("alertmanager", "alertmanager_checkout_resolved.json")
    demo.wait_calls("chat.update", n_updates + 1)
    demo.show(demo.stub.of("chat.update")[-1])

    _rule("10. The ML owner resolves the drift incident with an RCA note (learned for next time)")
    demo.click("U0MLOWNER", model_msg, "Resolve")
    modal = demo.wait_calls("views.open", 1)[0].params["view"]
    note = (
        "Upstream merchant_category mapping changed in the payments ETL; fraud-model v12 saw unseen "
        "categories. Rolled the champion alias back to v11 and pinned the mapping version."
    )
    body = view_submission_body(user="U0MLOWNER", view=modal, values={"rca": {"rca_note": {"value": note}}})
    resp = demo.http.post("/slack/events", content=body, headers=signed_headers(demo.secret, body))
    print(f"<U0MLOWNER> submits the resolve form -> HTTP {resp.status_code}")
    demo.wait_calls("chat.update", n_updates + 2)
    hits = demo.rt.kb.search(Query(text="merchant_category mapping changed fraud-model drift"), top_k=3)
    print("kb search 'merchant_category mapping changed fraud-model drift':")
    for m in hits:
        print(f"  {m.score:.3f}  {m.id:14} {m.title[:60]}  [{'; '.join(m.why[:3])}]")

    _rule("11. Audit trail")
    with demo.rt.sessions() as session:
        for incident in session.scalars(select(Incident).order_by(Incident.id)):
            print(f"incident #{incident.id} {incident.title[:60]} [{incident.status}]")
            for ev in audit.trail(session, incident_id=incident.id):
                detail = ", ".join(f"{k}={v}" for k, v in ev.detail.items())
                print(f"  {ev.at:%H:%M:%S} {ev.event:24} by {ev.actor:12} {detail[:90]}")
    print(f"Slack Web API calls: {len(demo.stub.calls)}; action webhooks run: {len(target.received)}")
    return 0


def _alert_graph(demo: Demo, message: ApiCall, graph: Path) -> None:
    _rule("1b. The alert's own graph in the thread (query_range on the local Prometheus)")
    ts = message.response["ts"]

    def done(calls: list[ApiCall]) -> bool:
        return any(
            (c.method == "files.completeUploadExternal" and c.params.get("thread_ts") == ts)
            or (
                c.method == "chat.postMessage"
                and c.params.get("thread_ts") == ts
                and "No graph" in str(c.params)
            )
            for c in calls
        )

    calls = demo.stub.wait_for(done, timeout=60)
    for call in calls:
        if call.method == "chat.postMessage" and call.params.get("thread_ts") == ts:
            demo.show(call)  # the one line saying why there is no graph
            return
    upload = next(
        c for c in calls if c.method == "files.completeUploadExternal" and c.params.get("thread_ts") == ts
    )
    file = upload.params["files"][0]
    alt = next(c for c in calls if c.method == "files.getUploadURLExternal")
    graph.write_bytes(demo.stub.uploads[file["id"]])
    print(f"--- Slack files.completeUploadExternal in thread {ts}: {file['title']}")
    print(f"alt text: {alt.params.get('alt_txt')}")
    print(f"graph: {len(demo.stub.uploads[file['id']])} bytes, saved as {graph}")


def _kpis(demo: Demo, chart: Path) -> int:
    from urllib.parse import urlencode

    _rule("12. /incident kpi 7d: summary in the channel, chart uploaded into its thread")
    body = urlencode(
        {
            "command": "/incident",
            "text": "kpi 7d",
            "user_id": "U0ONCALL1",
            "channel_id": "C0INCIDENTS",
            "team_id": "T0TEAM",
            "response_url": demo.stub.base_url + "response",
            "trigger_id": "T0TRIGGER",
        }
    ).encode()
    resp = demo.http.post("/slack/events", content=body, headers=signed_headers(demo.secret, body))
    print(f"<U0ONCALL1> /incident kpi 7d -> HTTP {resp.status_code}")
    calls = demo.stub.wait_for(
        lambda calls: any(
            c.method == "files.completeUploadExternal"
            and str(c.params["files"][0].get("title", "")).startswith("Incident KPIs")
            for c in calls
        ),
        timeout=60,
    )
    done = next(
        c
        for c in calls
        if c.method == "files.completeUploadExternal"
        and str(c.params["files"][0].get("title", "")).startswith("Incident KPIs")
    )
    demo.show(
        [c for c in demo.stub.of("chat.postMessage") if c.response["ts"] == done.params["thread_ts"]][0]
    )
    file_id = done.params["files"][0]["id"]
    chart.write_bytes(demo.stub.uploads[file_id])
    print(
        f"chart uploaded in thread {done.params['thread_ts']} ({len(demo.stub.uploads[file_id])} bytes), "
        f"saved as {chart}"
    )
    _rule("done")
    return 0


def _cascade(demo: Demo) -> int:
    """Three dependent services page within minutes, plus an unrelated one: each downstream message names the
    probable origin, the origin lists what it is probably affecting, the unrelated one is named nowhere."""
    _rule("13. A cascade across services (catalog: bot/sample_data/catalog): the probable origin")
    posted = len(demo.calls("chat.postMessage"))
    updates = len(demo.stub.of("chat.update"))
    demo.send_alert("generic", "cascade.json")
    posts = demo.wait_calls("chat.postMessage", posted + 4)[posted:]
    demo.wait_calls("chat.update", updates + 1)  # the earlier checkout incident is related too (via payments)
    demo.rt.outbox.drain()  # what is still queued, so the channel shows the final state below
    for call in posts:
        ts = call.response["ts"]
        latest = [c for c in demo.stub.of("chat.update") if c.params.get("ts") == ts]
        demo.show(latest[-1] if latest else call)
    return 0
