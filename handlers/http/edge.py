"""The HTTP edge's shared pieces: bounded body reads, content types, error answers, a budget for dead
letters written on behalf of unauthenticated clients, and the steps every webhook route runs
(``WebhookEdge``: ``/alerts/<source>`` and ``/changes``)."""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bot.kernel.db import database_unavailable, short_error
from bot.kernel.errors import DomainError
from bot.service import IncidentService
from handlers.parsers.errors import PayloadError
from handlers.parsers.source import SignatureCheck

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # bytes, every endpoint; Alertmanager groups are far smaller
DB_RETRY_AFTER_SECONDS = 5  # the Retry-After of a 503 answered while the database is away
BEARER_REFUSED = "missing or wrong bearer token (Authorization: Bearer <ALERT_WEBHOOK_TOKEN>)"
_UNSTORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
T = TypeVar("T")


async def read_limited(request: Request, limit: int, keep: int = 0) -> tuple[bytes, bool]:
    """The body, read at most ``limit + 1`` bytes far: ``(body, too_large)``.

    A declared ``Content-Length`` over the limit is read no further than ``keep`` bytes (what the caller
    keeps of a body it refuses; at least the first chunk), and a chunked body is cut as soon as it passes
    the limit, so nobody can make us buffer gigabytes."""
    length = request.headers.get("content-length", "")
    declared_too_large = length.isdigit() and int(length) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or (declared_too_large and size >= keep):
            return b"".join(chunks)[: limit + 1], True
    return b"".join(chunks), False


def is_json_content_type(value: str | None) -> bool:
    """Missing (curl, some senders), ``application/json``, ``*/*+json`` or ``text/plain`` (senders
    that cannot set a header) are accepted; anything else is a 415."""
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media in {"application/json", "text/json", "text/plain"} or media.endswith("+json")


def printable(text: str, limit: int = 64) -> str:
    """A path segment made safe to store and show: control characters and lone surrogates become
    U+FFFD, and it is cut at ``limit`` characters (``dead_letters.source`` is 64 characters)."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def error_response(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": detail, **extra}, headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


# --- the shared steps of the webhook routes ---------------------------------------------------------
# ``/alerts/<source>`` and ``/changes`` answer alike, from these constants (one place, no per-route rules):
# a Content-Type that is not JSON is a 415; valid JSON that is not a valid payload for the route is a 400;
# an over-limit body is read no further than ``OVERSIZE_KEPT`` bytes, which its dead letter keeps.
INVALID_STATUS = 400
OVERSIZE_KEPT = 2_000
TOO_LARGE = f"payload too large: more than {MAX_BODY} bytes; the first {OVERSIZE_KEPT} bytes are kept"


class Rejected(DomainError):
    """A request refused after it was read (the reason is for its sender): answered ``status`` with ``reason``, and kept as a dead letter
    (``kept``: what of the body is kept; None: all of it)."""

    def __init__(self, status: int, reason: str, kept: bytes | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.kept = status, reason, kept


@dataclass(frozen=True)
class Delivery:
    """One authenticated request whose body was read (bounded). Its steps raise ``Rejected``."""

    raw: bytes
    too_large: bool
    content_type: str | None
    label: str  # the dead letters' source, e.g. "alerts/generic" or "changes"

    def body(self) -> Any:
        """The body as JSON, after the size and content-type checks (413, 415, then 400)."""
        if self.too_large:
            raise Rejected(413, TOO_LARGE, self.raw[:OVERSIZE_KEPT])
        if not is_json_content_type(self.content_type):
            raise Rejected(
                415, f"content type must be application/json, got '{printable(self.content_type or '', 80)}'"
            )
        try:
            return json.loads(self.raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise Rejected(400, f"body is not valid JSON: {str(exc)[:200]}") from None

    def parse(self, parse: Callable[[], T], *, invalid: str) -> T:
        """``parse()``; a ``PayloadError`` (or any ValueError) is refused as ``"<invalid>: <problem>"``."""
        try:
            return parse()
        except PayloadError as exc:
            raise Rejected(INVALID_STATUS, f"{invalid}: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise Rejected(INVALID_STATUS, f"{invalid}: {type(exc).__name__}: {str(exc)[:200]}") from None

    async def store(self, store: Callable[[], T], *, failed: str) -> T:
        """``store()`` in the thread pool; a database refusal is a 422 whose reason is ``failed`` with
        ``{error}`` replaced by the exception's name (a NUL or an over-long field, not a server fault).
        A database that cannot be reached is not a refusal: that error goes up, answered 503 by the edge."""
        try:
            return await run_in_threadpool(store)
        except (SQLAlchemyError, RecursionError) as exc:
            if database_unavailable(exc):
                raise
            log.warning("could not store %s payload: %s", self.label, type(exc).__name__)
            raise Rejected(422, failed.format(error=type(exc).__name__)) from None


def unavailable_response(label: str, exc: BaseException) -> JSONResponse:
    """503 with ``Retry-After``: the database is away (down, restarting, a dropped connection). Senders
    retry (Alertmanager does on any 5xx; this one says when), nothing was stored, and the log gets one
    short line, not a traceback: an outage is an operator's fact, not a bug."""
    log.warning("database unavailable, answered 503 to %s: %s", label, short_error(exc))
    return error_response(
        503,
        "database unavailable; nothing was stored, retry later",
        retry_after=DB_RETRY_AFTER_SECONDS,
        headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)},
    )


