"""What the HTTP app guards before any route runs: a deadline for reading a request body (slow clients must
not hold connections) and the answer for a database that is away (503 with ``Retry-After``, not a 500)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.kernel.db import database_unavailable
from bot.kernel.errors import DomainError
from handlers.http.edge import error_response, printable, unavailable_response

log = logging.getLogger(__name__)


class BodyTimeout(DomainError):
    """The request body did not arrive within the deadline (the sender's fault: answered 408)."""


class BodyReadDeadline:
    """ASGI middleware: every request's body must have arrived within ``seconds`` of the request starting,
    or it is answered 408 and the connection closed. uvicorn's ``timeout_keep_alive`` only covers idle
    connections between requests, so without this a client sending one byte a second holds a connection
    (and a task) for as long as it likes. Each ``receive()`` of the body waits only for what is left of the
    deadline; once the body is complete (``more_body`` false), later ``receive()`` calls (a route waiting
    for a disconnect) are not timed."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            left = deadline - loop.time()
            if left <= 0:
                raise BodyTimeout
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimeout:
            if started:  # cannot answer any more; the server closes the connection
                raise
            path = printable(str(scope.get("path", "")), 80)
            log.warning("request body not received within %gs on %s: answered 408", self.seconds, path)
            response = error_response(
                408,
                f"request body not received within {self.seconds:g} seconds",
                headers={"Connection": "close"},
            )
            await response(scope, timed_receive, send)


def install_guards(app: FastAPI, *, body_timeout_seconds: float) -> None:
    """The body deadline (outermost of ours, so it covers every route) and the database-away answer for any
    route (the webhook edge answers its own 503 first; this catches the rest, e.g. ``/slack/events``)."""
    app.add_middleware(BodyReadDeadline, seconds=body_timeout_seconds)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a real fault: the server's 500 and its traceback
        return unavailable_response(printable(request.url.path, 80), exc)

    app.add_exception_handler(SQLAlchemyError, database_error)
