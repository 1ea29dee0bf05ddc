"""Content templates of one-line alert texts (minimal version of the interface; see branch `templates`).

A template is a token tuple in which variable positions are ``"<*>"``.
"""

from __future__ import annotations

import re

Template = tuple[str, ...]
WILDCARD = "<*>"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def mask(text: str) -> Template:
    """Stateless first pass: numbers become ``<*>``; a token mixing a number with letters is all ``<*>``."""
    out = []
    for token in text.split():
        masked = _NUMBER.sub(WILDCARD, token)
        if masked != token and any(c.isalpha() for c in masked.replace(WILDCARD, "")):
            masked = WILDCARD
        out.append(masked)
    return tuple(out)


def merge(a: Template, b: Template) -> Template | None:
    """The merged template if ``a`` and ``b`` are the same event, else None (same length, ≥ 3/4 of constants equal)."""
    if len(a) != len(b) or not a:
        return None
    merged, same, constants = [], 0, 0  # constants: positions where at least one side is constant
    for x, y in zip(a, b, strict=True):
        if x == y:
            merged.append(x)
            if x != WILDCARD:
                same += 1
                constants += 1
        else:
            merged.append(WILDCARD)
            if WILDCARD not in (x, y):
                constants += 1
    if same == 0 or same * 4 < constants * 3:  # at least 3/4 of the constant positions agree
        return None
    return tuple(merged)


def render(t: Template) -> str:
    return " ".join(t)
