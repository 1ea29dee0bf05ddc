"""``POST /changes``: deploys, config pushes, flag flips and model promotions (incl. MLflow's webhook).

Same bearer token, size limit and dead letters as ``/alerts/*``; stored as change events, never incidents.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from bot.kernel.config import Settings, secret_value
from bot.service import IncidentService
from handlers.parsers.changes import parse_changes
from handlers.parsers.errors import PayloadError

MAX_BODY = 1_000_000


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def changes_router(service: IncidentService, settings: Settings) -> APIRouter:
    router = APIRouter()
    token = secret_value(settings.alert_webhook_token)

    @router.post("/changes", status_code=202)
    async def receive_changes(request: Request) -> JSONResponse:
        if token is None:
            return _error(503, "change webhooks are disabled: set ALERT_WEBHOOK_TOKEN")
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <ALERT_WEBHOOK_TOKEN>)")
        raw = await _bounded_body(request)
        ctype = request.headers.get("content-type")

        async def reject(status: int, reason: str) -> JSONResponse:
            dl = await run_in_threadpool(service.dead_letter, source="changes", raw=raw[:MAX_BODY],
                                         reason=reason, content_type=ctype)
            return _error(status, reason, dead_letter_id=dl)

        if len(raw) > MAX_BODY:
            return await reject(413, f"payload too large: over {MAX_BODY} bytes")
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            return await reject(400, f"body is not valid JSON: {str(exc)[:200]}")
        try:
            changes = parse_changes(body)
        except PayloadError as exc:
            return await reject(422, f"invalid change event: {exc}")
        except (ValueError, RecursionError) as exc:
            return await reject(422, f"invalid change event: {type(exc).__name__}: {str(exc)[:200]}")
        try:
            ids = await run_in_threadpool(service.record_changes, source="changes", body=body, changes=changes)
        except (SQLAlchemyError, RecursionError) as exc:
            return await reject(422, f"change event could not be stored ({type(exc).__name__})")
        content: dict[str, Any] = {"status": "accepted", "change_id": ids[0] if len(ids) == 1 else None}
        if len(ids) != 1:
            content["change_ids"] = ids
        return JSONResponse(status_code=202, content=content)

    return router


async def _bounded_body(request: Request) -> bytes:
    """The body, read no further than one byte past the limit (the excerpt is kept in the dead letter)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail, **extra})
