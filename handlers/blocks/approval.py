"""Remediation approval messages, the resolve modal, and ephemeral errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from slack_sdk.models.blocks import ConfirmObject, InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View

from bot.kernel.models import RequestStatus
from handlers.blocks import ids, mrkdwn
from handlers.blocks.common import (
    IncidentLike,
    RequestLike,
    actions,
    aware,
    button,
    context,
    section,
    slack_date,
)
from handlers.blocks.ids import ActionId, CallbackId

MAX_PARAMS = 10
RCA_MAX = 3000


def _param(key: Any, value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return mrkdwn.code(f"{key}={shown}", max_len=160)


class PreviewLike(Protocol):
    executor: str
    target: str
    method: str | None
    path: str | None
    params: dict[str, Any]
    details: list[tuple[str, str]]
    error: str | None


def _what_runs(preview: PreviewLike) -> str:
    """Exactly what will run (from ``Executor.preview``; secrets already masked by the executor)."""
    lines = [
        f"*Will run:* {mrkdwn.escape(preview.executor, max_len=80)} → {mrkdwn.code(preview.target, max_len=200)}"
    ]
    if preview.method or preview.path:
        lines.append(
            f"*Request:* {mrkdwn.code(' '.join(p for p in (preview.method, preview.path) if p), max_len=300)}"
        )
    params = preview.params or {}
    if params:
        shown = [_param(k, v) for k, v in list(params.items())[:MAX_PARAMS]]
        more = f" _(+{len(params) - MAX_PARAMS} more)_" if len(params) > MAX_PARAMS else ""
        lines.append("*Params:* " + ", ".join(shown) + more)
    for label, value in preview.details[:8]:
        lines.append(f"*{mrkdwn.escape(label, max_len=60)}:* {mrkdwn.escape(value, max_len=300)}")
    if preview.error:
        lines.append(f"⚠️ *Cannot preview:* {mrkdwn.escape(preview.error, max_len=300)}")
    return "\n".join(lines)


def _confirm_text(title: str, preview: PreviewLike, k: int, n: int, expires_at: datetime | None) -> str:
    """Slack caps a confirm dialog at 300 characters: counts and expiry first, parameters last."""
    parts = [f"Run {mrkdwn.truncate(title, 60)}?", f"{preview.executor} → {preview.target}"]
    if preview.method or preview.path:
        parts.append(" ".join(p for p in (preview.method, preview.path) if p))
    parts.append(f"{k} of {n} approvals so far (yours makes {k + 1}).")
    if expires_at is not None:
        parts.append(f"Expires {aware(expires_at):%Y-%m-%d %H:%M} UTC.")
    if preview.params:
        parts.append(", ".join(f"{k_}={v}" for k_, v in list(preview.params.items())[:MAX_PARAMS]))
    return mrkdwn.plain(" ".join(parts), max_len=300)


def approval_prompt(
    request: RequestLike,
    incident: IncidentLike,
    *,
    approvers: Sequence[str],
    preview: PreviewLike,
    approved_by: Sequence[str] = (),
    required: int = 1,
    expires_at: datetime | None = None,
    why: str = "",
    approver_notes: Sequence[str] = (),
    frozen: bool = False,
) -> list[dict[str, Any]]:
    """Ask the approvers to approve or reject a remediation request, stating exactly what will run, who
    asked, why, approvals so far (k of N) and when it expires. Buttons carry only the request id.
    ``approver_notes`` say why an approver entry named nobody (an unreadable user group); while ``frozen``
    (the kill switch) there is no Approve button."""
    title = " ".join(str(request.action_title or "").split())
    who = ", ".join(mrkdwn.mention(a) for a in approvers[:20])
    notes = "; ".join(mrkdwn.escape(n, max_len=200) for n in approver_notes[:5])
    if notes:
        who = f"{who} ({notes})" if who else f"nobody: {notes}"
    who = who or "_none configured_"
    value = ids.request_value(request.id)
    k = len(approved_by)
    confirm = ConfirmObject(
        title=PlainTextObject(text="Run remediation?"),
        text=PlainTextObject(text=_confirm_text(title, preview, k, required, expires_at)),
        confirm=PlainTextObject(text="Approve"),
        deny=PlainTextObject(text="Cancel"),
    )
    so_far = ", ".join(mrkdwn.mention(a) for a in approved_by) if approved_by else "none yet"
    status = [f"*Approvals:* {k} of {required} ({so_far})"]
    if expires_at is not None:
        status.append(f"*Expires:* {slack_date(expires_at)}")
    blocks = [
        section(
            f"{mrkdwn.mention(request.requested_by)} requests *{mrkdwn.escape(title, max_len=200)}* "
            f"for incident #{int(incident.id)} {mrkdwn.escape(' '.join(incident.title.split()), max_len=200)} "
            f"(request #{int(request.id)})" + (f"\n*Why:* {mrkdwn.escape(why, max_len=400)}" if why else "")
        ),
        section(_what_runs(preview)),
        context(f"Approvers: {who}", " · ".join(status)),
    ]
    if frozen:
        blocks.append(
            context(
                "🧊 Remediation actions are frozen (kill switch): Approve returns when they are unfrozen."
            )
        )
    buttons = [button("Reject", ActionId.REJECT, value, style="danger")]
    # a request whose target cannot be read is not approvable (it may be rejected); nor while frozen
    if not preview.error and not frozen:
        buttons.insert(0, button("Approve", ActionId.APPROVE, value, style="primary", confirm=confirm))
    return blocks + actions(buttons, block_id=f"approval:{int(request.id)}")


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


def _mentions(users: Sequence[str], fallback: str) -> str:
    return ", ".join(mrkdwn.mention(u) for u in users[:20]) if users else mrkdwn.mention(fallback)


def approval_outcome(
    request: RequestLike, *, actor: str, approved_by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Replaces the prompt once decided: who decided (every approver) and, for finished runs, the result.
    No buttons."""
    title = mrkdwn.escape(" ".join(str(request.action_title or "").split()), max_len=200)
    by = mrkdwn.mention(actor)
    approvers = _mentions(approved_by, actor)
    status = str(request.status)
    reason = getattr(request, "reason", None)
    verdicts: dict[str, str] = {  # keyed by RequestStatus, a StrEnum: the stored string finds its entry
        RequestStatus.EXPIRED: "⌛ *Expired* before enough approvals; request it again if still needed",
        RequestStatus.CANCELLED: f"✖️ *Cancelled* ({mrkdwn.escape(reason or 'by the requester', max_len=200)})",
        RequestStatus.RUNNING: "⏳ *Running…*",
        RequestStatus.REJECTED: f"🚫 *Rejected* by {by}",
        RequestStatus.APPROVED: f"⏳ *Approved* by {approvers}, running…",
        RequestStatus.SUCCEEDED: f"👍 *Approved* by {approvers}",
        RequestStatus.FAILED: f"👍 *Approved* by {approvers}",
        RequestStatus.REFUSED: "🚫 *Refused: nothing changed*"
        + (f" ({mrkdwn.escape(_refusal(request, reason), max_len=400)})" if _refusal(request, reason) else "")
        + (f"\nApproved by {_mentions(approved_by, actor)}" if approved_by else ""),
    }
    verdict = verdicts.get(status, f"Status: {mrkdwn.escape(status, max_len=20)}")
    lines = [
        f"*{title}* for incident #{int(request.incident_id)}, request #{int(request.id)} "
        f"(requested by {mrkdwn.mention(request.requested_by)})",
        verdict,
    ]
    if status in {RequestStatus.SUCCEEDED, RequestStatus.FAILED}:
        lines += _result_lines(request.result or {"ok": status == RequestStatus.SUCCEEDED})
    return [section("\n".join(lines))]


