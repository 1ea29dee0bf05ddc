"""Safe building blocks for Slack ``mrkdwn`` text.

Anything that did not come from our own code (alert titles, labels, ticket text, runbook text, user
notes) must pass through :func:`escape` (or :func:`code`, :func:`link`, :func:`quote_block`) before it is
put into a ``mrkdwn`` text object. Slack parses ``<...>`` as mentions (``<!channel>``, ``<@U123>``) and
links (``<https://x|label>``); escaping ``&``, ``<`` and ``>`` turns them into literal text.

``plain_text`` objects (headers, button labels) use :func:`plain`: the same escaping (Slack decodes
the three entities for display in every text object) on a single line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

ELLIPSIS = "…"
ZWJ = "\u200d"
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SAFE_SCHEMES = frozenset({"http", "https"})


def _units(text: str) -> list[str]:
    """The escaped text as indivisible units (one per source character), so truncation never splits one."""
    text = _CONTROL.sub("", text)
    broadcast_at = {m.start() for m in _BROADCAST.finditer(text)}
    units: list[str] = []
    for i, ch in enumerate(text):
        unit = _ENTITIES.get(ch, ch)
        units.append(unit + ZWJ if i in broadcast_at else unit)
    return units


def _truncate_units(units: list[str], max_len: int | None) -> str:
    total = sum(len(u) for u in units)
    if max_len is None or total <= max_len:
        return "".join(units)
    if max_len < 1:
        return ""
    out: list[str] = []
    size = 0
    for unit in units:
        if size + len(unit) > max_len - 1:
            break
        out.append(unit)
        size += len(unit)
    return "".join(out).rstrip() + ELLIPSIS


def escape(text: str | None, *, max_len: int | None = None) -> str:
    """Escape ``&``, ``<``, ``>``, defuse ``@channel``/``@here``/``@everyone``, drop control characters.

    ``max_len`` counts characters of the *escaped* result (that is what Slack limits); when cut, the
    result ends with "…" and never ends inside an entity such as ``&amp;``.
    """
    if not text:
        return ""
    return _truncate_units(_units(str(text)), max_len)


def truncate(text: str, max_len: int) -> str:
    """Cut already-safe text to ``max_len`` characters (with "…"), not splitting ``&amp;``-style entities."""
    if len(text) <= max_len:
        return text
    cut = text[: max(max_len - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 6:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def plain(text: str | None, *, max_len: int | None = None) -> str:
    """Text for ``plain_text`` objects (headers, buttons): one line, escaped like mrkdwn, truncated.

    Slack treats ``&``, ``<``, ``>`` as control characters in every text object and decodes the three
    entities for display, so plain text is escaped too.
    """
    return escape(" ".join(str(text or "").split()), max_len=max_len)


def code(text: str | None, *, max_len: int | None = None) -> str:
    """Inline code: escaped, backticks and newlines removed. Empty input gives an empty string."""
    inner = " ".join(str(text or "").replace("`", "'").split())
    if not inner:
        return ""
    body = escape(inner, max_len=None if max_len is None else max(max_len - 2, 1))
    return f"`{body}`"


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL that can sit inside ``<url|label>``, else None."""
    if not url or len(url) > 2000:
        return None
    if any(c in url for c in '|<> \t\r\n"') or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.hostname:
        return None
    return url


def link(url: str | None, label: str | None, *, max_len: int | None = None) -> str:
    """``<url|label>`` for http(s) URLs; anything else (``javascript:``, ``|``, ``>``...) is the escaped label only.

    ``max_len`` bounds the label (escaped). An empty label falls back to the URL's host.
    """
    ok = safe_url(url)
    if ok is None:
        return escape(label or url, max_len=max_len)
    text = escape(label, max_len=max_len) or escape(urlsplit(ok).hostname, max_len=max_len)
    return f"<{ok.replace('&', '&amp;')}|{text}>"


def quote_block(text: str | None, max_len: int = 500, *, max_lines: int = 8) -> str:
    """A ``> `` quoted, escaped, multi-line snippet whose total length (prefixes included) is ≤ ``max_len``."""
    lines = [ln.rstrip() for ln in str(text or "").strip().splitlines()]
    lines = [ln for i, ln in enumerate(lines) if ln or (i and lines[i - 1])]  # squeeze blank runs
    if not lines:
        return ""
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1] + " " + ELLIPSIS]
    out: list[str] = []
    used = 0
    for ln in lines:
        budget = max_len - used - 2 - (1 if out else 0)
        if budget < 2:
            break
        piece = escape(ln, max_len=budget) if ln else ""
        out.append("> " + piece)
        used += len(out[-1]) + (1 if len(out) > 1 else 0)
        if piece.endswith(ELLIPSIS) and len(piece) >= budget:
            break
    return "\n".join(out)


def is_user_id(value: str | None) -> bool:
    return bool(value) and _USER_ID.fullmatch(str(value)) is not None


def mention(user_id: str | None, *, unknown: str = "someone") -> str:
    """``<@U123>`` for a valid Slack user id, the escaped text otherwise."""
    if not user_id:
        return escape(unknown)
    return f"<@{user_id}>" if is_user_id(user_id) else escape(user_id, max_len=80)


_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")


def mentions(ids: Sequence[str]) -> str:
    """``<@U…>`` for users and ``<!subteam^S…>`` for user groups, space-separated; anything else (not an id
    Slack would resolve) is left out, so no text can turn into a mention."""
    out = []
    for i in ids:
        if is_user_id(i):
            out.append(f"<@{i}>")
        elif _GROUP_ID.fullmatch(str(i)):
            out.append(f"<!subteam^{i}>")
    return " ".join(out)
