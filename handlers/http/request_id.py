"""A request id for every HTTP request: the caller's ``X-Request-ID`` when it is a sane token (a proxy's
or the sender's, so their logs and ours join), else a new one; bound to the log context with the request's
``source`` for everything logged while it is handled, background tasks included, and returned as the
``X-Request-ID`` response header. A plain ASGI middleware, so the context reaches the endpoint (Starlette
copies it into the threads it runs sync code in) and nothing buffers the body."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.kernel import logcontext

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # no spaces, quotes or control characters
_ALERT_SOURCE = re.compile(r"^/alerts/([A-Za-z0-9_-]{1,40})$")


def request_source(path: str) -> str:
    """What started the work, for the ``source`` log field: ``alerts/<source>``, ``changes``, ``slack``,
    or ``http`` (health, metrics, anything else)."""
    if m := _ALERT_SOURCE.match(path):
        return f"alerts/{m.group(1)}"
    if path == "/changes":
        return "changes"
    if path == "/slack/events":
        return "slack"
    return "http"


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE.match(text) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope) or uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with logcontext.bound(request_id=request_id, source=request_source(scope.get("path", ""))):
            await self.app(scope, receive, send_with_id)
