"""``/incident kpi [7d|30d|90d] [service]``: a Block Kit summary posted in the channel, and the chart
uploaded (files_upload_v2) into the summary's thread. Acknowledged at once; the work runs lazily."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.reports.chart import render_png
from bot.reports.kpi import daily, last, parse_period
from bot.service import IncidentService
from handlers.blocks import kpi as blocks_kpi
from handlers.blocks.mrkdwn import escape

log = logging.getLogger(__name__)
PERIODS = ("7d", "30d", "90d")
USAGE = "Usage: `/incident kpi [7d|30d|90d] [service]`"


def is_kpi(body: dict[str, Any]) -> bool:
    words = (body.get("text") or "").split()
    return bool(words) and words[0].lower() == "kpi"


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


def register(app: App, service: IncidentService) -> None:
    def ack_now(ack: Ack) -> None:
        ack()

    def post_kpis(command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        try:
            period, svc = parse_args(command.get("text") or "")
        except ValueError as exc:
            respond(escape(str(exc)), response_type="ephemeral")
            return
        try:
            _post(command, period, svc, client)
        except Exception:  # a lazy listener's error reaches neither @app.error nor the user otherwise
            log.exception("/incident kpi failed")
            respond("Sorry, the KPI summary failed; the error is in the bot's log.", response_type="ephemeral")

    def _post(command: dict[str, Any], period: str, svc: str | None, client: WebClient) -> None:
        with service.s.sessions() as session:
            rep = last(session, period=parse_period(period), service=svc, per_service=svc is None)
            series = daily(session, since=rep.since, until=rep.until, service=svc)
        png = render_png(rep, series)
        channel = command.get("channel_id") or ""
        msg = client.chat_postMessage(channel=channel, text=blocks_kpi.kpi_fallback(rep),
                                      blocks=blocks_kpi.kpi_summary(rep))
        client.files_upload_v2(channel=str(msg["channel"]), thread_ts=str(msg["ts"]), file=png,
                               filename=f"incident-kpis-{period}.png", title=f"Incident KPIs, last {period}",
                               alt_txt="Incidents per day by severity, MTTA/MTTR trend, noise funnel")

    app.command("/incident", matchers=[is_kpi])(ack=ack_now, lazy=[post_kpis])
