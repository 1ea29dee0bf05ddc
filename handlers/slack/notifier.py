"""The Slack implementation of the core's chat ports (bot/advice/chat.py IncidentChat, bot/remediation/chat.py
ApprovalChat): render with the pure builders, send with WebClient."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.advice.chat import IncidentView
from bot.kernel import metrics
from bot.kernel.models import Incident, RequestStatus
from bot.kernel.outbox import ChatError
from bot.remediation.chat import ApprovalView
from handlers.blocks import approval as approval_blocks
from handlers.blocks import incident as incident_blocks
from handlers.blocks import mrkdwn
from handlers.blocks.mrkdwn import escape

# Slack errors that no retry can fix (the message as built is wrong); everything else is retried.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "no_text",
    }
)


@contextmanager
def slack_errors(method: str) -> Iterator[None]:
    """Count the call and translate Slack's answer into the outbox's ChatError (429 → Retry-After)."""
    try:
        yield
    except SlackApiError as exc:
        resp = exc.response
        status = getattr(resp, "status_code", None)
        error = (
            resp.get("error") if resp is not None and isinstance(resp.data, dict) else None
        ) or f"HTTP {status}"
        if status == 429 or error == "ratelimited":
            metrics.SLACK_CALLS.labels(method=method, outcome="ratelimited").inc()
            headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
            raw = headers.get("retry-after", "1")
            raw = raw[0] if isinstance(raw, list) else raw
            retry = float(raw) if str(raw).replace(".", "", 1).isdigit() else 1.0
            raise ChatError(f"{method}: rate limited, retry after {retry:g}s", retry_after=retry) from exc
        metrics.SLACK_CALLS.labels(method=method, outcome="error").inc()
        raise ChatError(f"{method}: {error}", permanent=error in PERMANENT_ERRORS) from exc
    except Exception:
        metrics.SLACK_CALLS.labels(method=method, outcome="error").inc()
        raise
    metrics.SLACK_CALLS.labels(method=method, outcome="ok").inc()


class SlackNotifier:
    def __init__(self, *, client: WebClient, channel: str, reopen_grace: timedelta | None = None) -> None:
        self.client = client
        self._channel = channel
        self._reopen_grace = reopen_grace

    def post_incident(self, view: IncidentView) -> tuple[str, str]:
        with slack_errors("chat.postMessage"):
            resp = self.client.chat_postMessage(
                channel=self._channel,
                text=incident_blocks.incident_fallback_text(view.incident),
                blocks=incident_blocks.incident_message(
                    view.incident,
                    view.alerts,
                    view.matches,
                    view.runbook,
                    offered=view.actions,
                    context=view.context,
                    reopen_grace=self._reopen_grace,
                    withheld=view.withheld,
                ),
                unfurl_links=False,
                unfurl_media=False,
            )
        return str(resp["channel"]), str(resp["ts"])

    def update_incident(self, view: IncidentView) -> None:
        inc = view.incident
        if inc.slack_channel is None or inc.slack_ts is None:
            return
        with slack_errors("chat.update"):
            self.client.chat_update(
                channel=inc.slack_channel,
                ts=inc.slack_ts,
                text=incident_blocks.incident_fallback_text(inc),
                blocks=incident_blocks.incident_message(
                    inc,
                    view.alerts,
                    view.matches,
                    view.runbook,
                    offered=view.actions,
                    context=view.context,
                    reopen_grace=self._reopen_grace,
                    withheld=view.withheld,
                ),
            )

    @staticmethod
    def _prompt(view: ApprovalView) -> list[dict[str, Any]]:
        req = view.request
        return approval_blocks.approval_prompt(
            req,
            view.incident,
            approvers=view.approvers or list(req.approvers),
            preview=view.preview,
            approved_by=view.approved_by,
            required=view.required,
            expires_at=req.expires_at,
            why=view.why,
            approver_notes=view.approver_notes,
            frozen=view.frozen,
        )

    def post_approval_prompt(self, view: ApprovalView) -> str:
        req, incident = view.request, view.incident
        with slack_errors("chat.postMessage"):
            resp = self.client.chat_postMessage(
                channel=incident.slack_channel or self._channel,
                thread_ts=incident.slack_ts,
                text=f"Approval needed: {escape(req.action_title)} (request #{req.id})",
                blocks=self._prompt(view),
            )
        return str(resp["ts"])

    def update_approval(self, view: ApprovalView, *, actor: str) -> None:
        req, incident = view.request, view.incident
        if req.slack_ts is None:
            return
        pending = req.status == RequestStatus.PENDING.value
        with slack_errors("chat.update"):
            self.client.chat_update(
                channel=incident.slack_channel or self._channel,
                ts=req.slack_ts,
                text=f"Request #{req.id}: {req.status}",
                blocks=self._prompt(view)
                if pending
                else approval_blocks.approval_outcome(req, actor=actor, approved_by=view.approved_by),
            )

    def post_approval_result(self, view: ApprovalView) -> None:
        req, incident = view.request, view.incident
        with slack_errors("chat.postMessage"):
            self.client.chat_postMessage(
                channel=incident.slack_channel or self._channel,
                thread_ts=incident.slack_ts,
                text=approval_blocks.approval_result_text(req, approved_by=view.approved_by),
            )

    def post_freeze_notice(self, *, frozen: bool, actor: str, reason: str | None, pending: int) -> None:
        with slack_errors("chat.postMessage"):
            self.client.chat_postMessage(
                channel=self._channel,
                text=approval_blocks.freeze_notice(
                    frozen=frozen, actor=actor, reason=reason, pending=pending
                ),
            )

    def post_in_thread(self, incident: Incident, text: str, *, mentions: Sequence[str] = ()) -> None:
        who = mrkdwn.mentions(mentions)
        with slack_errors("chat.postMessage"):
            self.client.chat_postMessage(
                channel=incident.slack_channel or self._channel,
                thread_ts=incident.slack_ts,
                text=f"{who} {escape(text)}" if who else escape(text),
            )

    def upload_in_thread(
        self, incident: Incident, *, content: bytes, filename: str, title: str, alt_text: str
    ) -> None:
        """A file in the incident's thread: files.getUploadURLExternal, the upload, files.completeUploadExternal
        (slack_sdk's files_upload_v2 makes the three calls)."""
        with slack_errors("files.upload"):
            self.client.files_upload_v2(
                channel=incident.slack_channel or self._channel,
                thread_ts=incident.slack_ts,
                file=content,
                filename=filename,
                title=title,
                alt_txt=alt_text,
            )

    def usergroup_members(self, group_id: str) -> list[str]:
        """The group's members; a Slack refusal raises ChatError whose message is Slack's error code alone
        (e.g. ``missing_scope``), which the approval prompt shows."""
        try:
            resp = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            raise ChatError(str(data.get("error") or f"HTTP {exc.response.status_code}")) from exc
        return [str(u) for u in resp.get("users") or []]
