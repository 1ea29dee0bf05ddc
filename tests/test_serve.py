"""`incident-bot serve` as a user starts it: a real process, real HTTP, real model."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.kernel.config import SAMPLE_DATA
from incident_bot.demo.slack_stub import SlackStub


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_accepts_alert_and_posts_to_slack(tmp_path: Path) -> None:
    port = _free_port()
    with SlackStub() as stub:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "SLACK_BOT_TOKEN": "xoxb-t",
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_API_URL": stub.base_url,
            "ALERT_WEBHOOK_TOKEN": "tok",
            "RUNBOOKS_DIR": str(SAMPLE_DATA / "runbooks"),
            "HF_HUB_OFFLINE": "1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident_bot", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=5, transport=httpx.HTTPTransport(retries=60)
            ) as client:
                # the transport retries connection errors while the server starts (model load ~7 s)
                health = _get_when_up(client, proc)
                assert health == {"status": "ok", "slack": "http"}
                resp = client.post(
                    "/alerts/generic",
                    content=(SAMPLE_DATA / "alerts" / "generic.json").read_bytes(),
                    headers={"Authorization": "Bearer tok", "Content-Type": "application/json"},
                )
                assert resp.status_code == 202 and resp.json()["incidents_created"] == [1]
                calls = stub.wait_for(lambda cs: any(c.method == "chat.postMessage" for c in cs), timeout=30)
                post = next(c for c in calls if c.method == "chat.postMessage")
                assert post.token == "xoxb-t" and "91% full" in post.params["text"]
        finally:
            proc.terminate()
            out = proc.communicate(timeout=20)[0].decode()
        assert "xoxb-t" not in out and "sig" not in out.split()  # secrets never reach the logs


def _get_when_up(client: httpx.Client, proc: subprocess.Popen[bytes]) -> dict[str, str]:
    for _ in range(120):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            return dict(client.get("/healthz").json())
        except httpx.ConnectError:
            continue
    raise AssertionError("serve did not come up")
