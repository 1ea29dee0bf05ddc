"""``POST /changes``: deploys, config pushes, flag flips and model promotions (incl. MLflow's webhook).

Same edge as ``/alerts/*`` (handlers/http/edge.py: bearer token, size limit, content type, 400s, the
dead-letter excerpt, 503 while the database is away); stored as change
events, never incidents.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.kernel.config import Settings, secret_value
from bot.service import IncidentService
from handlers.http.edge import Delivery, WebhookEdge
from handlers.parsers.changes import parse_changes, unknown_fields


def changes_router(service: IncidentService, settings: Settings) -> APIRouter:
    router = APIRouter()
    edge = WebhookEdge(service=service, token=secret_value(settings.alert_webhook_token), noun="change")

    async def handle(delivery: Delivery) -> JSONResponse:
        body = delivery.body()
        changes = delivery.parse(lambda: parse_changes(body), invalid="invalid change event")
        ids = await delivery.store(
            lambda: service.record_changes(source="changes", body=body, changes=changes),
            failed="change event could not be stored ({error})",
        )
        content: dict[str, Any] = {"status": "accepted", "change_id": ids[0] if len(ids) == 1 else None}
        if len(ids) != 1:
            content["change_ids"] = ids
        warnings = unknown_fields(body)
        if warnings:  # accepted, but the sender learns what was not read (e.g. a misspelt field)
            content["warnings"] = warnings
        return JSONResponse(status_code=202, content=content)

    @router.post("/changes", status_code=202)
    async def receive_changes(request: Request) -> JSONResponse:
        return await edge.receive(request, label="changes", handle=handle)

    return router
