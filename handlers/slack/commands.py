"""The /incident slash command: list | show <id> | kpi [Nd] | help."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from sqlalchemy import select

from bot.kernel.errors import DomainError
from bot.kernel.models import Incident, IncidentStatus
from bot.service import IncidentService
from handlers.blocks.mrkdwn import escape
from handlers.slack import kpi as slack_kpi

HELP = ("*/incident* commands:\n• `list` open incidents\n• `show <id>` one incident\n"
        "• `kpi [7d|30d|90d] [service]` MTTD, MTTA, MTTR, noise funnel, auto-triage/remediation, MLOps, "
        "with a chart\n• `freeze` / `unfreeze` every remediation action (kill switch; approvers only)\n• `help`")


def register(app: App, service: IncidentService) -> None:
    register_mentions(app)
    slack_kpi.register(app, service)  # before the catch-all below: Bolt runs the first matching listener

    @app.command("/incident")
    def incident_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        words = (command.get("text") or "").split()
        verb = words[0].lower() if words else "help"
        if verb in {"freeze", "unfreeze"}:
            respond(_freeze(service, str(command.get("user_id", "")), verb == "freeze"), response_type="in_channel")
            return
        with service.s.sessions() as session:
            if verb == "list":
                rows = list(session.scalars(select(Incident).where(
                    Incident.status != IncidentStatus.RESOLVED.value).order_by(Incident.id.desc()).limit(20)))
                text = "\n".join(f"• #{i.id} [{i.severity}] {escape(i.title)} ({i.status})" for i in rows)
                respond(text or "No open incidents.", response_type="ephemeral")
            elif verb == "show" and len(words) > 1 and words[1].lstrip("#").isdigit():
                inc = session.get(Incident, int(words[1].lstrip("#")))
                respond(_show(inc) if inc else f"No incident #{escape(words[1])}.", response_type="ephemeral")
            else:
                respond(HELP, response_type="ephemeral")


def _freeze(service: IncidentService, user: str, frozen: bool) -> str:
    try:
        changed = service.set_actions_frozen(frozen=frozen, user_id=user)
    except DomainError as exc:
        return f"⚠️ {escape(str(exc))}"
    state = "frozen: nothing will be requested or run until unfrozen" if frozen else "unfrozen"
    return f"Remediation actions {state}" + ("" if changed else " (already)") + f" (by <@{escape(user)}>)."


def _show(inc: Incident) -> str:
    return (f"*#{inc.id} {escape(inc.title)}*\nstatus {inc.status} · severity {inc.severity} · "
            f"service {escape(inc.service or '-')} · alerts {len(inc.alerts)} · opened {inc.created_at:%Y-%m-%d %H:%M} UTC")


def register_mentions(app: App) -> None:
    @app.event("app_mention")
    def mentioned(event: dict[str, Any], say: Any) -> None:
        say(text=HELP, thread_ts=event.get("thread_ts") or event.get("ts"))
