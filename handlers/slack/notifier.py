"""The Slack implementation of the core's chat ports (bot/advice/chat.py IncidentChat, bot/remediation/chat.py
ApprovalChat): render with the pure builders, send with WebClient."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.advice.chat import IncidentView, PostMark
from bot.kernel import metrics
from bot.kernel.models import Incident, RequestStatus
from bot.kernel.outbox import ChatError
from bot.remediation.chat import ApprovalView
from handlers.blocks import approval as approval_blocks
from handlers.blocks import incident as incident_blocks
from handlers.blocks import mrkdwn
from handlers.blocks.mrkdwn import escape

log = logging.getLogger(__name__)

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


POST_EVENT = "incident_bot_post"  # the metadata event type of an incident's first post
SLACK_ID = re.compile(r"[CGD][A-Z0-9]{6,}")  # a channel id, not a #name
HISTORY_PAGE, HISTORY_PAGES = 200, 10  # at most 2,000 messages searched for an earlier post


def _payload(mark: PostMark) -> dict[str, Any]:
    return {"outbox_id": mark.outbox_id, "incident_id": mark.incident_id}


def _refused(cause: BaseException | None) -> bool:
    """Slack answered (not 429, not 5xx) and said no: retrying the same search cannot help."""
    if not isinstance(cause, SlackApiError):
        return False
    status = getattr(cause.response, "status_code", 200) or 200
    return status != 429 and status < 500


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
        self._known_channel: str | None = (
            None  # the id Slack answered for the last post (when ours is a name)
        )

    def post_incident(self, view: IncidentView, *, mark: PostMark) -> tuple[str, str]:
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
                metadata={"event_type": POST_EVENT, "event_payload": _payload(mark)},
            )
        self._known_channel = str(resp["channel"])
        return self._known_channel, str(resp["ts"])

    def find_post(self, mark: PostMark, *, since: datetime, channel: str | None) -> tuple[str, str] | None:
        """Our earlier post of ``mark``, found by its metadata in the channel's history since ``since``
        (``conversations.history`` with ``include_all_metadata``; needs the ``channels:history`` scope, or
        ``groups:history`` for a private channel). Rate limits, 5xx and timeouts raise (the outbox retries the
        search, the post waits); a history Slack refuses to show (a missing scope, a channel name instead
        of an id) is logged and answered None: the post goes out, at least once, as before this search."""
        # conversations.history takes a channel id; a configured #name is tried last (Slack refuses it:
        # logged, then posted as before) when no post has told us the id yet.
        where = (
            self._channel
            if SLACK_ID.fullmatch(self._channel)
            else channel or self._known_channel or self._channel
        )
        wanted, cursor = _payload(mark), None
        for _ in range(HISTORY_PAGES):
            try:
                with slack_errors("conversations.history"):
                    resp = self.client.conversations_history(
                        channel=where,
                        oldest=f"{since.timestamp():.6f}",
                        limit=HISTORY_PAGE,
                        include_all_metadata=True,
                        cursor=cursor,
                    )
            except ChatError as exc:
                if exc.retry_after is not None or not _refused(exc.__cause__):
                    raise
                log.warning(
                    "cannot look for an earlier post of incident %s (%s): posting it again may duplicate it",
                    mark.incident_id,
                    exc,
                )
                return None
            for message in resp.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == POST_EVENT and meta.get("event_payload") == wanted:
                    return where, str(message["ts"])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

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
