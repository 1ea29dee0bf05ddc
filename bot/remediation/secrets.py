"""Masking for what approvers are shown: parameter values under secret-looking keys, and URL credentials."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "••••"
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|auth|credential|private[_-]?key|signature)", re.I
)


def _mask_url(text: str) -> str:
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = urlencode([(k, MASK if _SECRET_KEY.search(k) else v) for k, v in parse_qsl(parts.query, True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask(obj: Any, key: str = "") -> Any:
    """A copy of ``obj`` with secret-looking values replaced by a mask (keys kept, so the shape is visible)."""
    if key and _SECRET_KEY.search(key) and not isinstance(obj, dict | list):
        return MASK
    if isinstance(obj, dict):
        return {k: mask(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v, key) for v in obj]
    if isinstance(obj, str):
        return _mask_url(obj)
    return obj
