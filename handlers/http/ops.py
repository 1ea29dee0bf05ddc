"""Operations endpoints: ``/readyz`` (can this replica take traffic?) and ``/metrics`` (Prometheus).
``/healthz`` (liveness: the process answers) stays in handlers/http/app.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bot.kernel import metrics
from bot.service import IncidentService
from handlers.slack.socket_mode import SocketMode


def ops_router(service: IncidentService, socket_mode: SocketMode | None = None) -> APIRouter:
    router = APIRouter()

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = service.readiness()
        ok = all(v == "ok" for v in checks.values())
        content: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
        if socket_mode is not None:  # shown, not required: see handlers/slack/socket_mode.py
            content["slack"] = {"mode": "socket", "connection": socket_mode.state()}
        return JSONResponse(status_code=200 if ok else 503, content=content)

    @router.get("/metrics")
    def prometheus_metrics() -> Response:
        try:
            metrics.OUTBOX_DEPTH.set(service.outbox.depth())
        except Exception:  # the database is away: still serve the counters
            metrics.OUTBOX_DEPTH.set(float("nan"))
        if socket_mode is not None:
            socket_mode.refresh()
        return Response(content=generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
