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
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from bot.intake.payloads import RejectedAlert
from bot.kernel.config import Settings, secret_value
from bot.service import IncidentService
from handlers.http.changes import changes_router
from handlers.http.edge import (
    DeadLetterBudget,
    is_json_content_type,
    pagerduty_signature_ok,
    printable,
    read_limited,
)
from handlers.http.ops import ops_router
from handlers.parsers import PayloadError, known_sources, parser_registry, source_signature_secrets
from handlers.parsers.errors import json_type
from handlers.parsers.partial import parse_partial

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # bytes; Alertmanager groups are far smaller
UNAUTHENTICATED_EXCERPT = 2_000  # bytes kept of a request that failed Slack's signature check
EXCERPT = 2_000  # bytes kept of an alert body we did not read or route (too large, unknown source)
UNSIGNED_DEAD_LETTERS_PER_MINUTE = 30  # then counted, not stored: unsigned requests are anyone's


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _decode(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant)


def alert_router(service: IncidentService, settings: Settings) -> APIRouter:
    router = APIRouter()
    token = secret_value(settings.alert_webhook_token)
    signature_secrets = source_signature_secrets(settings)
    parsers = parser_registry(settings)

    @router.post("/alerts/{source}", status_code=202)
    async def receive_alert(source: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        sig_secret = signature_secrets.get(source)
        if token is None and sig_secret is None:
            return _error(503, "alert webhooks are disabled: set ALERT_WEBHOOK_TOKEN")
        supplied = request.headers.get("authorization", "")
        bearer_ok = token is not None and hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode())
        if not bearer_ok and sig_secret is None:
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <ALERT_WEBHOOK_TOKEN>)")
        raw, too_large = await read_limited(request, MAX_BODY)
        if not bearer_ok and not pagerduty_signature_ok(sig_secret or "", raw,
                                                        request.headers.get("x-pagerduty-signature")):
            return _error(401, "missing or wrong bearer token or X-PagerDuty-Signature")
        ctype = request.headers.get("content-type")
        label = f"alerts/{printable(source, 57)}"

        async def reject(status: int, reason: str, body: bytes = raw) -> JSONResponse:
            dl = await run_in_threadpool(service.dead_letter, source=label, raw=body, reason=reason,
                                         content_type=ctype)
            return _error(status, reason, dead_letter_id=dl)

        parse = parsers(source, request.query_params)
        if parse is None:
            known = ", ".join(known_sources())
            return await reject(404, f"unknown alert source '{printable(source)}'; known: {known}",
                                raw[:EXCERPT])
        if too_large:
            return await reject(413, f"payload too large: more than {MAX_BODY} bytes; the first "
                                     f"{EXCERPT} bytes are kept", raw[:EXCERPT])
        if not is_json_content_type(ctype):
            return await reject(415, f"content type must be application/json, got '{printable(ctype or '', 80)}'")
        try:
            body = _decode(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return await reject(400, f"body is not valid JSON: {str(exc)[:200]}")
        try:
            parsed = parse_partial(parse.parse, body, parse.prepare)
        except PayloadError as exc:
            return await reject(400, f"invalid {source} payload: {exc}")
        except (ValueError, RecursionError) as exc:
            return await reject(400, f"invalid {source} payload: {type(exc).__name__}: {str(exc)[:200]}")
        rejected = [RejectedAlert(index=i, error=err, excerpt=text) for i, err, text in parsed.rejected]
        try:
            outcome = await run_in_threadpool(service.accept, source=source, body=body, alerts=parsed.alerts,
                                              rejected=rejected)
        except (SQLAlchemyError, RecursionError) as exc:
            log.warning("could not store %s alert: %s", source, type(exc).__name__)
            return await reject(422, f"payload could not be stored ({type(exc).__name__}); "
                                     "check for NUL characters or over-long fields")
        background.add_task(service.notify, outcome)
        content: dict[str, Any] = {
            "status": "accepted", "alerts": len(parsed.alerts), "duplicates": outcome.duplicates,
            "incidents_created": outcome.created, "incidents_updated": outcome.updated,
            "incidents_resolved": outcome.resolved, "orphaned_resolved_alerts": outcome.orphans,
            "rejected": [{"index": r.index, "error": r.error, "dead_letter_id": r.dead_letter_id}
                         for r in rejected],
        }
        truncated = max((a.truncated_alerts for a in parsed.alerts), default=0)
        if truncated:
            content["truncated_alerts"] = truncated
        return JSONResponse(status_code=202, content=content)

    return router


def slack_router(bolt: App, service: IncidentService, signing_secret: str | None = None) -> APIRouter:
    router = APIRouter()
    budget = DeadLetterBudget(per_minute=UNSIGNED_DEAD_LETTERS_PER_MINUTE)

    async def keep(raw: bytes, reason: str, content_type: str | None, *, signed: bool) -> None:
        """Dead-letter a rejected Slack request: always when signed, within the budget when not."""
        if not signed:
            may_store, suppressed = budget.take()
            if suppressed:
                log.warning("%s unsigned slack requests were not kept in the previous minute", suppressed)
                await run_in_threadpool(
                    service.dead_letter, source="slack", raw=b"", content_type=None,
                    reason=f"{suppressed} further unsigned or invalid slack requests in the previous minute "
                           "were counted, not stored")
            if not may_store:
                return
        await run_in_threadpool(service.dead_letter, source="slack", raw=raw[:UNAUTHENTICATED_EXCERPT],
                                reason=reason, content_type=content_type)

    @router.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        ctype = request.headers.get("content-type")
        raw, too_large = await read_limited(request, MAX_BODY)
        signed = signing_secret is not None and _slack_signed(signing_secret, raw, request)
        if too_large:
            await keep(raw, f"slack request too large (over {MAX_BODY} bytes)", ctype, signed=signed)
            return _error(413, "payload too large")
        if signing_secret is not None and not signed:
            reason = "slack request rejected (HTTP 401): missing, stale or wrong signature (X-Slack-Signature)"
            await keep(raw, reason, ctype, signed=False)
            return _error(401, "invalid request signature or timestamp")
        try:
            bolt_request = to_bolt_request(request, raw)  # parses the body before Bolt checks the signature
            if not isinstance(bolt_request.body, dict):
                raise ValueError(f"body must be an object, got {json_type(bolt_request.body)}")
            bolt_resp = await run_in_threadpool(bolt.dispatch, bolt_request)
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError, KeyError) as exc:
            reason = f"slack request body is not a valid payload: {type(exc).__name__}: {str(exc)[:200]}"
            await keep(raw, reason, ctype, signed=signed)
            return _error(400, reason)
        if 400 <= bolt_resp.status < 500:
            # Kept so nothing disappears silently, but bounded: an unsigned request is anyone's.
            reason = f"slack request rejected by Bolt (HTTP {bolt_resp.status}): {bolt_resp.body[:200]}"
            await keep(raw, reason, ctype, signed=signed)
        return to_starlette_response(bolt_resp)

    return router


def _slack_signed(secret: str, raw: bytes, request: Request) -> bool:
    """Slack's signature and timestamp check, done before parsing anything; a non-numeric or
    missing timestamp is simply "not signed", never an exception."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature")
    if not timestamp.isdigit() or len(timestamp) > 12 or signature is None:
        return False
    try:
        return SignatureVerifier(secret).is_valid(body=raw, timestamp=timestamp, signature=signature)
    except (ValueError, UnicodeDecodeError):
        return False


def build_http_app(*, service: IncidentService, settings: Settings, bolt: App | None) -> FastAPI:
    app = FastAPI(title="incident-bot", docs_url=None, redoc_url=None)
    app.include_router(alert_router(service, settings))
    app.include_router(changes_router(service, settings))
    app.include_router(ops_router(service))  # /readyz, /metrics
    if bolt is not None:
        app.include_router(slack_router(bolt, service, secret_value(settings.slack_signing_secret)))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "slack": "http" if bolt is not None else "socket-mode"}

    return app


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail, **extra})
