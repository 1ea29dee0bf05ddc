"""Partial acceptance: one bad alert in a batch must not cost the good ones.

Alertmanager treats any 4xx as final and drops the notification, so rejecting a whole group
because one of its alerts lacks ``alertname`` loses the valid alerts with it. ``parse_partial``
runs a source's parser on the whole body; when every problem lies inside ``alerts[i]`` it parses
each item on its own (with the same envelope) and returns the good ones plus the rejected ones,
each with its index and the reason. A problem in the envelope (``status``, ``alerts`` itself, a
body that is not an object) still rejects the whole body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bot.intake.alerts import Alert
from handlers.parsers.errors import PayloadError

EXCERPT = 2_000  # characters of a rejected item kept in its dead letter
_ITEM = re.compile(r"^alerts\[(\d+)\]")


@dataclass
class Parsed:
    alerts: list[Alert]
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    """``(index, error, excerpt)`` per rejected item of ``alerts[]``."""


def parse_partial(parser: Any, body: Any, prepare: Any = None) -> Parsed:
    """Parse ``body`` (after ``prepare``, e.g. a field mapping); raise ``PayloadError`` only when
    nothing in it is acceptable."""
    if prepare is not None:
        body = prepare(body)
    try:
        return Parsed(parser(body))
    except PayloadError as exc:
        if not _item_problems_only(exc, body):
            raise
        whole = exc
    items = body["alerts"]
    alerts: list[Alert] = []
    rejected: list[tuple[int, str, str]] = []
    for i, item in enumerate(items):
        try:
            alerts.extend(parser({**body, "alerts": [item]}))
        except PayloadError as exc:
            error = "; ".join(_ITEM.sub(f"alerts[{i}]", p) for p in exc.problems)
            rejected.append((i, error, excerpt(item)))
    if not alerts:
        raise whole
    return Parsed(alerts, rejected)


def _item_problems_only(exc: PayloadError, body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list) or len(body["alerts"]) < 2:
        return False
    return all(_ITEM.match(p) for p in exc.problems)


def excerpt(item: Any, limit: int = EXCERPT) -> str:
    """The item as JSON, cut at ``limit`` characters; never fails (deep nesting included)."""
    try:
        text = json.dumps(item, ensure_ascii=False, default=str)
    except (RecursionError, ValueError):
        text = repr(type(item))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
