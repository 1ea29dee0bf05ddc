"""What is kept of what arrived: the payload as stored (unstorable characters replaced, any depth) and
the dead letters of a batch's rejected items. Shared by the alert and change endpoints."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.kernel.models import DeadLetter

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with the characters no database can store (NUL, lone surrogates) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable(obj: Any) -> Any:
    """The payload as received, except characters no database can store (NUL, lone surrogates) → U+FFFD.

    Iterative (an explicit stack, no recursion), so a field nested 900 levels deep is copied, not a
    RecursionError that would lose the valid alert carrying it."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return storable_text(value)
        if isinstance(value, list):
            copy: list[Any] = [None] * len(value)
            stack.append((value, copy))
            return copy
        if isinstance(value, dict):
            copy_d: dict[Any, Any] = {}
            stack.append((value, copy_d))
            return copy_d
        return value

    stack: list[tuple[Any, Any]] = []
    root = clean(obj)
    while stack:
        src, dst = stack.pop()
        if isinstance(src, list):
            for i, v in enumerate(src):
                dst[i] = clean(v)
        else:
            for k, v in src.items():
                dst[clean(k)] = clean(v)
    return root


@dataclass
class RejectedAlert:
    """One invalid item of an otherwise accepted batch; ``accept`` dead-letters it and sets the id."""

    index: int
    error: str
    excerpt: str
    dead_letter_id: int | None = None


def dead_letter_rejected(
    session: Session, source: str, rejected: Sequence[RejectedAlert], payload_id: int
) -> None:
    """The item's excerpt is kept here; the whole batch, verbatim, is the alert payload ``payload_id``."""
    for item in rejected:
        row = DeadLetter(
            source=f"alerts/{source}"[:64],
            body=storable_text(item.excerpt),
            reason=storable_text(
                f"{item.error} (rejected from batch alert_payloads "
                f"#{payload_id}; its valid alerts were accepted)"
            )[:2000],
            content_type="application/json",
        )
        session.add(row)
        session.flush()
        item.dead_letter_id = row.id
