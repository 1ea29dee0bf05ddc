"""Block Kit builders: pure functions from our models to Slack payloads (no I/O).

Built with ``slack_sdk.models.blocks`` so Slack's limits are checked at build time; every piece of
untrusted text goes through :mod:`handlers.blocks.mrkdwn`. One module per message (approval, incident, kpi,
render); the incident and approval builders the chat implementation uses are importable from here.
"""

from handlers.blocks.approval import approval_outcome, approval_prompt, ephemeral_error, resolve_modal
from handlers.blocks.incident import incident_fallback_text, incident_message
from handlers.blocks.render import render_text

__all__ = [
    "approval_outcome",
    "approval_prompt",
    "ephemeral_error",
    "incident_fallback_text",
    "incident_message",
    "render_text",
    "resolve_modal",
]
