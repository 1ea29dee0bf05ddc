"""Content templates of one-line alert and log texts: "disk 91% on db-7" and "disk 93% on db-3" are one event.

A template is a token tuple in which variable positions are ``"<*>"``. Two functions, both pure and
deterministic, so every replica decides the same way from the template stored on an incident:

- :func:`mask` (stateless): whitespace tokens; a token holding a path or URL with digits becomes ``<*>``;
  any other token is split at delimiters (``/ = : , [ ] ( ) @``) and each piece holding a digit, or looking
  like a hex id, becomes ``<*>``, keeping a unit sign (``91%`` → ``<*>%``; ``user=alice`` stays,
  ``pid=4242`` becomes ``pid=<*>``).
- :func:`merge`: two templates of the same length are one event when at least ``threshold`` (0.8) of the
  positions where either side is constant agree; differing positions become ``<*>``.

Measured on loghub-2k (16 systems, 32,000 log lines with ground-truth events; ``benchmarks/loghub_grouping.py``,
figures in benchmarks/README.md): the masking rules were designed on one half of the systems; the threshold
is chosen by 2-fold cross-validation over the two halves.
"""

from __future__ import annotations

import re

Template = tuple[str, ...]
WILDCARD = "<*>"
THRESHOLD = 0.8

_DELIMITERS = re.compile(r"([/=:,\[\]()@]+)")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]{6,}$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_RUNS = re.compile(r"(?:<\*>)+")


def _piece(piece: str) -> str:
    if not piece:
        return piece
    if _HEX.match(piece):
        return WILDCARD
    masked = _NUMBER.sub(WILDCARD, piece)
    if masked != piece and any(c.isalpha() for c in masked.replace(WILDCARD, "")):
        return WILDCARD  # digits mixed with letters (an id, a host): all of it varies
    return masked  # a number, keeping a unit sign such as "%"


def _token(token: str) -> str:
    if "/" in token and any(c.isdigit() for c in token):
        return WILDCARD  # a path or URL with ids in it: its shape varies too much to keep
    parts = _DELIMITERS.split(token)
    masked = "".join(p if i % 2 else _piece(p) for i, p in enumerate(parts))
    return _RUNS.sub(WILDCARD, masked)


def mask(text: str) -> Template:
    """Stateless first pass: variable-looking tokens (or pieces of them) become ``<*>``."""
    return tuple(_token(t) for t in text.split())


def merge(a: Template, b: Template, *, threshold: float = THRESHOLD) -> Template | None:
    """The merged template if ``a`` and ``b`` are the same event, else None: same length, and at least
    ``threshold`` of the positions where either side is constant hold the same constant on both."""
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
    if same == 0 or same < threshold * constants:
        return None
    return tuple(merged)


def render(t: Template) -> str:
    return " ".join(t)
