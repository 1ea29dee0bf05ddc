"""Remediation approval messages, the resolve modal, and ephemeral errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.models.blocks import ConfirmObject, InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View

from handlers import ids, mrkdwn
from handlers.blocks_common import IncidentLike, RequestLike, actions, button, context, section
from handlers.ids import ActionId, CallbackId

MAX_PARAMS = 10
RCA_MAX = 3000


def _target(url: str | None) -> str:
    """Where the action goes, host only: a full URL may carry tokens in its path or query."""
    if not url:
        return "_no URL_"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "_invalid URL_"
    if not host:
        return "the configured action base URL" if url.startswith("/") else "_invalid URL_"
    return mrkdwn.code(f"{host}:{port}" if port else host, max_len=120)


def _param(key: Any, value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return mrkdwn.code(f"{key}={shown}", max_len=120)


def _what_runs(action: dict[str, Any]) -> str:
    kind = mrkdwn.code(str(action.get("type") or "webhook"), max_len=40)
    lines = [f"*Will run:* {kind} → {_target(action.get('url'))}"]
    params = action.get("params") or {}
    if isinstance(params, dict) and params:
        shown = [_param(k, v) for k, v in list(params.items())[:MAX_PARAMS]]
        more = f" _(+{len(params) - MAX_PARAMS} more)_" if len(params) > MAX_PARAMS else ""
        lines.append("*Params:* " + ", ".join(shown) + more)
    return "\n".join(lines)


def approval_prompt(
    request: RequestLike, incident: IncidentLike, *, approvers: Sequence[str]
) -> list[dict[str, Any]]:
    """Ask the approvers to approve or reject a remediation request. Buttons carry only the request id."""
    title = " ".join(str(request.action_title or "").split())
    who = ", ".join(mrkdwn.mention(a) for a in approvers[:20]) if approvers else "_none configured_"
    value = ids.request_value(request.id)
    confirm = ConfirmObject(
        title=PlainTextObject(text="Run remediation?"),
        text=PlainTextObject(text=mrkdwn.plain(f"Run {title}?", max_len=300)),
        confirm=PlainTextObject(text="Run"),
        deny=PlainTextObject(text="Cancel"),
    )
    return [
        section(
            f"{mrkdwn.mention(request.requested_by)} requests *{mrkdwn.escape(title, max_len=200)}* "
            f"for incident #{int(incident.id)} {mrkdwn.escape(' '.join(incident.title.split()), max_len=200)}"
        ),
        section(_what_runs(request.action or {})),
        context(f"Approvers: {who}"),
        *actions(
            [
                button("Approve", ActionId.APPROVE, value, style="primary", confirm=confirm),
                button("Reject", ActionId.REJECT, value, style="danger"),
            ],
            block_id=f"approval:{int(request.id)}",
        ),
    ]


def _result_lines(result: dict[str, Any]) -> list[str]:
    head = ["✅ *Succeeded*" if result.get("ok") else "❌ *Failed*"]
    if result.get("status_code") is not None:
        head.append(f"HTTP {mrkdwn.escape(str(result['status_code']), max_len=10)}")
    duration = result.get("duration_ms")
    if isinstance(duration, int | float):
        head.append(f"{duration:.0f} ms")
    lines = [" · ".join(head)]
    if result.get("error"):
        lines.append(f"*Error:* {mrkdwn.escape(str(result['error']), max_len=500)}")
    excerpt = mrkdwn.quote_block(str(result.get("response_excerpt") or ""), 600)
    if excerpt:
        lines.append(f"*Response:*\n{excerpt}")
    return lines


def approval_outcome(request: RequestLike, *, actor: str) -> list[dict[str, Any]]:
    """Replaces the prompt once decided: who decided and, for finished runs, the result. No buttons."""
    title = mrkdwn.escape(" ".join(str(request.action_title or "").split()), max_len=200)
    by = mrkdwn.mention(actor)
    status = str(request.status)
    verdict = {
        "rejected": f"🚫 *Rejected* by {by}",
        "approved": f"⏳ *Approved* by {by}, running…",
        "succeeded": f"👍 *Approved* by {by}",
        "failed": f"👍 *Approved* by {by}",
    }.get(status, f"Status: {mrkdwn.escape(status, max_len=20)}")
    lines = [
        f"*{title}* for incident #{int(request.incident_id)} "
        f"(requested by {mrkdwn.mention(request.requested_by)})",
        verdict,
    ]
    if status in {"succeeded", "failed"}:
        lines += _result_lines(request.result or {"ok": status == "succeeded"})
    return [section("\n".join(lines))]


def ephemeral_error(text: str) -> list[dict[str, Any]]:
    """A small section for an error shown only to the user who clicked."""
    return [section(f"⚠️ {mrkdwn.escape(text, max_len=2900)}")]


def resolve_modal(incident: IncidentLike) -> dict[str, Any]:
    """The ``views.open`` payload asking for an optional RCA note when resolving."""
    title = mrkdwn.escape(" ".join(incident.title.split()), max_len=300)
    return View(
        type="modal",
        callback_id=str(CallbackId.RESOLVE_MODAL),
        private_metadata=ids.incident_value(incident.id),
        title=PlainTextObject(text="Resolve incident"),
        submit=PlainTextObject(text="Resolve"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            section(f"Resolving *#{int(incident.id)}* {title}"),
            InputBlock(
                block_id="rca",
                label=PlainTextObject(text="Root cause / what fixed it (goes into the knowledge base)"),
                element=PlainTextInputElement(action_id="rca_note", multiline=True, max_length=RCA_MAX),
                optional=True,
            ),
        ],
    ).to_dict()
