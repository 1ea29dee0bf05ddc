"""Generic JSON with a configurable field mapping (``GENERIC_FIELD_MAP``).

The map says where each generic field is found in a foreign body, JSONPath-like::

    GENERIC_FIELD_MAP='{"name": "$.rule.title", "service": "$.tags.service",
                        "status": "$.state", "labels": "$.tags", "alerts": "$.items"}'

Paths: ``$`` is the item, ``.key`` or ``['key']`` a member, ``[0]`` / ``[-1]`` a list element.
``alerts`` (optional) points at a list of items in the body, each mapped on its own; without it
the body is one item. Fields not in the map keep their generic meaning (a body in the generic
format still works). Mapped ``status`` values are read leniently: ``resolved``, ``ok``,
``closed``, ``recovered``, ``normal``, ``inactive`` (any case) resolve; anything else fires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handlers.parsers._common import require_object
from handlers.parsers.errors import PayloadError

_TOKEN = re.compile(
    r"\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]"
)
_MISSING = object()
RESOLVED_WORDS = frozenset(
    {"resolved", "ok", "closed", "recovered", "normal", "inactive", "resolve", "close"}
)
FIELDS = frozenset(
    {
        "name",
        "status",
        "kind",
        "severity",
        "service",
        "summary",
        "description",
        "labels",
        "annotations",
        "fingerprint",
        "group_key",
        "starts_at",
        "ends_at",
        "url",
        "alerts",
    }
)


def compile_path(path: str) -> list[str | int]:
    """``$.a['b c'][0]`` -> ``["a", "b c", 0]``; raises ``ValueError`` naming the bad part."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"path {path!r} must start with '$'")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"path {path!r}: cannot read {text[pos : pos + 20]!r}")
        key, index, single, double = match.groups()
        steps.append(int(index) if index is not None else (key or single or double or ""))
        pos = match.end()
    return steps


def resolve(obj: Any, steps: list[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int) and isinstance(obj, list) and -len(obj) <= step < len(obj):
            obj = obj[step]
        elif isinstance(step, str) and isinstance(obj, dict) and step in obj:
            obj = obj[step]
        else:
            return _MISSING
    return obj


class FieldMap:
    def __init__(self, mapping: Mapping[str, str]) -> None:
        unknown = sorted(set(mapping) - FIELDS)
        if unknown:
            raise ValueError(f"GENERIC_FIELD_MAP: unknown field(s) {unknown}; known: {sorted(FIELDS)}")
        try:
            self.paths = {name: compile_path(path) for name, path in mapping.items()}
        except ValueError as exc:
            raise ValueError(f"GENERIC_FIELD_MAP: {exc}") from None
        self.raw = dict(mapping)

    def apply(self, body: Any) -> Any:
        """The foreign body rewritten into the generic format (``parse_generic`` validates it)."""
        obj = require_object(body)
        if "alerts" in self.paths:
            items = resolve(obj, self.paths["alerts"])
            if not isinstance(items, list):
                raise PayloadError(f"alerts: GENERIC_FIELD_MAP alerts={self.raw['alerts']} found no list")
            return {"alerts": [self._item(item) for item in items]}
        return self._item(obj)

    def _item(self, item: Any) -> Any:
        if not isinstance(item, dict):
            return item  # parse_generic names the problem
        out = {k: v for k, v in item.items() if k in FIELDS and k not in self.paths}
        for name, steps in self.paths.items():
            if name == "alerts":
                continue
            value = resolve(item, steps)
            if value is _MISSING or value is None:
                continue
            if name == "status":
                value = "resolved" if str(value).strip().lower() in RESOLVED_WORDS else "firing"
            elif name in ("labels", "annotations") and not isinstance(value, dict):
                value = {name.rstrip("s"): value}
            out[name] = value
        return out  # a missing name is reported by parse_generic as "name: field required"
