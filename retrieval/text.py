"""Text helpers shared by the lexical index, the chunker and the importers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from retrieval.types import Document

_TOKEN = re.compile(r"[a-z0-9][a-z0-9_]*(?:[.\-][a-z0-9_]+)*")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also get got via per use used using seems may might one two
    code https http www com org""".split()
)
CHUNK_CHARS = 900  # ~200 word pieces: inside all-MiniLM-L6-v2's 256-token window
PACK_CHARS = 450  # short paragraphs are packed together up to this; longer ones stand alone
TITLE_PASSAGE_MIN_CHARS = CHUNK_CHARS  # only documents too long for one passage


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stop words; dotted/hyphenated identifiers also yield their parts."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in STOPWORDS or len(tok) > 40:
            continue
        out.append(tok)
        if "." in tok or "-" in tok:
            out.extend(p for p in re.split(r"[.\-]", tok) if p and p not in STOPWORDS and len(p) > 1)
    return out


def sha256(*parts: str | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update((p or "").encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def document_hash(doc: Document) -> str:
    """Content hash: changes exactly when anything we index or show about the document changes."""
    meta = repr(sorted((k, repr(v)) for k, v in doc.meta.items()))
    created = doc.created_at.isoformat() if doc.created_at else ""
    return sha256(doc.title, doc.text, doc.service, doc.root_cause, doc.resolution, created, doc.url, meta)


def _paragraphs(text: str) -> list[str]:
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    out: list[str] = []
    for p in paras:
        while len(p) > CHUNK_CHARS:  # a single huge paragraph: cut at a sentence or word boundary
            cut = max(p.rfind(". ", 0, CHUNK_CHARS), p.rfind(" ", 0, CHUNK_CHARS))
            cut = cut + 1 if cut > CHUNK_CHARS // 2 else CHUNK_CHARS
            out.append(p[:cut].strip())
            p = p[cut:].strip()
        if p:
            out.append(p)
    return out


def chunk_document(doc: Document, *, max_chars: int = CHUNK_CHARS) -> list[str]:
    """Passages to embed. Short documents are one passage; long ones are split at paragraphs (short
    paragraphs packed together, huge ones cut at sentences), each prefixed with the title so a
    passage still says what it is about. Root cause and resolution
    get their own passage, so a precise RCA line is not drowned by a long description."""
    body = doc.text.strip()
    rca = "\n".join(
        f"{label}: {value.strip()}"
        for label, value in (("Root cause", doc.root_cause), ("Resolution", doc.resolution))
        if value and value.strip()
    )
    title = doc.title.strip()
    whole = "\n".join(p for p in (title, body, rca) if p)
    # a long document also gets its title as a passage of its own: a title that matches is strong
    # evidence that the whole body (several passages, or one truncated one) would dilute
    title_only = [title] if title and len(whole) > TITLE_PASSAGE_MIN_CHARS else []
    if len(whole) <= max_chars:
        return [whole, *title_only]
    chunks: list[str] = []
    current = ""
    for para in _paragraphs(body):
        if current and len(current) + len(para) + 1 > min(PACK_CHARS, max_chars):
            chunks.append(current)
            current = ""
        current = f"{current}\n{para}" if current else para
    if current:
        chunks.append(current)
    if rca:
        chunks.extend(_paragraphs(rca))
    return [*(f"{title}\n{c}" if title else c for c in chunks), *title_only] or [title or " "]


def snippet(text: str | None, limit: int = 80) -> str:
    if not text:
        return ""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1].rsplit(" ", 1)[0] + "…"


def join_nonempty(parts: Iterable[str | None], sep: str = "\n") -> str:
    return sep.join(p for p in parts if p)
