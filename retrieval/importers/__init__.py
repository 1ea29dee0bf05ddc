"""Importers: files where teams keep incident history → ``Document``s, bad rows reported by line.

``iter_documents(path, fmt=..., mapping=...)`` yields ``(line, document, error)``; exactly one of
``document`` and ``error`` is set. A file that cannot be read at all raises ``SourceError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.importers.formats import ADAPTERS
from retrieval.importers.records import RecordError, parse_datetime, parse_mapping, to_document
from retrieval.importers.sources import SourceError, iter_csv, iter_json, iter_jsonl, read_text, sniff
from retrieval.types import Document

FORMATS = ("auto", "jsonl", "csv", "json", "jira", "servicenow", "pagerduty")

__all__ = ["FORMATS", "RecordError", "SourceError", "iter_documents", "parse_datetime", "parse_mapping"]


def _records(path: Path, text: str, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "jsonl":
        return iter_jsonl(text)
    if fmt in {"csv", "jira"}:
        return iter_csv(text)
    if fmt in {"json", "pagerduty"}:
        return iter_json(text)
    # servicenow: CSV or JSON export
    return iter_json(text) if text.lstrip()[:1] in {"{", "["} else iter_csv(text)


def iter_documents(
    path: Path,
    *,
    fmt: str = "auto",
    mapping: dict[str, str] | None = None,
    source: str = "import",
) -> Iterator[tuple[int, Document | None, str | None]]:
    if fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    text = read_text(path)
    if fmt == "auto":
        fmt = sniff(path, text)
    adapter = ADAPTERS.get(fmt)
    for line, raw in _records(path, text, fmt):
        if "__error__" in raw:
            yield line, None, str(raw["__error__"])
            continue
        try:
            if adapter is not None and not mapping:
                rec = adapter(raw)
                extra = rec.pop("__meta__", {})
                doc = to_document(rec, source=source)
                doc.meta.update({k: v for k, v in extra.items() if v})
            else:
                doc = to_document(raw, mapping, source=source)
        except (RecordError, ValueError, TypeError, AttributeError) as exc:
            yield line, None, str(exc)
            continue
        yield line, doc, None
