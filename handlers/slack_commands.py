"""The /incident slash command: list | show <id> | kpi [Nd] | help."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond
from sqlalchemy import select

from bot.errors import DomainError
from bot.kpi import KpiSummary, summarise
from bot.models import Incident, IncidentStatus
from bot.service import IncidentService
from handlers.mrkdwn import escape

HELP = ("*/incident* commands:\n• `list` open incidents\n• `show <id>` one incident\n"
        "• `kpi [7d|30d]` MTTD, MTTA, MTTR, noise reduction, triage and remediation rates\n• `help`"
        "\n• `freeze` / `unfreeze` every remediation action (kill switch; approvers only)")


def register(app: App, service: IncidentService) -> None:
    register_mentions(app)

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
            elif verb == "kpi":
                m = re.fullmatch(r"(\d{1,3})d", words[1]) if len(words) > 1 else None
                days = int(m.group(1)) if m else 7
                respond(format_kpi(summarise(session, days=days), days), response_type="ephemeral")
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


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def format_kpi(k: KpiSummary, days: int) -> str:
    return (f"*KPIs, last {days} days* ({k.incidents} incidents, {k.open_incidents} open, "
            f"{k.alert_deliveries} alert deliveries)\n"
            f"• MTTD {_dur(k.mttd_s)} · MTTA {_dur(k.mtta_s)} · MTTR {_dur(k.mttr_s)}\n"
            f"• Alert noise reduction {_pct(k.noise_reduction)}\n"
            f"• Auto-triage rate {_pct(k.auto_triage_rate)} · remediation rate {_pct(k.remediation_rate)}\n"
            f"• Model incidents {k.model_incidents} · model rollback rate {_pct(k.model_rollback_rate)}")


def register_mentions(app: App) -> None:
    @app.event("app_mention")
    def mentioned(event: dict[str, Any], say: Any) -> None:
        say(text=HELP, thread_ts=event.get("thread_ts") or event.get("ts"))
