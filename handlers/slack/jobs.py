"""The Slack side of the scheduler jobs (bot/reports/reminders.py JobChat): reminders as thread replies, the digest
as a channel message. Mentions come only from settings and our own database, never from alert text."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.kernel.models import Incident
from bot.reports.kpi import KpiReport
from bot.reports.reminders import StaleIncident
from handlers.blocks import kpi as blocks_kpi
from handlers.blocks import mrkdwn
from handlers.blocks.mrkdwn import escape
from handlers.slack.notifier import slack_errors


def mentions(ids: list[str]) -> str:
    """``<!subteam^S…>`` for a user group, ``<@U…>`` for a user; anything else is left out."""
    return mrkdwn.mentions(ids)


class SlackJobChat:
    def __init__(self, *, client: WebClient, channel: str) -> None:
        self._client = client
        self._channel = channel

    def ack_reminder(self, incident: Incident, *, mention: list[str], minutes: int, escalation: bool) -> None:
        who = mentions(mention) or "on-call"
        what = ":rotating_light: *Escalation*" if escalation else ":alarm_clock: *Reminder*"
        text = (
            f"{what}: #{incident.id} {escape(incident.title)} [{escape(incident.severity)}] has not been "
            f"acknowledged for {minutes} min. {who}, please acknowledge or hand over."
        )
        with slack_errors("chat.postMessage"):
            self._client.chat_postMessage(
                channel=incident.slack_channel or self._channel,
                thread_ts=incident.slack_ts,
                text=text,
                reply_broadcast=escalation,
            )

    def rca_reminder(self, incident: Incident, *, mention: list[str]) -> None:
        who = mentions(mention) or "Owner"
        text = (
            f":memo: {who}: #{incident.id} {escape(incident.title)} was resolved without an RCA note. "
            "Add one (root cause, fix, follow-ups) so the next on-call finds it."
        )
        with slack_errors("chat.postMessage"):
            self._client.chat_postMessage(
                channel=incident.slack_channel or self._channel, thread_ts=incident.slack_ts, text=text
            )

    def digest(
        self,
        *,
        current: KpiReport,
        previous: KpiReport,
        top: list[tuple[str, str, int]],
        stale: list[StaleIncident],
        stale_hours: int,
    ) -> None:
        rows = [(s.id, s.severity, s.title, s.age_hours) for s in stale]
        with slack_errors("chat.postMessage"):
            self._client.chat_postMessage(
                channel=self._channel,
                text="Weekly incident digest: " + blocks_kpi.kpi_fallback(current),
                blocks=blocks_kpi.digest(current, previous, top, rows, stale_hours),
            )
