"""Small pieces of the HTTP edge: bounded body reads, content types, source signatures, and a
budget for dead letters written on behalf of unauthenticated clients."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable

from starlette.requests import Request

_UNSTORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


async def read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, read at most ``limit + 1`` bytes far: ``(body, too_large)``.

    A declared ``Content-Length`` over the limit is not read at all beyond the first chunk, and a
    chunked body is cut as soon as it passes the limit, so nobody can make us buffer gigabytes."""
    length = request.headers.get("content-length", "")
    declared_too_large = length.isdigit() and int(length) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or declared_too_large:
            return b"".join(chunks)[: limit + 1], True
    return b"".join(chunks), False


def is_json_content_type(value: str | None) -> bool:
    """Missing (curl, some senders), ``application/json``, ``*/*+json`` or ``text/plain`` (senders
    that cannot set a header) are accepted; anything else is a 415."""
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media in {"application/json", "text/json", "text/plain"} or media.endswith("+json")


def printable(text: str, limit: int = 64) -> str:
    """A path segment made safe to store and show: control characters and lone surrogates become
    U+FFFD, and it is cut at ``limit`` characters (``dead_letters.source`` is 64 characters)."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def pagerduty_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """PagerDuty v3: ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>``; several
    signatures may be listed, comma-separated (during a secret rotation). Any valid one is enough."""
    if not header:
        return False
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), part.strip().encode()) for part in header.split(","))


class DeadLetterBudget:
    """At most ``per_minute`` dead letters per minute for requests anyone could send (unsigned
    Slack requests); beyond that they are only counted, and the count is reported once the next
    minute opens (``take`` returns it), so a flood costs a few rows, not thousands."""

    def __init__(self, per_minute: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = clock() // 60
        self._used = 0
        self._suppressed = 0
        self.suppressed_total = 0

    def take(self) -> tuple[bool, int]:
        """``(may_store, suppressed_in_previous_window)``."""
        with self._lock:
            window = self._clock() // 60
            previous = 0
            if window != self._window:
                self._window, self._used, previous, self._suppressed = window, 0, self._suppressed, 0
            if self._used < self.per_minute:
                self._used += 1
                return True, previous
            self._suppressed += 1
            self.suppressed_total += 1
            return False, previous
