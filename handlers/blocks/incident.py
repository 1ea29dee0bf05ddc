"""The incident message: what fired, similar past incidents, the suggested runbook, and the buttons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import DividerBlock, HeaderBlock, PlainTextObject

from bot.intake.alerts import AlertStatus
from bot.kernel.models import IncidentStatus
from handlers.blocks import ids, mrkdwn
from handlers.blocks.common import (
    MAX_BLOCKS,
    SEVERITY_EMOJI,
    AlertLike,
    IncidentLike,
    actions,
    aware,
    button,
    context,
    fields_section,
    section,
    slack_date,
)
from handlers.blocks.ids import ActionId, FeedbackKind
from retrieval.runbooks import RunbookMatch
from retrieval.types import Match

MAX_MATCHES = 3
MAX_STEPS = 10
MAX_REQUEST_BUTTONS = 20
MAX_AFFECTING = 8
MAX_WITHHELD = 5


def _oneline(text: str | None) -> str:
    return " ".join(str(text or "").split())


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return mrkdwn.escape(str(value))
    if isinstance(value, int | float):
        return f"{value:g}"
    return mrkdwn.escape(str(value), max_len=40)


def _still_firing(incident: IncidentLike, firing: int, now: datetime, grace: timedelta | None) -> str | None:
    """A person resolved it while its source still fires: say so, and when it will re-open."""
    if incident.status != IncidentStatus.RESOLVED.value or not firing or grace is None:
        return None
    resolved_at = aware(incident.resolved_at) or now
    left = max(0, math.ceil((resolved_at + grace - now).total_seconds() / 60))
    when = f"re-opens in {left} min" if left else "re-opens on its next delivery"
    return f"still firing at the source, {when} unless it clears"


def _status(incident: IncidentLike, note: str | None = None) -> str:
    if incident.status == IncidentStatus.RESOLVED.value:
        resolved = f"✅ resolved by {mrkdwn.mention(incident.resolved_by)}"
        return f"{resolved}; {note}" if note else resolved
    if incident.status == IncidentStatus.ACKNOWLEDGED.value:
        return f"👀 acknowledged by {mrkdwn.mention(incident.acknowledged_by)}"
    return "🚨 open"


def _model_field(incident: IncidentLike, alerts: Sequence[AlertLike]) -> str | None:
    if not incident.model_name:
        return None
    info = next((a.model for a in alerts if a.model and a.model.get("name") == incident.model_name), None)
    info = info or next((a.model for a in alerts if a.model), None) or {}
    line = mrkdwn.code(incident.model_name, max_len=120)
    if info.get("version"):
        line += f" v{mrkdwn.escape(str(info['version']), max_len=30)}"
    parts = [f"*Model*\n{line}"]
    if info.get("metric") or info.get("value") is not None:
        metric = mrkdwn.code(str(info.get("metric") or "value"), max_len=60)
        measure = f"{metric} {_num(info.get('value'))}"
        if info.get("threshold") is not None:
            measure += f" vs threshold {_num(info['threshold'])}"
        parts.append(measure)
    owner = info.get("owner") or incident.model_owner
    if owner:
        parts.append(f"reported owner: {mrkdwn.escape(str(owner), max_len=80)}")
    return "\n".join(parts)


def _header(incident: IncidentLike, priority: int | None = None) -> dict[str, Any]:
    emoji = SEVERITY_EMOJI.get(str(incident.severity).lower(), "🔵")
    prio = f"P{priority} · " if priority else ""  # bot/catalog/priority.py
    text = mrkdwn.plain(f"{emoji} {prio}{incident.severity} · {incident.title}", max_len=150)
    return HeaderBlock(text=PlainTextObject(text=text, emoji=True)).to_dict()


def _summary(
    incident: IncidentLike,
    alerts: Sequence[AlertLike],
    now: datetime,
    grace: timedelta | None = None,
    priority: int | None = None,
) -> list[dict[str, Any]]:
    firing = sum(1 for a in alerts if a.status != AlertStatus.RESOLVED.value)
    started = aware(incident.first_alert_at) or aware(incident.created_at) or now
    fields = [
        f"*Service*\n{mrkdwn.code(incident.service, max_len=200) or '—'}",
        f"*Source*\n{mrkdwn.escape(incident.source, max_len=100) or '—'}",
        f"*Alerts*\n{firing} firing / {len(alerts) - firing} resolved",
        f"*Status*\n{_status(incident, _still_firing(incident, firing, now, grace))}",
        f"*Started*\n{slack_date(started)}",
    ]
    model = _model_field(incident, alerts)
    if model:
        fields.insert(4, model)
    blocks = [_header(incident, priority), fields_section(fields)]
    first = alerts[0] if alerts else None
    if first is not None:
        description = mrkdwn.escape((first.description or first.summary or "").strip(), max_len=500)
        if description:
            blocks.append(section(description))
        labels = [f"{k}={v}" for k, v in sorted((first.labels or {}).items())][:8]
        if labels:
            blocks.append(context(" ".join(mrkdwn.code(label, max_len=80) for label in labels)))
    return blocks


def _triage(incident: IncidentLike, context: Any) -> list[dict[str, Any]]:
    """Why this incident looks the way it does: changes before it, linked incidents, grouping, flapping."""
    lines = []
    for change in (getattr(context, "changes", None) or [])[:5]:
        text = mrkdwn.escape(_oneline(change.text), max_len=250)
        lines.append(
            f"🚀 {mrkdwn.link(change.url, _oneline(change.text), max_len=250) if change.url else text}"
        )
    for link in (getattr(context, "links", None) or [])[:5]:
        lines.append(f"🔗 {mrkdwn.escape(_oneline(link.text), max_len=250)}")
    note = getattr(incident, "triage_note", None)
    if note:
        lines.append(f"↩️ {mrkdwn.escape(_oneline(note), max_len=250)}")
    if getattr(incident, "flapping", False):
        lines.append("🔁 flapping: fires again after resolving; kept as this one incident (no new page)")
    truncated = getattr(incident, "truncated_alerts", 0) or 0
    if truncated:
        lines.append(
            f"⚠️ {truncated} more alert{'s' if truncated != 1 else ''} in this group were left out "
            "by the source (truncatedAlerts)"
        )
    reason = getattr(incident, "grouping_reason", None)
    if reason:
        lines.append(f"🧩 {mrkdwn.escape(_oneline(reason), max_len=300)}")
    return [section("\n".join(lines))] if lines else []


def _related(note: Any) -> str:
    service = mrkdwn.code(note.service, max_len=100)
    return f"#{note.incident_id} {service}, {mrkdwn.escape(_oneline(note.summary), max_len=120)}"


def _origin(context: Any) -> list[dict[str, Any]]:
    """Probable origin across services and what this incident is probably affecting (bot/catalog/lookup.py),
    each with its reasons, rendered like the similarity reasons."""
    note = getattr(context, "origin", None)
    if note is None:
        return []
    blocks: list[dict[str, Any]] = []
    if note.origin is not None:
        blocks.append(section(f"🧭 *probable origin:* {_related(note.origin)}"))
        blocks += _why(note.origin_reasons)
    if note.affecting:
        shown = [_related(a) for a in note.affecting[:MAX_AFFECTING]]
        more = len(note.affecting) - len(shown)
        if more > 0:
            shown.append(f"…and {more} more")
        blocks.append(section("📡 *probably affecting:* " + "; ".join(shown)))
        blocks += _why(note.affecting_reasons)
    return blocks


NOVELTY_EMOJI = {"new": "🆕", "rare": "🔹", "frequent": "🔁"}


def _novelty(view_context: Any) -> list[dict[str, Any]]:
    """New, rare or frequent for its service, with the counts behind it (bot/advice/novelty.py)."""
    novelty = getattr(view_context, "novelty", None)
    if novelty is None:
        return []
    emoji = NOVELTY_EMOJI.get(novelty.label, "🔹")
    return [context(f"{emoji} {mrkdwn.escape(_oneline(novelty.text), max_len=300)}")]


def _feedback(incident_id: int, kind: FeedbackKind, target_id: str, n: int) -> list[dict[str, Any]]:
    try:
        value = ids.feedback_value(incident_id, kind, target_id)
    except ValueError:  # an id that could not round-trip (control characters, > 200 chars): no buttons
        return []
    return actions(
        [
            button("👍", ids.instance_id(ActionId.FEEDBACK_UP, n), value),
            button("👎", ids.instance_id(ActionId.FEEDBACK_DOWN, n), value),
        ]
    )


def _why(reasons: Sequence[str]) -> list[dict[str, Any]]:
    text = " · ".join(mrkdwn.escape(_oneline(r), max_len=150) for r in reasons[:8] if r)
    return [context(text)] if text else []


def _matches(incident: IncidentLike, matches: Sequence[Match]) -> list[dict[str, Any]]:
    if not matches:
        return [section("*Similar past incidents*\nNo similar past incidents found.")]
    blocks = [section("*Similar past incidents*")]
    for n, match in enumerate(matches[:MAX_MATCHES], start=1):
        doc = match.document
        created = aware(doc.created_at)
        date = created.date().isoformat() if created else "date unknown"
        title = mrkdwn.link(doc.url, _oneline(match.title or doc.title), max_len=200)
        lines = [f"*{match.score:.2f}* · {date} · {title}"]
        if doc.root_cause:
            lines.append(f"_Root cause:_ {mrkdwn.escape(_oneline(doc.root_cause), max_len=200)}")
        if doc.resolution:
            lines.append(f"_Fix:_ {mrkdwn.escape(_oneline(doc.resolution), max_len=200)}")
        blocks.append(section("\n".join(lines)))
        blocks += _why(match.why)
        blocks += _feedback(incident.id, FeedbackKind.DOCUMENT, str(match.id), n)
    return blocks


def _runbook(incident: IncidentLike, runbook_match: RunbookMatch | None) -> list[dict[str, Any]]:
    if runbook_match is None:
        return [section("No runbook matched.")]
    rb = runbook_match.runbook
    blocks = [section(f"*Suggested runbook:* {mrkdwn.escape(_oneline(rb.title), max_len=200)}")]
    blocks += _why(runbook_match.why)
    if rb.steps:
        steps = [
            f"{i}. {mrkdwn.escape(_oneline(s), max_len=250)}" for i, s in enumerate(rb.steps[:MAX_STEPS], 1)
        ]
        if len(rb.steps) > MAX_STEPS:
            steps.append(f"_…and {len(rb.steps) - MAX_STEPS} more steps in the runbook_")
        blocks.append(section("\n".join(steps)))
    blocks += _feedback(incident.id, FeedbackKind.RUNBOOK, rb.id, MAX_MATCHES + 1)
    return blocks


def _withheld(withheld: Sequence[tuple[Any, str]]) -> list[dict[str, Any]]:
    """Each runbook action not offered, with its reason ("not offered: label `deployment` missing")."""
    if not withheld:
        return []
    lines = [
        f"• {mrkdwn.escape(_oneline(action.title), max_len=120)}: not offered: "
        f"{mrkdwn.escape(_oneline(reason), max_len=200)}"
        for action, reason in withheld[:MAX_WITHHELD]
    ]
    if len(withheld) > MAX_WITHHELD:
        lines.append(f"…and {len(withheld) - MAX_WITHHELD} more")
    return [context("Automated actions of this runbook, read it and act by hand:\n" + "\n".join(lines))]


def _controls(
    incident: IncidentLike,
    runbook_match: RunbookMatch | None,
    offered: Sequence[Any],
    now: datetime,
    still_firing: str | None = None,
    withheld: Sequence[tuple[Any, str]] | None = None,
) -> list[dict[str, Any]]:
    if incident.status == IncidentStatus.RESOLVED.value:
        when = aware(incident.resolved_at) or now
        line = f"✅ Resolved by {mrkdwn.mention(incident.resolved_by)} at {slack_date(when)}"
        blocks = [context(f"{line}; {still_firing}" if still_firing else line)]
        note = mrkdwn.quote_block(incident.rca_note, 1000)
        if note:
            blocks.append(section(f"*Root cause / fix*\n{note}"))
        else:  # resolved by its source (or without a note): the RCA can still be captured
            blocks += actions(
                [button("Add RCA note", ActionId.RCA_NOTE, ids.incident_value(incident.id))],
                block_id=f"incident_rca:{incident.id}",
            )
        return blocks
    incident_value = ids.incident_value(incident.id)
    buttons = []
    if incident.status != IncidentStatus.ACKNOWLEDGED.value:
        buttons.append(button("Acknowledge", ActionId.ACK, incident_value, style="primary"))
    buttons.append(button("Resolve", ActionId.RESOLVE, incident_value))
    rb_actions = list(offered)  # only actions that passed the guardrails get a button
    for n, action in enumerate(rb_actions[:MAX_REQUEST_BUTTONS], start=1):
        try:
            value = ids.request_action_value(incident.id, action.id)
        except ValueError:  # runbook action ids are not validated on import; skip one that can't round-trip
            continue
        buttons.append(button(f"Request: {action.title}", ids.instance_id(ActionId.REQUEST, n), value))
    blocks = actions(buttons, block_id=f"incident_actions:{incident.id}")
    if len(rb_actions) > MAX_REQUEST_BUTTONS:
        blocks.append(context(f"…and {len(rb_actions) - MAX_REQUEST_BUTTONS} more runbook actions not shown"))
    if withheld is not None:
        blocks += _withheld(withheld)
    else:  # a caller that did not say why: count them
        n = len(runbook_match.runbook.actions) - len(rb_actions) if runbook_match else 0
        if n > 0:
            blocks.append(
                context(
                    f"{n} automated action(s) of this runbook not offered: the runbook matched "
                    "too weakly or the incident is out of the action's scope. Read it; act by hand."
                )
            )
    return blocks


def incident_message(
    incident: IncidentLike,
    alerts: Sequence[AlertLike],
    matches: Sequence[Match],
    runbook_match: RunbookMatch | None,
    *,
    offered: Sequence[Any] = (),
    now: datetime | None = None,
    context: Any = None,
    reopen_grace: timedelta | None = None,
    withheld: Sequence[tuple[Any, str]] | None = None,
) -> list[dict[str, Any]]:
    """The whole incident message. ``now`` is the render time (and a fallback for timestamps the incident
    lacks); ``reopen_grace`` lets a message resolved by a person say it still fires and when it re-opens."""
    now = aware(now) or datetime.now(UTC)
    firing = sum(1 for a in alerts if a.status != AlertStatus.RESOLVED.value)
    still_firing = _still_firing(incident, firing, now, reopen_grace)
    divider = DividerBlock().to_dict()
    blocks = [
        *_summary(incident, alerts, now, reopen_grace, getattr(context, "priority", None)),
        *_origin(context),
        *_novelty(context),
        *_triage(incident, context),
        divider,
        *_matches(incident, matches),
        divider,
        *_runbook(incident, runbook_match),
        divider,
        *_controls(incident, runbook_match, offered, now, still_firing, withheld),
    ]
    if len(blocks) > MAX_BLOCKS:  # cannot happen with the caps above; kept as a guard
        raise ValueError(f"incident message has {len(blocks)} blocks (Slack allows {MAX_BLOCKS})")
    return blocks


def incident_fallback_text(incident: IncidentLike) -> str:
    """Notification / accessibility text for ``chat.postMessage(text=...)``: escaped, no mentions."""
    emoji = SEVERITY_EMOJI.get(str(incident.severity).lower(), "🔵")
    service = f" ({mrkdwn.escape(_oneline(incident.service), max_len=100)})" if incident.service else ""
    title = mrkdwn.escape(_oneline(incident.title), max_len=200)
    return f"{emoji} {mrkdwn.escape(incident.severity, max_len=20)} · #{incident.id} {title}{service} [{mrkdwn.escape(incident.status, max_len=20)}]"
