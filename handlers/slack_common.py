"""Shared bits of the Slack listeners: who clicked where, and turning known errors into a private reply."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from bot.errors import DomainError
from bot.service import IncidentService
from handlers.ids import InvalidValue

log = logging.getLogger(__name__)


def clicked(body: dict[str, Any]) -> tuple[str, str, str]:
    """(user id, channel id, button value) of a block_actions payload."""
    user = str(body.get("user", {}).get("id", ""))
    channel = str((body.get("channel") or body.get("container") or {}).get("id")
                  or body.get("container", {}).get("channel_id", ""))
    actions = body.get("actions") or [{}]
    return user, channel, str(actions[0].get("value", ""))


def user_errors(service: IncidentService) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Known errors (DomainError, InvalidValue) become an ephemeral reply to the clicking user.
    Anything else propagates, so Bolt logs it with its traceback."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def inner(body: dict[str, Any], **kwargs: Any) -> None:
            try:
                fn(body=body, **kwargs)
            except (DomainError, InvalidValue) as exc:
                user, channel, _ = clicked(body)
                log.info("refused %s for %s: %s", fn.__name__, user, exc)
                if user and channel:
                    service.s.notifier.tell_user(channel=channel, user=user, text=str(exc))

        return inner

    return wrap


def ack_only(ack: Callable[..., None]) -> None:
    ack()
