"""Block Kit action ids, callback ids and opaque button values.

A button ``value`` is only a *reference* (incident id, request id, ...). It comes back from Slack and is
untrusted: the ``parse_*`` functions check its shape and raise ``ValueError`` on anything else, and the
listener then loads the row from the database, where authority is decided.

Buttons that appear several times in one message get ``action_id=f"{ActionId.X}:{n}"`` (Slack wants
action ids unique within a message); listeners match both forms with :func:`action_pattern`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from bot.kernel.errors import DomainError


class InvalidValue(DomainError, ValueError):
    """A button value or action id that is not one of ours (it came back from Slack, untrusted)."""


class ActionId(StrEnum):
    ACK = "incident_ack"
    RESOLVE = "incident_resolve"
    REQUEST = "remediation_request"
    APPROVE = "remediation_approve"
    REJECT = "remediation_reject"
    FEEDBACK_UP = "feedback_up"
    FEEDBACK_DOWN = "feedback_down"
    RCA_NOTE = "incident_rca_note"


class CallbackId(StrEnum):
    RESOLVE_MODAL = "resolve_incident"
    RCA_MODAL = "rca_note"


class FeedbackKind(StrEnum):
    DOCUMENT = "document"
    RUNBOOK = "runbook"


class ActionRef(NamedTuple):
    incident_id: int
    action_id: str


class FeedbackRef(NamedTuple):
    incident_id: int
    kind: FeedbackKind
    target_id: str


MAX_VALUE_LEN = 2000
MAX_REF_LEN = 200  # runbook action ids, document external ids and runbook ids are String(200) columns
_INT = re.compile(r"^[1-9][0-9]{0,17}$")
_REF = re.compile(r"^[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$")


def action_pattern(action: ActionId) -> re.Pattern[str]:
    """Matches ``action`` and its numbered instances (``"feedback_up"``, ``"feedback_up:3"``)."""
    return re.compile(rf"^{re.escape(str(action))}(:|$)")


def instance_id(action: ActionId, n: int) -> str:
    """The action id of the ``n``-th instance of a button that appears several times in one message."""
    return f"{action}:{n}"


def base_action(action_id: str) -> ActionId:
    """The :class:`ActionId` of an incoming (possibly numbered) ``action_id``."""
    try:
        return ActionId(action_id.split(":", 1)[0])
    except ValueError:
        raise InvalidValue(f"unknown action id {action_id[:60]!r}") from None


def _parse_int(text: str, what: str) -> int:
    if not _INT.fullmatch(text):
        raise InvalidValue(f"invalid {what} {text[:40]!r}: expected a positive integer")
    return int(text)


def _parse_ref(text: str, what: str) -> str:
    if not text or len(text) > MAX_REF_LEN or not _REF.fullmatch(text) or text != text.strip():
        raise InvalidValue(f"invalid {what} {text[:40]!r}: expected 1-{MAX_REF_LEN} printable characters")
    return text


def _check(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"button value must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_VALUE_LEN:
        raise InvalidValue("button value is empty or too long")
    return value


def incident_value(incident_id: int) -> str:
    """Value of the Acknowledge / Resolve buttons."""
    return str(int(incident_id))


def parse_incident_value(value: object) -> int:
    return _parse_int(_check(value), "incident id")


def request_action_value(incident_id: int, action_id: str) -> str:
    """Value of a "Request: <action>" button: ``"<incident id>:<runbook action id>"``."""
    return f"{int(incident_id)}:{_parse_ref(action_id, 'runbook action id')}"


def parse_request_action_value(value: object) -> ActionRef:
    text = _check(value)
    head, sep, tail = text.partition(":")
    if not sep:
        raise InvalidValue(f"invalid request value {text[:40]!r}: expected '<incident id>:<action id>'")
    return ActionRef(_parse_int(head, "incident id"), _parse_ref(tail, "runbook action id"))


def request_value(request_id: int) -> str:
    """Value of the Approve / Reject buttons: the remediation request id only."""
    return str(int(request_id))


def parse_request_value(value: object) -> int:
    return _parse_int(_check(value), "remediation request id")


def feedback_value(incident_id: int, kind: FeedbackKind | str, target_id: str) -> str:
    """Value of a 👍/👎 button: ``"<incident id>:<document|runbook>:<target id>"``."""
    return f"{int(incident_id)}:{FeedbackKind(kind)}:{_parse_ref(str(target_id), 'feedback target id')}"


def parse_feedback_value(value: object) -> FeedbackRef:
    parts = _check(value).split(":", 2)
    if len(parts) != 3:
        raise InvalidValue(
            f"invalid feedback value {str(value)[:40]!r}: expected '<incident id>:<kind>:<target id>'"
        )
    incident, kind, target = parts
    try:
        parsed_kind = FeedbackKind(kind)
    except ValueError:
        raise InvalidValue(f"invalid feedback kind {kind[:20]!r}: expected 'document' or 'runbook'") from None
    return FeedbackRef(
        _parse_int(incident, "incident id"), parsed_kind, _parse_ref(target, "feedback target id")
    )
