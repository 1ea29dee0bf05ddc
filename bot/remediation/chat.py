"""The approval chat port: what remediation needs from chat (handlers/ implements it for Slack)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # Whom the policy as it is now names (Slack user ids), and why an entry named nobody
    # (e.g. "user group S0… could not be read: missing_scope").
    approvers: list[str] = field(default_factory=list)
    approver_notes: list[str] = field(default_factory=list)
    frozen: bool = False  # the kill switch is on: the prompt shows no Approve button


class ApprovalChat(Protocol):
    def post_approval_prompt(self, view: ApprovalView) -> str:
        """Post the Approve/Reject prompt (with the preview) in the incident thread; returns its ts."""
        ...

    def update_approval(self, view: ApprovalView, *, actor: str) -> None:
        """Re-render the prompt: approvals so far while pending, else the outcome without buttons."""
        ...

    def post_approval_result(self, view: ApprovalView) -> None:
        """Tell the incident thread how the run ended, naming the request and every approver."""
        ...

    def post_freeze_notice(self, *, frozen: bool, actor: str, reason: str | None, pending: int) -> None:
        """One line in the incident channel: actions were frozen or unfrozen, by whom, how many prompts."""
        ...
