"""``/incident freeze`` / ``unfreeze``: the kill switch for every remediation action (approvers only)."""

from __future__ import annotations

from bot.kernel.errors import DomainError
from bot.service import IncidentService
from handlers.blocks.mrkdwn import escape
from handlers.slack.subcommands.base import Call, Subcommand


def run(service: IncidentService, call: Call) -> None:
    call.respond(_freeze(service, call.user_id, call.verb == "freeze"), response_type="in_channel")


def _freeze(service: IncidentService, user: str, frozen: bool) -> str:
    try:
        changed = service.set_actions_frozen(frozen=frozen, user_id=user)
    except DomainError as exc:
        return f"⚠️ {escape(str(exc))}"
    state = "frozen: nothing will be requested or run until unfrozen" if frozen else "unfrozen"
    return f"Remediation actions {state}" + ("" if changed else " (already)") + f" (by <@{escape(user)}>)."


FREEZE = Subcommand(
    verbs=("freeze", "unfreeze"),
    usage=("freeze", "unfreeze"),
    help="every remediation action (kill switch; approvers only)",
    run=run,
)
