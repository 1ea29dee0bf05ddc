"""``PayloadError``: a webhook body we cannot turn into alerts, explained for an operator.

Messages look like ``alerts[1].labels: field required`` or
``status: must be 'firing' or 'resolved', got 'bogus'`` -- a dotted path into the JSON body,
a colon, and what is wrong. Several problems are joined with ``"; "``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from bot.kernel.errors import DomainError
from bot.kernel.validation import format_loc

MAX_PROBLEMS = 5
_MAX_SHOWN_INPUT = 60

_TYPE_NAMES = {
    "string_type": "a string",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
}


class PayloadError(DomainError, ValueError):
    """The body is not a valid payload for the chosen format. ``problems`` lists each issue."""

    def __init__(self, *problems: str, more: int = 0) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or ("invalid payload",)
        message = "; ".join(self.problems)
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, as an operator would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_INPUT else text[: _MAX_SHOWN_INPUT - 3] + "..."


def _describe(error: Any) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "missing":
        return "field required"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}, got {_shown(given)}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {json_type(given)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_shown(given)}"
    if kind in {"string_too_short", "too_short"} and ctx.get("min_length") == 1:
        return "must not be empty"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def from_validation_error(exc: ValidationError, prefix: Sequence[int | str] = ()) -> PayloadError:
    """Turn pydantic's report into a ``PayloadError`` (first ``MAX_PROBLEMS`` problems)."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        problem = f"{format_loc(error['loc'], prefix)}: {_describe(error)}"
        if problem not in problems:
            problems.append(problem)
    return PayloadError(*problems[:MAX_PROBLEMS], more=len(problems) - MAX_PROBLEMS)
