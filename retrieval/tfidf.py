"""TF-IDF cosine between a query and indexed documents: an absolute-scale lexical signal for the fusion.

BM25F (``retrieval.lexical``) is normalised per query by its best match, so the best lexical match of a
paraphrased alert scores 1.0 even when all it shares is a common word. The TF-IDF cosine lives on one
scale for every query (0 = nothing in common, 1 = the same text), so a weak match stays weak. The
conventions are scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` (word 1-2
grams of its default analyzer, ``1 + log(tf)``, smooth idf, L2-normalised rows), the same as the
untuned blend's lexical half in ``benchmarks/quality.py``, kept incrementally:

- grams are hashed into 2**22 buckets (``HashingVectorizer``): a fixed footprint for the document
  frequencies (16 MB) and 8 bytes per distinct gram of a document, at the price of collisions that grow
  with the collection (a few million distinct grams share buckets: rare grams then borrow their
  bucket-mates' frequencies);
- a document's norm depends on the idf of its grams, which moves whenever any document is added or
  removed: norms are cached with the index's version and recomputed, when next scored, after any change,
  so every cosine is exact for the current collection (a quiet knowledge base computes each norm once).
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

N_FEATURES = 2**22


class TfidfCosine:
    def __init__(self) -> None:
        self._hasher = HashingVectorizer(ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False,
                                         norm=None, dtype=np.float32)
        self._df = np.zeros(N_FEATURES, dtype=np.int32)
        self._docs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # key -> (bucket ids, 1 + log tf)
        self._norms: dict[int, tuple[float, int]] = {}  # key -> (norm, index version it was computed at)
        self._version = 0  # bumped by every add and remove: the idf of some grams moved
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._docs)

    def _terms(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        row = self._hasher.transform([text])
        idx = row.indices.astype(np.int32)
        order = np.argsort(idx)
        return idx[order], (1.0 + np.log(row.data[order])).astype(np.float32)

    def _idf(self, idx: np.ndarray) -> np.ndarray:
        n = len(self._docs)
        return np.log((1.0 + n) / (1.0 + self._df[idx])) + 1.0

    def _norm(self, idx: np.ndarray, tf: np.ndarray) -> float:
        return float(np.sqrt(np.sum((tf * self._idf(idx)) ** 2)))

    def add(self, key: int, text: str) -> None:
        idx, tf = self._terms(text)
        with self._lock:
            self.remove(key)
            self._docs[key] = (idx, tf)
            np.add.at(self._df, idx, 1)
            self._version += 1

    def remove(self, key: int) -> None:
        with self._lock:
            old = self._docs.pop(key, None)
            if old is not None:
                np.subtract.at(self._df, old[0], 1)
                self._norms.pop(key, None)
                self._version += 1

    def _doc_norm(self, key: int, idx: np.ndarray, tf: np.ndarray) -> float:
        cached = self._norms.get(key)
        if cached is None or cached[1] != self._version:
            cached = (self._norm(idx, tf), self._version)
            self._norms[key] = cached
        return cached[0]

    def scores_for(self, text: str, keys: list[int]) -> dict[int, float]:
        """Cosine of the query with each of ``keys`` (0 for unknown keys or an empty query)."""
        qidx, qtf = self._terms(text)
        with self._lock:
            known = self._df[qidx] > 0  # like a fitted vectorizer, a gram no document has is not in the vocabulary
            qidx, qtf = qidx[known], qtf[known]
            if not len(qidx) or not self._docs:
                return dict.fromkeys(keys, 0.0)
            qw = qtf * self._idf(qidx)
            qn = float(np.sqrt(np.sum(qw**2)))
            out: dict[int, float] = {}
            for key in keys:
                doc = self._docs.get(key)
                if doc is None or qn <= 0 or not len(doc[0]):  # unknown, or a text with no words
                    out[key] = 0.0
                    continue
                idx, tf = doc
                norm = self._doc_norm(key, idx, tf)
                pos = np.searchsorted(idx, qidx)
                pos[pos >= len(idx)] = 0
                hit = idx[pos] == qidx
                if not hit.any():
                    out[key] = 0.0
                    continue
                dw = tf[pos[hit]] * self._idf(qidx[hit])
                out[key] = min(float(np.dot(qw[hit], dw) / (qn * norm)), 1.0) if norm > 0 else 0.0
            return out
