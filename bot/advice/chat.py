"""The incident chat port: what the core needs from chat to show an incident (handlers/ implements it for Slack).

The core never imports slack_bolt; it hands over database rows and ranked matches, and the implementation
renders and sends them. The approval prompts have their own port beside ``ApprovalView``
(bot/remediation/chat.py); delivery errors are the outbox's ``ChatError`` (bot/kernel/outbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.advice.context import IncidentContext
from bot.kernel.models import AlertRecord, Incident
from bot.remediation.actions import ActionSpec
from retrieval.runbooks import RunbookMatch
from retrieval.types import Match


@dataclass
class IncidentView:
    incident: Incident
    alerts: list[AlertRecord]
    matches: list[Match] = field(default_factory=list)
    runbook: RunbookMatch | None = None
    actions: list[ActionSpec] = field(default_factory=list)  # offered (guardrails passed): get buttons
    context: IncidentContext | None = None  # changes before it, linked incidents (bot.advice.context)
    # the runbook's actions not offered, each with its reason ("label `deployment` missing")
    withheld: list[tuple[ActionSpec, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PostMark:
    """What an incident's first post carries (Slack message metadata) so that the bot can find it again:
    the outbox row that posts it and the incident."""

    outbox_id: int
    incident_id: int


class IncidentChat(Protocol):
    def post_incident(self, view: IncidentView, *, mark: PostMark) -> tuple[str, str]:
        """Post a new incident message carrying ``mark``; returns (channel id, message ts)."""
        ...

    def find_post(self, mark: PostMark, *, since: datetime, channel: str | None) -> tuple[str, str] | None:
        """(channel id, ts) of a message posted earlier with ``mark`` since ``since`` (``channel``: a channel id
        known to be the incident channel, when the configured one is a name), or None when there is none or
        the chat cannot be searched. Raises the outbox's errors when the search itself must be retried."""
        ...

    def update_incident(self, view: IncidentView) -> None: ...

    def post_in_thread(self, incident: Incident, text: str, *, mentions: Sequence[str] = ()) -> None:
        """A line in the incident's thread; ``mentions`` are Slack user / user group ids from our own state
        (settings, who clicked), never from alert text."""
        ...
