"""App Home: open incidents (severity, age), my pending approvals, this week's KPIs.
``app_home_opened`` is acknowledged at once; the view is built and published (views.publish) lazily."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.kernel.db_types import utcnow
from bot.reports.home import HomeData
from bot.service import IncidentService
from handlers.blocks import kpi as blocks_kpi
from handlers.blocks.common import SEVERITY_EMOJI
from handlers.blocks.mrkdwn import escape, is_user_id
from handlers.slack.common import user_errors


def _priority(d: HomeData, incident_id: int) -> str:
    p = d.priorities.get(incident_id)
    return f"*P{p}* " if p else ""


def home_view(d: HomeData) -> View:
    now = utcnow()
    out: list[Block] = [HeaderBlock(text=f"Open incidents ({d.open_total})")]
    lines = [
        f"{SEVERITY_EMOJI.get(i.severity, '⚪')} *#{i.id}* {_priority(d, i.id)}[{escape(i.severity)}] "
        f"{escape(i.title, max_len=150)}"
        f" · {escape(i.service or '-')} · {escape(i.status)} · open {blocks_kpi.age(i.created_at, now)}"
        for i in d.open_incidents
    ]
    if d.open_total > len(d.open_incidents):
        lines.append(f"… and {d.open_total - len(d.open_incidents)} more (`/incident list`)")
    out.append(SectionBlock(text=MarkdownTextObject(text="\n".join(lines) or "No open incidents. :tada:")))
    out += [DividerBlock(), HeaderBlock(text=f"Waiting for my approval ({len(d.my_approvals)})")]
    appr = [
        f"• *{escape(r.action_title, max_len=120)}* on #{i.id} {escape(i.title, max_len=100)} · requested by "
        f"{'<@' + r.requested_by + '>' if is_user_id(r.requested_by) else escape(r.requested_by)} "
        f"{blocks_kpi.age(r.created_at, now)} ago (approve in the incident thread)"
        for r, i in d.my_approvals
    ]
    out.append(SectionBlock(text=MarkdownTextObject(text="\n".join(appr) or "Nothing waiting for you.")))
    out.append(DividerBlock())
    out += blocks_kpi.kpi_summary(d.week, title="This week's KPIs")
    return View(type="home", blocks=out)


def register(app: App, service: IncidentService) -> None:
    def ack_now(ack: Ack) -> None:
        ack()

    @user_errors(app.client)
    def publish(body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        user = str(event.get("user", ""))
        if event.get("tab", "home") != "home" or not is_user_id(user):
            return
        client.views_publish(user_id=user, view=home_view(service.home(user_id=user)))

    app.event("app_home_opened")(ack=ack_now, lazy=[publish])
