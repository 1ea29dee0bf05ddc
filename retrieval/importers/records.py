"""From a raw record (a dict of strings) to a ``Document``: field mapping, dates, validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from retrieval.errors import RetrievalError
from retrieval.types import Document

FIELDS = ("id", "title", "text", "service", "root_cause", "resolution", "created_at", "url")
META_FIELDS = ("alert_name", "model", "labels", "source")
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %H:%M",
    "%d/%b/%y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
)
_MAP_ITEM = re.compile(r"\s*([A-Za-z_]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^,]*)\s*(?:,|$)")


class RecordError(RetrievalError):
    """A row that cannot become a document; the message says why (shown with its line number)."""


def parse_mapping(spec: str | None) -> dict[str, str]:
    """``text=Description,title=Summary,id="Issue id"`` → {"text": "Description", ...}."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    pos = 0
    spec = spec.strip()
    while pos < len(spec):
        m = _MAP_ITEM.match(spec, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse --map near {spec[pos:]!r}; expected field=Column[,field=Column]")
        target, source = m.group(1), m.group(2).strip()
        if source[:1] in {'"', "'"}:
            source = source[1:-1]
        if target not in FIELDS + META_FIELDS:
            raise ValueError(f"unknown field {target!r} in --map (known: {', '.join(FIELDS + META_FIELDS)})")
        if not source:
            raise ValueError(f"--map {target}= needs a column name")
        out[target] = source
        pos = m.end()
    return out


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601, Jira/ServiceNow export formats or epoch seconds; naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value) / (1000 if value > 1e11 else 1), UTC)
    s = str(value).strip()
    dt: datetime | None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        dt = None
        for fmt in _DATE_FORMATS:
            try:
                dt = datetime.strptime(s, fmt)  # noqa: DTZ007 - made aware just below
                break
            except ValueError:
                continue
        if dt is None:
            if re.fullmatch(r"\d{9,13}(\.\d+)?", s):
                return parse_datetime(float(s))
            raise RecordError(f"unreadable date {s!r}") from None
    assert dt is not None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):  # ServiceNow display_value / PagerDuty reference objects
        value = value.get("display_value") or value.get("summary") or value.get("name") or value.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v not in (None, ""))
    s = str(value).strip()
    return s or None


def to_document(
    record: dict[str, Any], mapping: dict[str, str] | None = None, *, source: str = "import"
) -> Document:
    """Build a document from a record whose keys are our field names (after ``mapping``)."""
    mapping = mapping or {}
    get = {f: record.get(mapping.get(f, f)) for f in FIELDS + META_FIELDS}
    if mapping:
        missing = [src for src in mapping.values() if src not in record]
        if missing and len(missing) == len(mapping):
            raise RecordError(f"none of the mapped columns present: {', '.join(missing)}")
    ext_id = _clean(get["id"])
    if not ext_id:
        raise RecordError("missing 'id'")
    if len(ext_id) > 200:
        raise RecordError("'id' longer than 200 characters")
    title, text = _clean(get["title"]), _clean(get["text"])
    if not title and not text:
        raise RecordError("needs a 'title' or a 'text'")
    if not title:
        title = (text or "").splitlines()[0][:200]
    meta: dict[str, Any] = {"source": _clean(get["source"]) or source}
    for key in ("alert_name", "model"):
        if _clean(get[key]):
            meta[key] = _clean(get[key])
    labels = get["labels"]
    if isinstance(labels, dict) and labels:
        meta["labels"] = {str(k): str(v) for k, v in labels.items()}
    elif labels not in (None, "", {}):
        raise RecordError("'labels' must be an object of name: value")
    return Document(
        id=ext_id,
        title=title,
        text=text or "",
        service=_clean(get["service"]),
        root_cause=_clean(get["root_cause"]),
        resolution=_clean(get["resolution"]),
        created_at=parse_datetime(get["created_at"]),
        url=_clean(get["url"]),
        meta=meta,
    )
