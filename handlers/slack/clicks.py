"""One INFO line per button click, before any listener runs, and the click's incident in the log context
(so the listener's lines, lazy ones included, carry it). A Bolt global middleware: every click, of any
feature, is logged in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.kernel import logcontext
from handlers.blocks.ids import (
    ActionId,
    InvalidValue,
    base_action,
    parse_feedback_value,
    parse_incident_value,
    parse_request_action_value,
)
from handlers.slack.common import clicked

log = logging.getLogger(__name__)
_INCIDENT_VALUE = {ActionId.ACK, ActionId.RESOLVE, ActionId.RCA_NOTE}
_FEEDBACK = {ActionId.FEEDBACK_UP, ActionId.FEEDBACK_DOWN}


def click_incident(action_id: str, value: str) -> int | None:
    """The incident a button value names, when it names one (Approve/Reject carry a request id only);
    None for a value that is not ours (the listener refuses it and says why)."""
    try:
        action = base_action(action_id)
        if action in _INCIDENT_VALUE:
            return parse_incident_value(value)
        if action is ActionId.REQUEST:
            return parse_request_action_value(value).incident_id
        if action in _FEEDBACK:
            return parse_feedback_value(value).incident_id
    except InvalidValue:
        return None
    return None


def register(app: App) -> None:
    @app.middleware
    def log_click(body: dict[str, Any], next_: Callable[[], Any]) -> Any:
        # Every Slack request starts from a clean context (over Socket Mode the thread is reused): the
        # HTTP request's id and source when there is one, and the incident of a click.
        ctx, click = logcontext.current(), body.get("type") == "block_actions"
        user, _, value = clicked(body) if click else ("", "", "")
        action_id = str((body.get("actions") or [{}])[0].get("action_id", "")) if click else ""
        logcontext.replace(
            request_id=ctx.get("request_id"),
            source=ctx.get("source") or "slack",
            incident_id=click_incident(action_id, value) if click else None,
        )
        if click:
            log.info("slack click %r by %s (value %r)", action_id[:80], user[:32], value[:80])
        return next_()
