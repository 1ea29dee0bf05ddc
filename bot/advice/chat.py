"""How the core talks to chat: a small interface that handlers/ implements for Slack.

The core never imports slack_bolt; it hands over database rows and ranked matches, and the
implementation renders and sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.advice.context import IncidentContext
from bot.kernel.models import AlertRecord, Incident
from bot.remediation.actions import ActionSpec
from retrieval.runbooks import RunbookMatch
from retrieval.types import Match

if TYPE_CHECKING:
    from bot.remediation.flow import ApprovalView


@dataclass
class IncidentView:
    incident: Incident
    alerts: list[AlertRecord]
    matches: list[Match] = field(default_factory=list)
    runbook: RunbookMatch | None = None
    actions: list[ActionSpec] = field(default_factory=list)  # offered (guardrails passed): get buttons
    context: IncidentContext | None = None  # changes before it, linked incidents (bot.advice.context)


class Notifier(Protocol):
    def post_incident(self, view: IncidentView) -> tuple[str, str]:
        """Post a new incident message; returns (channel id, message ts)."""
        ...

    def update_incident(self, view: IncidentView) -> None: ...

    def post_approval_prompt(self, view: ApprovalView) -> str:
        """Post the Approve/Reject prompt (with the preview) in the incident thread; returns its ts."""
        ...

    def update_approval(self, view: ApprovalView, *, actor: str) -> None:
        """Re-render the prompt: approvals so far while pending, else the outcome without buttons."""
        ...

    def usergroup_members(self, group_id: str) -> list[str]:
        """Directory lookup: the user ids in a user group (Slack ``usergroups.users.list``)."""
        ...

    def post_in_thread(self, incident: Incident, text: str) -> None: ...

    def tell_user(self, *, channel: str | None, user: str, text: str) -> None:
        """A message only ``user`` sees (ephemeral in ``channel``; a direct message without one)."""
        ...


class ChatError(Exception):
    """A chat call that failed in a way the outbox understands: ``retry_after`` seconds (rate limited),
    or ``permanent`` (can never succeed as sent, e.g. invalid blocks). Anything else is retried."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
