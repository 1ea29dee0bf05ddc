"""Helpers for tests that drive the whole app: real FastAPI + Bolt, a recording Slack stand-in,
a real local webhook target, and the fast fake encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bot.kernel.config import SAMPLE_DATA, Settings
from incident_bot.demo.slack_stub import ApiCall, SlackStub, block_action_body, find_button, signed_headers
from incident_bot.demo.webhook_target import WebhookTarget
from incident_bot.runtime import Runtime, build_runtime
from retrieval.encoder import Encoder

SIGNING_SECRET = "test-signing-secret"  # noqa: S105
ALERT_TOKEN = "test-alert-token"  # noqa: S105
HMAC_SECRET = "test-hmac-secret"  # noqa: S105
ALERTS = SAMPLE_DATA / "alerts"


class InlineExecutor(Executor):
    """Runs Bolt's listeners and lazy listeners on the calling thread, so a test sees their effects
    as soon as the HTTP call returns (no sleeping, no polling)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the Future like a real executor would
            fut.set_exception(exc)
        return fut


@dataclass
class App:
    rt: Runtime
    client: TestClient
    stub: SlackStub

    def alert(self, source: str, body: bytes | dict[str, Any] | str, *, token: str = ALERT_TOKEN):
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        resp = self.client.post(
            f"/alerts/{source}",
            content=raw,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        self.drain()
        return resp

    def drain(self) -> int:
        """Deliver the outbox now (no background workers run in these tests)."""
        return self.rt.service.outbox.drain()

    def sample(self, source: str, name: str):
        return self.alert(source, (ALERTS / name).read_bytes())

    def slack(self, body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None):
        resp = self.client.post(
            "/slack/events", content=body, headers=signed_headers(secret, body, timestamp)
        )
        self.drain()
        return resp

    def click(self, user: str, message: ApiCall, label: str, **kw: Any):
        button = find_button(message.params["blocks"], label)
        body = block_action_body(
            user=user, button=button, channel="C0INCIDENTS", message_ts=message.response["ts"]
        )
        return self.slack(body, **kw)

    def posts(self) -> list[ApiCall]:
        return self.stub.of("chat.postMessage")

    def ephemerals(self) -> list[str]:
        return [c.params["text"] for c in self.stub.of("chat.postEphemeral")]


def feature_staleness(**changes: Any) -> dict[str, Any]:
    """A model alert whose runbook action is a webhook approved by the model's owner (feature-store-staleness.md).
    The bundled model-drift runbook's rollback is an ``mlflow_rollback``, offered only with MLflow configured."""
    body = json.loads((ALERTS / "model_drift.json").read_text())
    body.update(
        alert_name="FeatureStaleness",
        summary="fraud-model: feature view merchant_stats last materialized 3 h ago (max 1 h)",
        description="The online store serves merchant_stats features materialized 3 hours ago.",
    )
    return {**body, **changes}


def load_sample_kb(rt: Runtime) -> None:
    report = rt.kb.import_file(Path(SAMPLE_DATA / "knowledge_base.jsonl"))
    assert report.inserted >= 30


@contextmanager
def running_app(db_url: str, encoder: Encoder, target: WebhookTarget, **overrides: Any) -> Iterator[App]:
    usergroups = overrides.pop("usergroups", {})
    with SlackStub() as stub:
        stub.usergroups.update(usergroups)
        defaults: dict[str, Any] = dict(
            database_url=db_url,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=stub.base_url,
            incident_channel="#incidents",
            alert_webhook_token=ALERT_TOKEN,
            runbooks_dir=SAMPLE_DATA / "runbooks",
            action_base_url=target.url,
            executor_hmac_secret=HMAC_SECRET,
            model_owners={"fraud-model": ["U0MLOWNER"]},
        )
        settings = Settings(_env_file=None, **{**defaults, **overrides})
        rt = build_runtime(settings, encoder=encoder, listener_executor=InlineExecutor())
        load_sample_kb(rt)
        try:
            with TestClient(rt.http) as client:
                yield App(rt, client, stub)
        finally:
            rt.close()
