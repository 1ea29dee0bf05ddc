"""``/incident kpi [7d|30d|90d] [service]``: a Block Kit summary posted in the channel, and the chart
uploaded (files_upload_v2) into the summary's thread. Acknowledged at once; the work runs lazily."""

from __future__ import annotations

from bot.reports.chart import render_png
from bot.reports.kpi import parse_period
from bot.service import IncidentService
from handlers.blocks import kpi as blocks_kpi
from handlers.blocks.mrkdwn import escape
from handlers.slack.subcommands.base import Call, Subcommand

PERIODS = ("7d", "30d", "90d")
USAGE = "Usage: `/incident kpi [7d|30d|90d] [service]`"


def parse_args(text: str) -> tuple[str, str | None]:
    """(period, service) from ``kpi [period] [service]``; ValueError with the usage otherwise."""
    words = text.split()[1:]
    period = "7d"
    if words and words[0].lower() in PERIODS:
        period = words.pop(0).lower()
    elif words and words[0][:-1].isdigit() and words[0][-1:].lower() == "d":
        raise ValueError(f"period {words[0]!r} is not one of {', '.join(PERIODS)}. {USAGE}")
    if len(words) > 1:
        raise ValueError(f"one service at most, got {' '.join(words)!r}. {USAGE}")
    return period, (words[0] if words else None)


def run(service: IncidentService, call: Call) -> None:
    try:
        period, svc = parse_args(" ".join([call.verb, *call.args]))
    except ValueError as exc:
        call.respond(escape(str(exc)), response_type="ephemeral")
        return
    rep, series = service.kpis(period=parse_period(period), service=svc)
    png = render_png(rep, series)
    msg = call.client.chat_postMessage(
        channel=call.channel_id, text=blocks_kpi.kpi_fallback(rep), blocks=blocks_kpi.kpi_summary(rep)
    )
    call.client.files_upload_v2(
        channel=str(msg["channel"]),
        thread_ts=str(msg["ts"]),
        file=png,
        filename=f"incident-kpis-{period}.png",
        title=f"Incident KPIs, last {period}",
        alt_txt="Incidents per day by severity, MTTA/MTTR trend, noise funnel",
    )


KPI = Subcommand(
    verbs=("kpi",),
    usage=("kpi [7d|30d|90d] [service]",),
    help="MTTD, MTTA, MTTR, noise funnel, auto-triage/remediation, MLOps, with a chart",
    run=run,
    lazy=True,
)