class WebhookEdge:
    """What ``/alerts/<source>`` and ``/changes`` share: the bearer token (or a source's own signature),
    the bounded read, and every refusal after the read answered 4xx with a dead letter."""

    def __init__(self, *, service: IncidentService, token: str | None, noun: str) -> None:
        self._service, self._token, self.noun = service, token, noun  # noun: "alert", "change"

    async def receive(
        self,
        request: Request,
        *,
        label: str,
        handle: Callable[[Delivery], Awaitable[JSONResponse]],
        signature: SignatureCheck | None = None,
    ) -> JSONResponse:
        """Authenticate, read, then ``handle``; refusals before the read are answered and not kept
        (anyone can send them)."""
        if self._token is None and signature is None:
            return error_response(503, f"{self.noun} webhooks are disabled: set ALERT_WEBHOOK_TOKEN")
        supplied = request.headers.get("authorization", "")
        bearer_ok = self._token is not None and hmac.compare_digest(
            supplied.encode(), f"Bearer {self._token}".encode()
        )
        if not bearer_ok and signature is None:
            return error_response(401, BEARER_REFUSED)
        raw, too_large = await read_limited(request, MAX_BODY, keep=OVERSIZE_KEPT)
        if not bearer_ok and signature is not None and not signature.ok(raw, request.headers):
            return error_response(401, f"missing or wrong bearer token or {signature.header}")
        delivery = Delivery(
            raw=raw,
            too_large=too_large,
            content_type=request.headers.get("content-type"),
            label=label,
        )
        try:
            try:
                return await handle(delivery)
            except Rejected as exc:
                dl = await run_in_threadpool(
                    self._service.dead_letter,
                    source=label,
                    reason=exc.reason,
                    raw=raw if exc.kept is None else exc.kept,
                    content_type=delivery.content_type,
                )
                return error_response(exc.status, exc.reason, dead_letter_id=dl)
        except SQLAlchemyError as exc:  # while storing, or dead-lettering a refusal
            if not database_unavailable(exc):
                raise
            return unavailable_response(label, exc)


class DeadLetterBudget:
    """At most ``per_minute`` dead letters per minute for requests anyone could send (unsigned
    Slack requests); beyond that they are only counted, and the count is reported once the next
    minute opens (``take`` returns it), so a flood costs a few rows, not thousands."""

    def __init__(self, per_minute: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = clock() // 60
        self._used = 0
        self._suppressed = 0
        self.suppressed_total = 0

    def take(self) -> tuple[bool, int]:
        """``(may_store, suppressed_in_previous_window)``."""
        with self._lock:
            window = self._clock() // 60
            previous = 0
            if window != self._window:
                self._window, self._used, previous, self._suppressed = window, 0, self._suppressed, 0
            if self._used < self.per_minute:
                self._used += 1
                return True, previous
            self._suppressed += 1
            self.suppressed_total += 1
            return False, previous
