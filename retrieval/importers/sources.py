"""Readers: a file → (line number, raw record) pairs. CSV line numbers are the physical line a record
starts on (descriptions span lines); JSON records get the line their object starts on."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.errors import RetrievalError

csv.field_size_limit(50_000_000)
RECORD_KEYS = ("incidents", "records", "result", "items", "data", "issues")


class SourceError(RetrievalError):
    """The file as a whole cannot be read (missing, empty, not CSV/JSON)."""


def read_text(path: Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise SourceError(f"{path} is empty")
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def iter_csv(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as dicts. Repeated headers (Jira exports repeat ``Comment``, ``Labels``...) become lists."""
    lines = text.splitlines(keepends=True)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError("no header row") from None
    header = [h.strip() for h in header]
    if len(header) < 2 and not any(h for h in header):
        raise SourceError("no header row")
    repeated = {h for h in header if header.count(h) > 1}
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, {"__error__": f"malformed CSV: {exc}"}
            return
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            yield start, {"__error__": f"{len(row)} columns but the header has {len(header)}"}
            continue
        rec: dict[str, Any] = {}
        for name, value in zip(header, row, strict=False):
            if name in repeated:
                if value.strip():
                    rec.setdefault(name, []).append(value)
            else:
                rec[name] = value
        yield start, rec


def iter_jsonl(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, {"__error__": f"invalid JSON: {exc.msg}"}
            continue
        yield n, obj if isinstance(obj, dict) else {"__error__": "expected a JSON object"}


def _array_offsets(text: str, key: str | None) -> list[int]:
    """Character offsets where each element of the records array starts (best effort)."""
    if key is None:
        start = text.index("[")
    else:
        m = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
        if m is None:
            return []
        start = m.end() - 1
    dec = json.JSONDecoder()
    pos, out = start + 1, list[int]()
    ws = re.compile(r"[\s,]*")
    while True:
        gap = ws.match(text, pos)  # always matches (possibly empty)
        pos = gap.end() if gap else pos
        if pos >= len(text) or text[pos] == "]":
            return out
        out.append(pos)
        try:
            _, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            return out


def iter_json(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    key = None
    if isinstance(data, dict):
        key = next((k for k in RECORD_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            if "incident" in data and isinstance(data["incident"], dict):  # one PagerDuty incident
                yield 1, data["incident"]
                return
            yield 1, data
            return
        items = data[key]
    elif isinstance(data, list):
        items = data
    else:
        raise SourceError("expected a JSON array or an object with a list of records")
    offsets = _array_offsets(text, key)
    lines = [text.count("\n", 0, o) + 1 for o in offsets] if len(offsets) == len(items) else None
    for i, item in enumerate(items):
        line = lines[i] if lines else i + 1
        yield line, item if isinstance(item, dict) else {"__error__": "expected a JSON object"}


def sniff(path: Path, text: str) -> str:
    """Guess the format from the extension and the first record's field names."""
    suffix = Path(path).suffix.lower()
    head = text[:4000]
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv" or (suffix not in {".json"} and not head.lstrip().startswith(("{", "["))):
        first = head.splitlines()[0] if head else ""
        if "short_description" in first and "number" in first:
            return "servicenow"
        if "Summary" in first and ("Issue key" in first or "Issue id" in first):
            return "jira"
        return "csv"
    stripped = head.lstrip()
    if (
        stripped.startswith("{")
        and "\n" in stripped.strip()
        and stripped.split("\n", 1)[0].rstrip().endswith("}")
    ):
        return "jsonl"
    if '"incident_number"' in text[:200000] or '"incidents"' in head:
        return "pagerduty"
    if '"short_description"' in text[:200000]:
        return "servicenow"
    return "json"
