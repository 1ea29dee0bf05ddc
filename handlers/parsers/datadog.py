"""Datadog webhook -> one ``Alert``.

Every Datadog account writes its own payload template from ``$VARIABLES``, so this parser is
lenient: all fields are optional text (numbers accepted), unknown fields are ignored, and
unrendered variables (``"$ALERT_ID"``) count as absent. Only a title is required.

Recognised fields: the default template (``id``, ``last_updated``, ``event_type``, ``title``,
``date``, ``org``, ``body``) and common custom ones: ``alert_id``, ``alert_title``,
``alert_transition``/``transition``, ``alert_status``, ``alert_type``,
``alert_priority``/``priority``, ``alert_scope``/``scope``, ``alert_query``, ``tags``
("a:b,c:d" or a list), ``hostname``, ``service``, ``link``/``url``, ``aggregate``,
``alert_cycle_key``, ``text_only_msg``.
"""

from __future__ import annotations

import re
from typing import Any

from bot.intake.alerts import Alert, AlertStatus, Severity
from handlers.parsers._common import LooseText, WireModel, cap_map, parse_timestamp, require_object, validate
from handlers.parsers.errors import PayloadError
from handlers.parsers.source import Source

_UNRENDERED = re.compile(r"\$[A-Z][A-Z0-9_]*")
_LEADING_TAG = re.compile(r"^\s*\[([^\]]*)\]")
_STATUS_TAG = re.compile(
    r"(re-)?(triggered|recovered|resolved|warn|warning|no data|ok|renotify)\b.*|p[1-5]", re.IGNORECASE
)
_PRIORITY_TAG = re.compile(r"p[1-5]", re.IGNORECASE)
_RESOLVED = re.compile(r"\b(recovered|resolved|ok)\b", re.IGNORECASE)


class DatadogPayload(WireModel):
    id: LooseText = None
    title: LooseText = None
    alert_title: LooseText = None
    event_type: LooseText = None
    date: LooseText = None
    last_updated: LooseText = None
    body: LooseText = None
    text_only_msg: LooseText = None
    alert_id: LooseText = None
    alert_transition: LooseText = None
    transition: LooseText = None
    alert_status: LooseText = None
    alert_type: LooseText = None
    alert_priority: LooseText = None
    priority: LooseText = None
    alert_scope: LooseText = None
    scope: LooseText = None
    alert_query: LooseText = None
    tags: Any = None
    hostname: LooseText = None
    service: LooseText = None
    link: LooseText = None
    url: LooseText = None
    aggregate: LooseText = None
    alert_cycle_key: LooseText = None
    org: Any = None


def parse_datadog(body: Any) -> list[Alert]:
    """Parse a Datadog webhook body (already JSON-decoded) into one alert."""
    raw = validate(DatadogPayload, require_object(body))
    p = {key: _rendered(value) for key, value in raw.model_dump().items()}
    full_title = p["alert_title"] or p["title"]
    if not full_title:
        bad = raw.alert_title or raw.title
        if bad:
            raise PayloadError(
                f"title: unrendered Datadog template variable {bad!r}; fix the webhook payload"
            )
        raise PayloadError("title: field required (send alert_title or title)")
    name, tag_status = _split_title(full_title)
    transition = p["alert_transition"] or p["transition"] or tag_status
    resolved = (
        bool(_RESOLVED.search(transition))
        if transition
        else ((p["alert_type"] or "").lower() == "success" or bool(_RESOLVED.search(p["alert_status"] or "")))
    )
    labels = _tags(raw.tags)
    scope = p["alert_scope"] or p["scope"]
    labels.update(_tags(scope))
    if p["hostname"]:
        labels.setdefault("host", p["hostname"])
    fingerprint = p["aggregate"]
    if p["alert_id"]:
        fingerprint = ":".join(x for x in (p["alert_id"], scope or p["hostname"]) if x)
    when = _lenient_time(p["date"] or p["last_updated"])
    annotations = {
        "event_type": p["event_type"],
        "transition": transition,
        "alert_type": p["alert_type"],
        "priority": p["alert_priority"] or p["priority"],
        "alert_status": p["alert_status"],
        "query": p["alert_query"],
        "org": _org_name(raw.org),
    }
    return [
        Alert(
            source="datadog",
            name=name or full_title,
            status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
            severity=_severity(p["alert_priority"] or p["priority"], p["alert_type"], transition),
            service=p["service"] or labels.get("service") or None,
            summary=name or full_title,
            description=_strip_markdown_fence(p["text_only_msg"] or p["body"] or ""),
            labels=cap_map(labels),
            annotations=cap_map({k: v for k, v in annotations.items() if v}),
            starts_at=None if resolved else when,
            ends_at=when if resolved else None,
            group_key=p["aggregate"] or p["alert_cycle_key"],
            source_fingerprint=fingerprint,
            url=p["link"] or p["url"],
        )
    ]


def _rendered(value: Any) -> Any:
    """Empty strings and unrendered ``$VARIABLES`` count as absent."""
    if isinstance(value, str) and (not value.strip() or _UNRENDERED.fullmatch(value.strip())):
        return None
    return value


def _split_title(title: str) -> tuple[str, str | None]:
    """``[P1] [Triggered on {host:a}] Disk full`` -> (``Disk full``, ``Triggered on {host:a}``)."""
    status = None
    rest = title
    while match := _LEADING_TAG.match(rest):
        tag = match.group(1).strip()
        if not _STATUS_TAG.fullmatch(tag):
            break
        if not _PRIORITY_TAG.fullmatch(tag):
            status = status or tag
        rest = rest[match.end() :]
    return rest.strip(), status


def _tags(raw: Any) -> dict[str, str]:
    """``"env:prod,team:core,canary"`` (or a list) -> ``{"env": "prod", "team": "core", "canary": ""}``."""
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    labels: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str) or not item.strip() or _UNRENDERED.fullmatch(item.strip()):
            continue
        key, _, value = item.strip().partition(":")
        labels.setdefault(key.strip(), value.strip())
    return labels


def _severity(priority: str | None, alert_type: str | None, transition: str | None) -> Severity:
    if priority:
        return Severity.parse(priority)
    if alert_type and alert_type.lower() in {"error", "warning", "info"}:
        return Severity.parse(alert_type)
    if transition and transition.lower().removeprefix("re-").startswith("triggered"):
        return Severity.HIGH  # the monitor's alert threshold (a warn threshold is "Warn")
    return Severity.WARNING


def _lenient_time(value: str | None) -> Any:
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _org_name(org: Any) -> str | None:
    name = org.get("name") if isinstance(org, dict) else None
    return name if isinstance(name, str) and not _UNRENDERED.fullmatch(name) else None


def _strip_markdown_fence(text: str) -> str:
    """Datadog wraps markdown bodies in ``%%%`` fences; drop them, keep the rest verbatim."""
    stripped = text.strip()
    if stripped.startswith("%%%") and stripped.endswith("%%%") and len(stripped) >= 6:
        return stripped[3:-3].strip()
    return text


SOURCE = Source("datadog", parse_datadog)
