"""``/incident list``: the newest open incidents; ``/incident show <id>``: one incident."""

from __future__ import annotations

from bot.service import IncidentService, IncidentSummary
from handlers.blocks.mrkdwn import escape
from handlers.slack.subcommands.base import Call, Subcommand

MAX_ID_DIGITS = 18  # an incident id is a database integer: anything longer is not one


def run_list(service: IncidentService, call: Call) -> None:
    rows = service.open_incidents(limit=20)
    text = "\n".join(f"• #{i.id} [{i.severity}] {escape(i.title)} ({i.status})" for i in rows)
    call.respond(text or "No open incidents.", response_type="ephemeral")


def run_show(service: IncidentService, call: Call) -> None:
    ref = call.args[0].lstrip("#") if call.args else ""
    if not ref.isdigit():
        call.respond(call.help_text, response_type="ephemeral")
        return
    inc = service.incident_summary(int(ref)) if len(ref) <= MAX_ID_DIGITS else None
    call.respond(_show(inc) if inc else f"No incident #{escape(call.args[0])}.", response_type="ephemeral")


def _show(inc: IncidentSummary) -> str:
    return (
        f"*#{inc.id} {escape(inc.title)}*\nstatus {inc.status} · severity {inc.severity} · "
        f"service {escape(inc.service or '-')} · alerts {inc.alerts} · opened {inc.created_at:%Y-%m-%d %H:%M} UTC"
    )


LIST = Subcommand(verbs=("list",), usage=("list",), help="open incidents", run=run_list)
SHOW = Subcommand(verbs=("show",), usage=("show <id>",), help="one incident", run=run_show)
