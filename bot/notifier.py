"""How the core talks to chat: a small interface that handlers/ implements for Slack.

The core never imports slack_bolt; it hands over database rows and ranked matches, and the
implementation renders and sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.models import AlertRecord, Incident, RemediationRequest
from retrieval.runbooks import RunbookMatch
from retrieval.types import Match


@dataclass
class IncidentView:
    incident: Incident
    alerts: list[AlertRecord]
    matches: list[Match] = field(default_factory=list)
    runbook: RunbookMatch | None = None


class Notifier(Protocol):
    def post_incident(self, view: IncidentView) -> tuple[str, str]:
        """Post a new incident message; returns (channel id, message ts)."""
        ...

    def update_incident(self, view: IncidentView) -> None: ...

    def post_approval_prompt(self, request: RemediationRequest, incident: Incident) -> str:
        """Post the Approve/Reject prompt in the incident thread; returns its ts."""
        ...

    def update_approval(self, request: RemediationRequest, incident: Incident, *, actor: str) -> None: ...

    def post_in_thread(self, incident: Incident, text: str) -> None: ...

    def tell_user(self, *, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees (ephemeral)."""
        ...


class ChatError(Exception):
    """A chat call that failed in a way the outbox understands: ``retry_after`` seconds (rate limited),
    or ``permanent`` (can never succeed as sent, e.g. invalid blocks). Anything else is retried."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
