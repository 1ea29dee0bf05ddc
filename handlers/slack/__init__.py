"""Slack listeners (one ``register(app, service)`` per feature) and the Slack chat implementations."""

from __future__ import annotations

from slack_bolt import App

from bot.service import IncidentService
from handlers.slack import approvals, clicks, commands, common, home, incidents


def register_listeners(app: App, service: IncidentService) -> None:
    """Every Slack feature's listeners, and the one error handler for what escapes them."""
    clicks.register(app)  # one INFO line per click, and its incident in the log context
    for feature in (incidents, approvals, commands, home):
        feature.register(app, service)
    common.register_error_handler(app)
