"""HTTP edge: alert webhooks, the Slack endpoint and health. Thin: validate, call one service, answer."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from bot.config import Settings, secret_value
from bot.service import IncidentService
from handlers.ops_http import ops_router
from handlers.parsers import PARSERS, PayloadError

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # bytes; Alertmanager groups are far smaller
UNAUTHENTICATED_EXCERPT = 2_000  # bytes kept of a request that failed Slack's signature check


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _decode(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant)


def _too_large(request: Request) -> bool:
    length = request.headers.get("content-length", "")
    return length.isdigit() and int(length) > MAX_BODY


def alert_router(service: IncidentService, settings: Settings) -> APIRouter:
    router = APIRouter()
    token = secret_value(settings.alert_webhook_token)

    @router.post("/alerts/{source}", status_code=202)
    async def receive_alert(source: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        if token is None:
            return _error(503, "alert webhooks are disabled: set ALERT_WEBHOOK_TOKEN")
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <ALERT_WEBHOOK_TOKEN>)")
        if _too_large(request):
            return _error(413, f"payload too large (limit {MAX_BODY} bytes)")
        raw = await request.body()
        ctype = request.headers.get("content-type")

        async def reject(status: int, reason: str) -> JSONResponse:
            dl = await run_in_threadpool(service.dead_letter, source=f"alerts/{source}", raw=raw[:MAX_BODY],
                                         reason=reason, content_type=ctype)
            return _error(status, reason, dead_letter_id=dl)

        if len(raw) > MAX_BODY:
            return await reject(413, f"payload too large: {len(raw)} bytes (limit {MAX_BODY})")
        parser = PARSERS.get(source)
        if parser is None:
            return await reject(404, f"unknown alert source '{source}'; known: {', '.join(sorted(PARSERS))}")
        try:
            body = _decode(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return await reject(400, f"body is not valid JSON: {str(exc)[:200]}")
        try:
            alerts = parser(body)
        except PayloadError as exc:
            return await reject(422, f"invalid {source} payload: {exc}")
        except (ValueError, RecursionError) as exc:
            return await reject(422, f"invalid {source} payload: {type(exc).__name__}: {str(exc)[:200]}")
        try:
            outcome = await run_in_threadpool(service.accept, source=source, body=body, alerts=alerts)
        except SQLAlchemyError as exc:
            log.warning("could not store %s alert: %s", source, type(exc).__name__)
            return await reject(422, f"payload could not be stored ({type(exc).__name__}); "
                                     "check for NUL characters or over-long fields")
        background.add_task(service.notify, outcome)
        return JSONResponse(status_code=202, content={
            "status": "accepted", "alerts": len(alerts), "duplicates": outcome.duplicates,
            "incidents_created": outcome.created, "incidents_updated": outcome.updated,
            "incidents_resolved": outcome.resolved, "orphaned_resolved_alerts": outcome.orphans,
        })

    return router


def slack_router(bolt: App, service: IncidentService) -> APIRouter:
    router = APIRouter()

    @router.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if _too_large(request):
            return _error(413, "payload too large")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, "payload too large")
        try:
            bolt_request = to_bolt_request(request, raw)  # parses the body before Bolt checks the signature
        except (ValueError, UnicodeDecodeError) as exc:
            reason = f"slack request body is not a valid payload: {str(exc)[:200]}"
            await run_in_threadpool(service.dead_letter, source="slack", raw=raw[:UNAUTHENTICATED_EXCERPT],
                                    reason=reason, content_type=request.headers.get("content-type"))
            return _error(400, reason)
        bolt_resp = await run_in_threadpool(bolt.dispatch, bolt_request)
        if 400 <= bolt_resp.status < 500:
            # Kept so nothing disappears silently, but bounded: an unsigned request is anyone's.
            reason = f"slack request rejected by Bolt (HTTP {bolt_resp.status}): {bolt_resp.body[:200]}"
            await run_in_threadpool(service.dead_letter, source="slack", raw=raw[:UNAUTHENTICATED_EXCERPT],
                                    reason=reason, content_type=request.headers.get("content-type"))
        return to_starlette_response(bolt_resp)

    return router


def build_http_app(*, service: IncidentService, settings: Settings, bolt: App | None) -> FastAPI:
    app = FastAPI(title="incident-bot", docs_url=None, redoc_url=None)
    app.include_router(alert_router(service, settings))
    app.include_router(ops_router(service))  # /readyz, /metrics
    if bolt is not None:
        app.include_router(slack_router(bolt, service))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "slack": "http" if bolt is not None else "socket-mode"}

    return app


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail, **extra})
