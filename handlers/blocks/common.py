"""Shared pieces of the Block Kit builders: the shapes they read, small block helpers, dates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.intake.alerts import Severity
from handlers.blocks import mrkdwn

MAX_BLOCKS = 50
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75
SEVERITY_EMOJI: dict[str, str] = {
    Severity.CRITICAL: "🔴",
    Severity.HIGH: "🟠",
    Severity.WARNING: "🟡",
    Severity.INFO: "🔵",
}


class IncidentLike(Protocol):
    """Read-only view of :class:`bot.kernel.models.Incident` (properties, so ORM rows and test doubles both fit)."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def service(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def model_name(self) -> str | None: ...
    @property
    def model_owner(self) -> str | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def first_alert_at(self) -> datetime | None: ...
    @property
    def acknowledged_by(self) -> str | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...
    @property
    def resolved_by(self) -> str | None: ...
    @property
    def rca_note(self) -> str | None: ...


class AlertLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def model(self) -> dict[str, Any] | None: ...


class RequestLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def incident_id(self) -> int: ...
    @property
    def action_title(self) -> str: ...
    @property
    def action(self) -> dict[str, Any]: ...
    @property
    def requested_by(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> dict[str, Any] | None: ...


def aware(when: datetime | None) -> datetime | None:
    """Naive datetimes from the database are UTC."""
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """``<!date^...>``: rendered in each reader's time zone, with a UTC ISO fallback."""
    moment = aware(when) or when
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{fmt}|{fallback}>"


def md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def section(text: str) -> dict[str, Any]:
    """A section from already-safe mrkdwn, cut to Slack's limit."""
    return SectionBlock(text=md(mrkdwn.truncate(text, SECTION_MAX))).to_dict()


def fields_section(fields: Sequence[str]) -> dict[str, Any]:
    return SectionBlock(fields=[md(mrkdwn.truncate(f, FIELD_MAX)) for f in fields[:10]]).to_dict()


def context(*texts: str) -> dict[str, Any]:
    elements: list[Any] = [md(mrkdwn.truncate(t, SECTION_MAX)) for t in texts if t][:10]
    return ContextBlock(elements=elements).to_dict()


def button(
    label: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=mrkdwn.plain(label, max_len=BUTTON_TEXT_MAX), emoji=True),
        action_id=str(action_id),
        value=value,
        style=style,
        confirm=confirm,
    )


def actions(buttons: Sequence[ButtonElement], block_id: str | None = None) -> list[dict[str, Any]]:
    """One actions block per 25 buttons (Slack's per-block limit); none for no buttons."""
    return [
        ActionsBlock(elements=list(buttons[i : i + 25]), block_id=block_id if i == 0 else None).to_dict()
        for i in range(0, len(buttons), 25)
    ]


def as_dicts(blocks: Sequence[Block | dict[str, Any]]) -> list[dict[str, Any]]:
    return [b if isinstance(b, dict) else b.to_dict() for b in blocks]
