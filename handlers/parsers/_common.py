"""Shared field types and helpers for the wire-format parsers.

Untrusted text is kept verbatim (escaping for Slack happens elsewhere) but bounded:
every string is capped at ``MAX_TEXT`` characters and every label/annotation map at
``MAX_ENTRIES`` entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from handlers.parsers.errors import MAX_PROBLEMS, PayloadError, from_validation_error, json_type

MAX_TEXT = 3000
MAX_ENTRIES = 64
# Keys that parsers read from label maps; they survive the entry cap.
_KEEP_FIRST = ("alertname", "severity", "service", "app", "job", "namespace")
SERVICE_LABELS = ("service", "app", "job", "namespace")

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)

M = TypeVar("M", bound=BaseModel)


class WireModel(BaseModel):
    """Base for vendor payload models: unknown fields are ignored, not kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: no database stores them


def cap_text(value: str) -> str:
    """Bound a string to ``MAX_TEXT`` characters (an ellipsis marks the cut); replace unstorable characters."""
    value = _UNSTORABLE.sub("\ufffd", value)
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "\u2026"


MAX_COUNT = 2**31 - 1  # the largest count a column stores on every database (PostgreSQL's integer)


def _count(value: Any) -> int:
    """A non-negative count from a payload, clamped into ``0..MAX_COUNT``: a sender's absurd number
    (``truncatedAlerts`` of 2^63) is bounded here, at the edge, instead of overflowing a column (a 422
    that loses the batch on PostgreSQL, a 500 on SQLite). Integral numbers and digit strings are read;
    anything else is an error naming the field."""
    if isinstance(value, bool):
        raise PydanticCustomError("count", "must be a whole number, got {got}", {"got": json_type(value)})
    if isinstance(value, float) and value.is_integer():
        return min(max(int(value), 0), MAX_COUNT)
    if isinstance(value, int):
        return min(max(value, 0), MAX_COUNT)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) <= 4000:
        text = value.strip()
        return 0 if text.startswith("-") else min(int(text), MAX_COUNT)
    raise PydanticCustomError(
        "count",
        "must be a whole number, got {got}",
        {"got": repr(value)[:60] if isinstance(value, str) else json_type(value)},
    )


Count = Annotated[int, PlainValidator(_count)]


def cap_map(values: Mapping[str, str]) -> dict[str, str]:
    """Cap keys/values and keep at most ``MAX_ENTRIES`` entries, deterministically."""
    keys = [k for k in _KEEP_FIRST if k in values]
    keys += sorted(k for k in values if k not in _KEEP_FIRST)
    return {cap_text(k): cap_text(values[k]) for k in keys[:MAX_ENTRIES]}


def scalar_to_str(value: Any) -> str | None:
    """Lenient conversion of a JSON value to text (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _loose_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PydanticCustomError("map_type", "must be an object, got {got}", {"got": json_type(value)})
    converted = {str(k): scalar_to_str(v) for k, v in value.items()}
    return cap_map({k: v for k, v in converted.items() if v is not None})


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 text (any fraction length, truncated to microseconds; no offset means UTC)
    or Unix epoch seconds/milliseconds (number or digit string) -> aware UTC datetime.
    Go's zero time (year 1) and empty values mean "not set"."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _from_epoch(float(value))
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return _from_epoch(float(text))
            match = _RFC3339.fullmatch(text)
            if match:
                return _from_match(match)
    except (ValueError, OverflowError, OSError):
        pass
    raise PydanticCustomError(
        "timestamp",
        "must be an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z) or Unix epoch, got {got}",
        {"got": repr(value)[:60] if isinstance(value, str) else json_type(value)},
    )


def _from_epoch(seconds: float) -> datetime:
    if seconds > 1e11:  # milliseconds (1e11 s would be the year 5138)
        seconds /= 1000
    return datetime.fromtimestamp(seconds, tz=UTC)


def _from_match(m: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if year <= 1:
        return None
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    tz = UTC
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = timezone(-offset if m.group(9) == "-" else offset)
    return datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz).astimezone(UTC)


def _cap_optional(value: str | None) -> str | None:
    return None if value is None else cap_text(value)


# Field types -------------------------------------------------------------------------------
Text = Annotated[str, AfterValidator(cap_text)]
"""A required/strict string, capped."""
LooseText = Annotated[str | None, BeforeValidator(scalar_to_str), AfterValidator(_cap_optional)]
"""Any scalar rendered as text (vendors that send ids as numbers or strings)."""
StrMap = Annotated[dict[str, str], AfterValidator(cap_map)]
"""A string->string map whose values must already be strings (Alertmanager labels)."""
LooseMap = Annotated[dict[str, str], PlainValidator(_loose_map)]
"""A map whose scalar values are converted to text; null values are dropped."""
Timestamp = Annotated[datetime | None, PlainValidator(parse_timestamp)]


# Helpers -----------------------------------------------------------------------------------
def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PayloadError(f"body: must be a JSON object, got {json_type(body)}")
    return body


def validate(model: type[M], data: Any, prefix: tuple[int | str, ...] = ()) -> M:
    """``model.model_validate`` with errors turned into ``PayloadError``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix) from None


def batch_items(body: Any) -> list[tuple[tuple[int | str, ...], Any]]:
    """A single object, or ``{"alerts": [obj, ...]}`` -> [(error path prefix, item), ...]."""
    obj = require_object(body)
    if "alerts" not in obj:
        return [((), obj)]
    items = obj["alerts"]
    if not isinstance(items, list):
        raise PayloadError(f"alerts: must be a list, got {json_type(items)}")
    if not items:
        raise PayloadError("alerts: must not be empty")
    return [(("alerts", i), item) for i, item in enumerate(items)]


def validate_batch(model: type[M], body: Any) -> list[M]:
    """Validate every item of ``batch_items(body)``, reporting problems from all of them."""
    problems: list[str] = []
    valid: list[M] = []
    for prefix, item in batch_items(body):
        try:
            valid.append(validate(model, item, prefix))
        except PayloadError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PayloadError(*problems[:MAX_PROBLEMS], more=len(problems) - MAX_PROBLEMS)
    return valid


def first_of(values: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if values.get(key):
            return values[key]
    return None


def or_none(value: str | None) -> str | None:
    return value or None
