"""The Slack implementation of the core's Notifier: render with the pure builders, send with WebClient."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.models import Incident, RequestStatus
from bot.notifier import IncidentView
from bot.remediation.flow import ApprovalView
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
                                           offered=view.actions, context=view.context),
            unfurl_links=False, unfurl_media=False,
        )
        return str(resp["channel"]), str(resp["ts"])

    def update_incident(self, view: IncidentView) -> None:
        inc = view.incident
        if inc.slack_channel is None or inc.slack_ts is None:
            return
        self._client.chat_update(
            channel=inc.slack_channel, ts=inc.slack_ts, text=blocks.incident_fallback_text(inc),
            blocks=blocks.incident_message(inc, view.alerts, view.matches, view.runbook, offered=view.actions, context=view.context),
        )

    @staticmethod
    def _prompt(view: ApprovalView) -> list[dict]:  # type: ignore[type-arg]
        req = view.request
        return blocks.approval_prompt(req, view.incident, approvers=list(req.approvers), preview=view.preview,
                                      approved_by=view.approved_by, required=view.required,
                                      expires_at=req.expires_at, why=view.why)

    def post_approval_prompt(self, view: ApprovalView) -> str:
        req, incident = view.request, view.incident
        resp = self._client.chat_postMessage(
            channel=incident.slack_channel or self._channel, thread_ts=incident.slack_ts,
            text=f"Approval needed: {escape(req.action_title)} (request #{req.id})",
            blocks=self._prompt(view),
        )
        return str(resp["ts"])

    def update_approval(self, view: ApprovalView, *, actor: str) -> None:
        req, incident = view.request, view.incident
        if req.slack_ts is None:
            return
        pending = req.status == RequestStatus.PENDING.value
        self._client.chat_update(
            channel=incident.slack_channel or self._channel, ts=req.slack_ts,
            text=f"Request #{req.id}: {req.status}",
            blocks=self._prompt(view) if pending else blocks.approval_outcome(req, actor=actor),
        )

    def post_in_thread(self, incident: Incident, text: str) -> None:
        self._client.chat_postMessage(channel=incident.slack_channel or self._channel,
                                      thread_ts=incident.slack_ts, text=escape(text))

    def tell_user(self, *, channel: str | None, user: str, text: str) -> None:
        if not channel:  # e.g. a modal submission: no channel to be ephemeral in, so a direct message
            self._client.chat_postMessage(channel=user, text=escape(text), blocks=blocks.ephemeral_error(text))
            return
        self._client.chat_postEphemeral(channel=channel, user=user, text=escape(text),
                                        blocks=blocks.ephemeral_error(text))

    def usergroup_members(self, group_id: str) -> list[str]:
        resp = self._client.usergroups_users_list(usergroup=group_id)
        return [str(u) for u in resp.get("users") or []]
