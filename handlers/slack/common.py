"""Shared bits of the Slack listeners: who clicked where, and errors that never vanish.

The one error path of the listeners: every lazy listener (buttons, modals, slash subcommands, the App Home)
is wrapped by :func:`user_errors`. A known error (``DomainError``: its message is for the user) becomes a
private reply (a slash command's through its response_url); anything else is logged with its traceback and
an error id, and the user is told that something failed, with that id. Bolt logs an exception in a lazy
listener as one line and never calls ``@app.error``, which is why the wrapper exists;
:func:`register_error_handler` is the one ``@app.error`` for what escapes outside listeners (middleware, acks).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot.kernel.errors import DomainError
from handlers.blocks.approval import ephemeral_error
from handlers.blocks.mrkdwn import escape

log = logging.getLogger(__name__)


def clicked(body: dict[str, Any]) -> tuple[str, str, str]:
    """(user id, channel id, button value) of a block_actions payload."""
    user = str(body.get("user", {}).get("id", "") or body.get("user_id", ""))
    channel = str(
        (body.get("channel") or body.get("container") or {}).get("id")
        or body.get("container", {}).get("channel_id", "")
        or body.get("channel_id", "")
    )
    actions = body.get("actions") or [{}]
    return user, channel, str(actions[0].get("value", ""))


def error_id() -> str:
    return uuid.uuid4().hex[:10]


def tell(client: WebClient, *, channel: str | None, user: str, text: str) -> None:
    """A message only ``user`` sees (ephemeral in ``channel``; a direct message without one, e.g. a modal)."""
    if not channel:
        client.chat_postMessage(channel=user, text=escape(text), blocks=ephemeral_error(text))
        return
    client.chat_postEphemeral(channel=channel, user=user, text=escape(text), blocks=ephemeral_error(text))


def _tell(client: WebClient, body: dict[str, Any], text: str, respond: Respond | None = None) -> None:
    user, channel, _ = clicked(body)
    try:
        if (
            respond is not None
        ):  # a slash command: its response_url reaches the user where the bot is no member
            respond(text=escape(text), response_type="ephemeral")
        elif user:
            tell(client, channel=channel or None, user=user, text=text)
    except Exception:
        log.exception("could not tell %s: %s", user, text)


def user_errors(client: WebClient) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Known errors → a private reply; unexpected ones → traceback + error id in the log, and the user is told."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def inner(body: dict[str, Any], **kwargs: Any) -> None:
            try:
                fn(body=body, **kwargs)
            except DomainError as exc:
                log.info("refused %s for %s: %s", fn.__name__, clicked(body)[0], exc)
                _tell(client, body, str(exc), kwargs.get("respond"))
            except Exception:
                eid = error_id()
                log.exception("listener %s failed (error id %s)", fn.__name__, eid)
                _tell(
                    client,
                    body,
                    f"Something went wrong while handling that (error id {eid}). "
                    "It has been logged; nothing was half-done silently, please retry or ask an admin.",
                    kwargs.get("respond"),
                )

        return inner

    return wrap


def register_error_handler(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        eid = error_id()
        log.error("unhandled Slack error (error id %s)", eid, exc_info=error)
        _tell(app.client, body or {}, f"Something went wrong (error id {eid}).")


def ack_only(ack: Callable[..., None]) -> None:
    ack()
