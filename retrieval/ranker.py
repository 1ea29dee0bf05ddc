"""Hybrid ranking: dense (best chunk per document) + field-weighted BM25 + a TF-IDF cosine + metadata +
recency, fused by ``retrieval.fusion.Weights``. Results are per document, each with reasons and features."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from retrieval.fusion import Weights, add_query_relative, explain, metadata_features
from retrieval.lexical import LexicalIndex
from retrieval.text import join_nonempty, tokenize
from retrieval.tfidf import TfidfCosine
from retrieval.types import Document, Match, Query
from retrieval.vector_index import DenseIndex, NumpyVectorIndex

DocLoader = Callable[[list[int]], dict[int, Document]]
_BLAS: Any = None


def _one_blas_thread() -> Any:
    """Matrix-vector products are memory-bound; a second OpenBLAS thread gains little and its
    busy-waiting doubles the latency of the next query embedding (torch wants both cores)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


@dataclass(slots=True)
class DocMeta:
    """What ranking needs to know about a document without loading its text."""

    key: int
    external_id: str
    service: str | None
    created_at: datetime | None
    has_rca: bool
    meta: dict[str, Any] = field(default_factory=dict)


def lexical_fields(doc: Document) -> dict[str, str | None]:
    extra = join_nonempty(
        [doc.service, str(doc.meta.get("alert_name") or ""), str(doc.meta.get("model") or "")], " "
    )
    return {
        "title": doc.title,
        "text": doc.text,
        "root_cause": doc.root_cause,
        "resolution": doc.resolution,
        "extra": extra,
    }


def doc_meta(key: int, doc: Document) -> DocMeta:
    small = {k: doc.meta[k] for k in ("alert_name", "model", "labels") if doc.meta.get(k)}
    return DocMeta(key, doc.id, doc.service, doc.created_at, bool(doc.root_cause or doc.resolution), small)


class HybridRanker:
    """Thread-safe: index mutation and in-process scoring happen under one lock; pgvector queries
    run outside it."""

    def __init__(self, dense: DenseIndex, *, weights: Weights | None = None) -> None:
        self.dense = dense
        self.lexical = LexicalIndex()
        self.titles = LexicalIndex()  # the query against document titles alone
        self.tfidf = TfidfCosine()
        self.weights = weights or Weights()
        self._docs: dict[int, DocMeta] = {}
        self._by_external: dict[str, int] = {}
        self._lock = threading.RLock()
        self._dense_local = isinstance(dense, NumpyVectorIndex)

    def __len__(self) -> int:
        return len(self._docs)

    def key_of(self, external_id: str) -> int | None:
        return self._by_external.get(external_id)

    def add(self, key: int, doc: Document, vectors: np.ndarray | None) -> None:
        with self._lock:
            self.lexical.add(key, lexical_fields(doc))
            self.titles.add(key, {"title": doc.title})
            self.tfidf.add(key, join_nonempty([doc.title, doc.text, doc.root_cause, doc.resolution]))
            if vectors is not None:
                self.dense.add(key, vectors)
            old = self._docs.get(key)
            if old is not None and old.external_id != doc.id:
                self._by_external.pop(old.external_id, None)
            self._docs[key] = doc_meta(key, doc)
            self._by_external[doc.id] = key

    def flush(self) -> None:
        """Finish the indexing work ``add`` defers (the TF-IDF hashing, done in batches): a bulk load
        calls this before it serves, so the first query does not pay for it."""
        self.tfidf.flush()

    def remove(self, key: int) -> None:
        with self._lock:
            self.lexical.remove(key)
            self.titles.remove(key)
            self.tfidf.remove(key)
            self.dense.remove(key)
            meta = self._docs.pop(key, None)
            if meta is not None:
                self._by_external.pop(meta.external_id, None)

    def features(self, query: Query, qvec: np.ndarray, *, exclude: set[int]) -> dict[int, dict[str, float]]:
        """Candidates (union of the dense and lexical top lists) with their feature vectors."""
        w = self.weights
        n = w.candidates + len(exclude)
        tokens = tokenize(query.text)
        local = self._lock if self._dense_local else contextlib.nullcontext()
        blas = _one_blas_thread() if self._dense_local else contextlib.nullcontext()
        with self._lock:
            full = self.lexical.scores(tokens)
            full_titles = self.titles.scores(tokens)
            title_max = float(full_titles.max()) if len(full_titles) else 0.0
            lex_top, lex_max = self.lexical.top(tokens, n, full) if len(full) else ({}, 0.0)
        with local, blas:
            dense_top, exact = self.dense.search(qvec, n, list(lex_top))
            dense_top.update({k: v for k, v in exact.items() if k not in dense_top})
        with self._lock:
            keys = [k for k in dict.fromkeys([*dense_top, *lex_top]) if k not in exclude and k in self._docs]
            lex = self.lexical.scores_for(tokens, [k for k in keys if k not in lex_top], full=full)
            lex.update(lex_top)
            titles = self.titles.scores_for(tokens, keys, full=full_titles)
            cosines = self.tfidf.scores_for(query.text, keys)
            out: dict[int, dict[str, float]] = {}
            for key in keys:
                m = self._docs[key]
                feats = {
                    "dense": max(dense_top.get(key, 0.0), 0.0),
                    "lexical": lex.get(key, 0.0) / lex_max if lex_max > 0 else 0.0,
                    "title": titles.get(key, 0.0) / title_max if title_max > 0 else 0.0,
                    "tfidf": cosines.get(key, 0.0),
                }
                feats.update(
                    metadata_features(
                        query, m.service, m.meta, m.created_at, m.has_rca, w.recency_half_life_days
                    )
                )
                out[key] = feats
            ceiling = self.lexical.ceiling(tokens)
            add_query_relative(out, len(set(tokens)), w, min(lex_max / ceiling, 1.0) if ceiling > 0 else 0.0)
        return out

    def search(self, query: Query, qvec: np.ndarray, *, top_k: int, load: DocLoader) -> list[Match]:
        exclude = {k for k in (self._by_external.get(e) for e in query.exclude_ids) if k is not None}
        cands = self.features(query, qvec, exclude=exclude)
        w = self.weights
        ranked = sorted(cands, key=lambda k: (-w.score(cands[k]), k))[:top_k]
        docs = load(ranked)
        tokens = tokenize(query.text)
        matches: list[Match] = []
        for key in ranked:
            doc = docs.get(key)
            if doc is None:  # deleted between ranking and loading
                continue
            feats = cands[key]
            shared = self.lexical.shared_terms(
                tokens, join_nonempty([doc.title, doc.text, doc.root_cause, doc.resolution, doc.service])
            )
            matches.append(
                Match(doc.id, doc.title, w.score(feats), explain(query, doc, feats, shared, w), doc, feats)
            )
        return matches
