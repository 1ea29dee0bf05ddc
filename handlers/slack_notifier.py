"""The Slack implementation of the core's Notifier: render with the pure builders, send with WebClient."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.models import Incident, RemediationRequest
from bot.notifier import IncidentView
from handlers import blocks
from handlers.mrkdwn import escape


class SlackNotifier:
    def __init__(self, *, client: WebClient, channel: str) -> None:
        self._client = client
        self._channel = channel

    def post_incident(self, view: IncidentView) -> tuple[str, str]:
        resp = self._client.chat_postMessage(
            channel=self._channel, text=blocks.incident_fallback_text(view.incident),
            blocks=blocks.incident_message(view.incident, view.alerts, view.matches, view.runbook,
                                           context=view.context),
            unfurl_links=False, unfurl_media=False,
        )
        return str(resp["channel"]), str(resp["ts"])

    def update_incident(self, view: IncidentView) -> None:
        inc = view.incident
        if inc.slack_channel is None or inc.slack_ts is None:
            return
        self._client.chat_update(
            channel=inc.slack_channel, ts=inc.slack_ts, text=blocks.incident_fallback_text(inc),
            blocks=blocks.incident_message(inc, view.alerts, view.matches, view.runbook, context=view.context),
        )

    def post_approval_prompt(self, request: RemediationRequest, incident: Incident) -> str:
        resp = self._client.chat_postMessage(
            channel=incident.slack_channel or self._channel, thread_ts=incident.slack_ts,
            text=f"Approval needed: {escape(request.action_title)} (request #{request.id})",
            blocks=blocks.approval_prompt(request, incident, approvers=list(request.approvers)),
        )
        return str(resp["ts"])

    def update_approval(self, request: RemediationRequest, incident: Incident, *, actor: str) -> None:
        if request.slack_ts is None:
            return
        self._client.chat_update(
            channel=incident.slack_channel or self._channel, ts=request.slack_ts,
            text=f"Request #{request.id}: {request.status}",
            blocks=blocks.approval_outcome(request, actor=actor),
        )

    def post_in_thread(self, incident: Incident, text: str) -> None:
        self._client.chat_postMessage(channel=incident.slack_channel or self._channel,
                                      thread_ts=incident.slack_ts, text=escape(text))

    def tell_user(self, *, channel: str, user: str, text: str) -> None:
        self._client.chat_postEphemeral(channel=channel, user=user, text=escape(text),
                                        blocks=blocks.ephemeral_error(text))
