"""``/incident kpi [period] [service]``: a Block Kit summary posted in the channel, and the chart uploaded
(files_upload_v2) into the summary's thread. Acknowledged at once; the work runs lazily. The period is read by
the CLI's parser (bot/kernel/periods.py): 12h, 7d, 14d, 2w, 90d ... (default 7d)."""

from __future__ import annotations

import re

from bot.kernel.periods import EXAMPLES, parse_period
from bot.reports.chart import render_png
from bot.service import IncidentService
from handlers.blocks import kpi as blocks_kpi
from handlers.blocks.mrkdwn import escape
from handlers.slack.subcommands.base import Call, Subcommand

USAGE = f"Usage: `/incident kpi [period] [service]`, period e.g. {EXAMPLES} (default 7d)"
_LOOKS_LIKE_PERIOD = re.compile(r"^\d+[a-z]$", re.I)


def parse_args(text: str) -> tuple[str, str | None]:
    """(period, service) from ``kpi [period] [service]``; ValueError with the usage otherwise."""
    words = text.split()[1:]
    period = "7d"
    if words and _LOOKS_LIKE_PERIOD.match(words[0]):  # a number and a unit is a period, never a service
        try:
            parse_period(words[0])
        except ValueError as exc:
            raise ValueError(f"{exc}. {USAGE}") from None
        period = words.pop(0).lower()
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
    usage=("kpi [period, e.g. 12h 7d 2w] [service]",),
    help="MTTD, MTTA, MTTR, noise funnel, auto-triage/remediation, MLOps, with a chart",
    run=run,
    lazy=True,
)
