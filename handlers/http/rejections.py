"""``incident_bot_alerts_rejected_total{source, reason}``: every refused delivery to ``/alerts/<source>``
and ``/changes``, counted at one place, whatever part of the edge refused it. The edge answers each kind
of refusal with its own status (handlers/http/edge.py), so the status names the reason; both labels are
bounded (the parser registry's names, "changes" or "unknown"; the reasons below). Refused items of an
accepted batch are counted by the alert route as ``invalid_alert``."""

from __future__ import annotations

import re
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.kernel import metrics

REASONS = {
    400: "invalid_payload",  # not JSON, or not a valid payload for the route
    401: "unauthorized",  # bearer token or source signature
    404: "unknown_source",
    408: "body_timeout",  # the body did not arrive in time
    413: "too_large",
    415: "unsupported_content_type",
    422: "unstorable",  # the database refused a value (a NUL, an over-long field)
    503: "unavailable",  # the database is away, or alert webhooks are not configured
}
ERROR = "error"  # an exception that escaped the route (a 500)
_ALERTS = re.compile(r"^/alerts/([^/]*)$")


class RejectionCounter:
    def __init__(self, app: ASGIApp, *, sources: Collection[str]) -> None:
        self.app = app
        self._sources = frozenset(sources)

    def source(self, path: str) -> str | None:
        """The ``source`` label of an intake route, None for any other path."""
        if path == "/changes":
            return "changes"
        m = _ALERTS.match(path)
        if m is None:
            return None
        return m.group(1) if m.group(1) in self._sources else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self.source(scope.get("path", "")) if scope["type"] == "http" else None
        if source is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                reason = REASONS.get(message["status"], ERROR if message["status"] >= 500 else "other")
                metrics.ALERTS_REJECTED.labels(source=source, reason=reason).inc()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            metrics.ALERTS_REJECTED.labels(source=source, reason=ERROR).inc()
            raise
