"""HTTP edge: alert webhooks, the Slack endpoint and health. Thin: validate, call one service, answer."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from bot.intake.payloads import RejectedAlert
from bot.kernel import metrics
from bot.kernel.config import Settings, secret_value
from bot.service import IncidentService
from bot.triage.policy import TriageOutcome
from handlers.http.changes import changes_router
from handlers.http.edge import (
    MAX_BODY,
    DeadLetterBudget,
    Delivery,
    Rejected,
    WebhookEdge,
    error_response,
    printable,
    read_limited,
)
from handlers.http.guards import install_guards
from handlers.http.ops import ops_router
from handlers.http.rejections import RejectionCounter
from handlers.http.request_id import RequestIdMiddleware
from handlers.parsers import configure_sources, known_sources
from handlers.parsers.errors import json_type
from handlers.parsers.partial import Parsed, parse_partial
from handlers.slack.socket_mode import SocketMode

log = logging.getLogger(__name__)
UNAUTHENTICATED_EXCERPT = 2_000  # bytes kept of a request that failed Slack's signature check
EXCERPT = 2_000  # bytes kept of an alert body we did not read or route (too large, unknown source)
UNSIGNED_DEAD_LETTERS_PER_MINUTE = 30  # then counted, not stored: unsigned requests are anyone's


def alert_router(service: IncidentService, settings: Settings) -> APIRouter:
    """``POST /alerts/<source>`` for every source in the registry (handlers/parsers/__init__.py)."""
    router = APIRouter()
    edge = WebhookEdge(service=service, token=secret_value(settings.alert_webhook_token), noun="alert")
    sources = configure_sources(settings)
    known = ", ".join(sorted(sources))

    @router.post("/alerts/{source}", status_code=202)
    async def receive_alert(source: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        configured = sources.get(source)

        async def handle(delivery: Delivery) -> JSONResponse:
            if configured is None:
                raise Rejected(
                    404, f"unknown alert source '{printable(source)}'; known: {known}", delivery.raw[:EXCERPT]
                )
            body = delivery.body()
            parser, prepare = configured.parser(request.query_params), configured.prepare
            parsed = delivery.parse(
                lambda: parse_partial(parser, body, prepare), invalid=f"invalid {source} payload"
            )
            rejected = [RejectedAlert(index=i, error=err, excerpt=text) for i, err, text in parsed.rejected]
            outcome = await delivery.store(
                lambda: service.accept(source=source, body=body, alerts=parsed.alerts, rejected=rejected),
                failed="payload could not be stored ({error}); check for NUL characters or over-long fields",
            )
            background.add_task(service.notify, outcome)
            log.info(
                "alert batch accepted from %s: %d alerts, %d duplicates, %d rejected; incidents opened %s, "
                "updated %s, resolved %s",
                source, len(parsed.alerts), outcome.duplicates, len(rejected), outcome.created,
                outcome.updated, outcome.resolved,
            )  # fmt: skip
            if rejected:
                metrics.ALERTS_REJECTED.labels(source=source, reason="invalid_alert").inc(len(rejected))
            return JSONResponse(status_code=202, content=_accepted(parsed, outcome, rejected))

        return await edge.receive(
            request,
            label=f"alerts/{printable(source, 57)}",
            handle=handle,
            signature=configured.signature if configured else None,
        )

    return router


def _accepted(parsed: Parsed, outcome: TriageOutcome, rejected: list[RejectedAlert]) -> dict[str, Any]:
    content: dict[str, Any] = {
        "status": "accepted",
        "alerts": len(parsed.alerts),
        "duplicates": outcome.duplicates,
        "incidents_created": outcome.created,
        "incidents_updated": outcome.updated,
        "incidents_resolved": outcome.resolved,
        "orphaned_resolved_alerts": outcome.orphans,
        "rejected": [
            {"index": r.index, "error": r.error, "dead_letter_id": r.dead_letter_id} for r in rejected
        ],
    }
    truncated = max((a.truncated_alerts for a in parsed.alerts), default=0)
    if truncated:
        content["truncated_alerts"] = truncated
    return content


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
                    service.dead_letter,
                    source="slack",
                    raw=b"",
                    content_type=None,
                    reason=f"{suppressed} further unsigned or invalid slack requests in the previous minute "
                    "were counted, not stored",
                )
            if not may_store:
                return
        await run_in_threadpool(
            service.dead_letter,
            source="slack",
            raw=raw[:UNAUTHENTICATED_EXCERPT],
            reason=reason,
            content_type=content_type,
        )

    @router.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        ctype = request.headers.get("content-type")
        raw, too_large = await read_limited(request, MAX_BODY)
        signed = signing_secret is not None and _slack_signed(signing_secret, raw, request)
        if too_large:
            await keep(raw, f"slack request too large (over {MAX_BODY} bytes)", ctype, signed=signed)
            return error_response(413, "payload too large")
        if signing_secret is not None and not signed:
            reason = (
                "slack request rejected (HTTP 401): missing, stale or wrong signature (X-Slack-Signature)"
            )
            await keep(raw, reason, ctype, signed=False)
            return error_response(401, "invalid request signature or timestamp")
        try:
            bolt_request = to_bolt_request(request, raw)  # parses the body before Bolt checks the signature
            _check_bolt_body(bolt_request.body)
            bolt_resp = await run_in_threadpool(bolt.dispatch, bolt_request)
        # Bolt reads what it routes on (payload type, actions[0], ids) without checking it: a validly signed
        # body it cannot read is the sender's problem (400), never a 500 (RecursionError: nested 10,000 deep;
        # IndexError: block_actions with "actions": []).
        except (
            ValueError,
            UnicodeDecodeError,
            AttributeError,
            TypeError,
            KeyError,
            IndexError,
            RecursionError,
        ) as exc:
            reason = f"slack request body is not a valid payload: {type(exc).__name__}: {str(exc)[:200]}"
            await keep(raw, reason, ctype, signed=signed)
            return error_response(400, reason)
        if 400 <= bolt_resp.status < 500:
            # Kept so nothing disappears silently, but bounded: an unsigned request is anyone's.
            reason = f"slack request rejected by Bolt (HTTP {bolt_resp.status}): {bolt_resp.body[:200]}"
            await keep(raw, reason, ctype, signed=signed)
        return to_starlette_response(bolt_resp)

    return router


def _check_bolt_body(body: Any) -> None:
    """What Bolt indexes without checking, checked first: the body is an object, and an interaction that
    routes on ``actions[0]`` has one."""
    if not isinstance(body, dict):
        raise ValueError(f"body must be an object, got {json_type(body)}")
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise ValueError("block_actions payload needs a non-empty 'actions' list of objects")


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


def build_http_app(
    *, service: IncidentService, settings: Settings, bolt: App | None, socket_mode: SocketMode | None = None
) -> FastAPI:
    app = FastAPI(title="incident-bot", docs_url=None, redoc_url=None)
    install_guards(app, body_timeout_seconds=settings.http_body_timeout_seconds)
    app.add_middleware(RejectionCounter, sources=known_sources())  # incident_bot_alerts_rejected_total
    app.add_middleware(RequestIdMiddleware)  # X-Request-ID, and the log context of the request
    app.include_router(alert_router(service, settings))
    app.include_router(changes_router(service, settings))
    app.include_router(ops_router(service, socket_mode))  # /readyz, /metrics
    if bolt is not None:
        app.include_router(slack_router(bolt, service, secret_value(settings.slack_signing_secret)))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "slack": "http" if bolt is not None else "socket-mode"}

    return app
