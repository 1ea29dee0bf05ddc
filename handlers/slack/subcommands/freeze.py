"""``/incident freeze`` / ``unfreeze``: the kill switch for every remediation action (approvers only)."""

from __future__ import annotations

from bot.kernel.errors import DomainError
from bot.service import IncidentService
from handlers.blocks.mrkdwn import escape
from handlers.slack.subcommands.base import Call, Subcommand


def run(service: IncidentService, call: Call) -> None:
    # To the user only: the incident channel gets its one line through the outbox (bot/remediation/flow.py
    # ``freeze``), as it does for ``incident-bot actions freeze``.
    call.respond(_freeze(service, call.user_id, call.verb == "freeze"), response_type="ephemeral")


def _freeze(service: IncidentService, user: str, frozen: bool) -> str:
    try:
        changed = service.set_actions_frozen(frozen=frozen, user_id=user)
    except DomainError as exc:
        return f"⚠️ {escape(str(exc))}"
    state = "frozen: nothing will be requested or run until unfrozen" if frozen else "unfrozen"
    told = "; the incident channel is told and pending prompts are updated" if changed else " (already)"
    return f"Remediation actions {state}{told} (by <@{escape(user)}>)."


FREEZE = Subcommand(
    verbs=("freeze", "unfreeze"),
    usage=("freeze", "unfreeze"),
    help="every remediation action (kill switch; approvers only)",
    run=run,
)