def _refusal(request: RequestLike, reason: str | None) -> str:
    """Why a refused request did not run: the executor's words (nothing was changed), else the stored reason."""
    result = request.result or {}
    return str(result.get("error") or reason or "").removeprefix("nothing changed: ")


def approval_result_text(request: RequestLike, *, approved_by: Sequence[str]) -> str:
    """The thread reply when a run ends: outcome, duration, the request number and every approver."""
    result = request.result or {}
    title = mrkdwn.escape(" ".join(str(request.action_title or "").split()), max_len=200)
    error = mrkdwn.escape(str(result.get("error") or ""), max_len=300)
    status = str(request.status)
    outcome = (
        "succeeded"
        if status == RequestStatus.SUCCEEDED
        else f"was refused, nothing changed ({error})"
        if status == RequestStatus.REFUSED
        else f"FAILED ({error})"
    )
    duration = result.get("duration_ms")
    took = f" in {duration:.0f} ms" if isinstance(duration, int | float) else ""
    who = ", ".join(mrkdwn.mention(u) for u in approved_by[:20]) or "nobody"
    what = " ".join(str(result.get("response_excerpt") or "").split()) if result.get("ok") else ""
    return f"Action '{title}' {outcome}{took} (request #{int(request.id)}, approved by {who})." + (
        f" {mrkdwn.escape(what, max_len=300)}" if what else ""
    )


def freeze_notice(*, frozen: bool, actor: str, reason: str | None, pending: int) -> str:
    """One line for the incident channel when the kill switch changes."""
    who = mrkdwn.mention(actor) if mrkdwn.is_user_id(actor) else f"`{mrkdwn.escape(actor, max_len=80)}`"
    why = f" ({mrkdwn.escape(reason, max_len=200)})" if reason else ""
    if frozen:
        return (
            f"🧊 Remediation actions *frozen* by {who}{why}: nothing will be requested or run until unfrozen; "
            f"{pending} pending approval prompt(s) lost their Approve button."
        )
    return (
        f"▶️ Remediation actions *unfrozen* by {who}{why}: "
        f"{pending} pending approval prompt(s) can be approved again."
    )


def ephemeral_error(text: str) -> list[dict[str, Any]]:
    """A small section for an error shown only to the user who clicked."""
    return [section(f"⚠️ {mrkdwn.escape(text, max_len=2900)}")]


def resolve_modal(incident: IncidentLike, *, rca_only: bool = False) -> dict[str, Any]:
    """The ``views.open`` payload asking for an RCA note: optional when resolving, required when adding one
    to an incident already resolved (e.g. by its source)."""
    title = mrkdwn.escape(" ".join(incident.title.split()), max_len=300)
    return View(
        type="modal",
        callback_id=str(CallbackId.RCA_MODAL if rca_only else CallbackId.RESOLVE_MODAL),
        private_metadata=ids.incident_value(incident.id),
        title=PlainTextObject(text="Add RCA note" if rca_only else "Resolve incident"),
        submit=PlainTextObject(text="Save" if rca_only else "Resolve"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            section(f"{'RCA for' if rca_only else 'Resolving'} *#{int(incident.id)}* {title}"),
            InputBlock(
                block_id="rca",
                label=PlainTextObject(text="Root cause / what fixed it (goes into the knowledge base)"),
                element=PlainTextInputElement(action_id="rca_note", multiline=True, max_length=RCA_MAX),
                optional=not rca_only,
            ),
        ],
    ).to_dict()
