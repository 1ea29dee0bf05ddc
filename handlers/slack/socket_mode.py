"""The Socket Mode connection, when SLACK_APP_TOKEN is set: Slack's events and clicks arrive over a
websocket this replica opens (slack_sdk reconnects it by itself). ``/readyz`` shows whether it is open
and ``/metrics`` exports ``incident_bot_slack_connected{mode="socket"}``.

It does not make the replica unready: the alert endpoints still work without it, and Slack sends each
event to one of the app's open connections, so with several replicas the others take the clicks. Alert
on the gauge (e.g. ``max(incident_bot_slack_connected{mode="socket"}) == 0`` for a few minutes)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.kernel import metrics

log = logging.getLogger(__name__)


class SocketMode:
    def __init__(self, bolt: App, app_token: str) -> None:
        self._bolt = bolt
        self._token = app_token
        self._handler: Any = None  # slack_bolt's SocketModeHandler, once connect() ran

    def connect(self) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._handler = SocketModeHandler(self._bolt, self._token)
        self._handler.connect()
        log.info("Slack traffic over Socket Mode; alert endpoints on HTTP")
        self.refresh()

    def connected(self) -> bool:
        return bool(self._handler is not None and self._handler.client.is_connected())

    def state(self) -> str:
        if self._handler is None:
            return "not started"
        return "connected" if self.connected() else "disconnected"

    def refresh(self) -> None:
        """Set the gauge from the connection's state (at every scrape)."""
        metrics.SLACK_CONNECTED.labels(mode="socket").set(1.0 if self.connected() else 0.0)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
        metrics.SLACK_CONNECTED.labels(mode="socket").set(0.0)
