"""A small real HTTP server that receives signed action webhooks (demo and integration tests stand-in
for the automation a team already has: a deploy tool, a job runner, an MLflow alias mover)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bot.remediation.executors.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    signature_ok: bool
    idempotency_key: str | None


class WebhookTarget:
    def __init__(self, *, secret: str | None, status: int = 200, delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self.status = status
        self._delay = threading.Event()
        self._delay_s = delay
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = bool(secret) and verify(
                    secret or "",
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    raw,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                target.received.append(
                    Received(self.path, json.loads(raw or b"{}"), ok, self.headers.get("Idempotency-Key"))
                )
                if target._delay_s:
                    target._delay.wait(target._delay_s)
                code = target.status if ok else 401
                out = json.dumps({"accepted": ok, "action": self.path.rsplit("/", 1)[-1]}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll interval: shutdown() waits up to one interval (the default 0.5 s, paid by every test)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> WebhookTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._delay.set()
        self._server.shutdown()
        self._server.server_close()
