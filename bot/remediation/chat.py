"""The approval chat port: what remediation needs from chat (handlers/ implements it for Slack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.kernel.models import Incident, RemediationRequest
from bot.remediation.base import Preview


@dataclass
class ApprovalView:
    """Everything the prompt and its confirm dialog state (rendered by handlers/)."""

    request: RemediationRequest
    incident: Incident
    preview: Preview
    approved_by: list[str]
    required: int
    why: str


class ApprovalChat(Protocol):
    def post_approval_prompt(self, view: ApprovalView) -> str:
        """Post the Approve/Reject prompt (with the preview) in the incident thread; returns its ts."""
        ...

    def update_approval(self, view: ApprovalView, *, actor: str) -> None:
        """Re-render the prompt: approvals so far while pending, else the outcome without buttons."""
        ...
