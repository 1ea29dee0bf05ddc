"""TF-IDF cosine between a query and indexed documents: an absolute-scale lexical signal for the fusion.

BM25F (``retrieval.lexical``) is normalised per query by its best match, so the best lexical match of a
paraphrased alert scores 1.0 even when all it shares is a common word. The TF-IDF cosine lives on one
scale for every query (0 = nothing in common, 1 = the same text), so a weak match stays weak. The
conventions are scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` (word 1-2
grams of its default analyzer, ``1 + log(tf)``, smooth idf, L2-normalised rows), the same as the
untuned blend's lexical half in ``benchmarks/quality.py``, kept incrementally:

- grams are hashed into 2**22 buckets (``HashingVectorizer``): a fixed footprint for the document
  frequencies (16 MB) and 6 bytes per distinct gram of a document in two flat buffers, at the price of
  collisions that grow with the collection (a few million distinct grams share buckets: rare grams then
  borrow their bucket-mates' frequencies);
- added texts are hashed in batches (vectoriser calls of ``FLUSH_BATCH`` texts when the index is next
  read), so a load of 100k documents does not pay the vectoriser's per-call overhead 100k times, nor
  hold one sparse matrix of them all;
- a document's norm depends on the idf of its grams, which moves whenever any document is added or
  removed: norms are cached with the index's version and recomputed, when next scored, after any change,
  so every cosine is exact for the current collection (a quiet knowledge base computes each norm once).
"""

from __future__ import annotations

import threading
from array import array

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

N_FEATURES = 2**22
FLUSH_BATCH = 4096
COMPACT_MIN = (
    1 << 20
)  # rewrite the buffers once this many entries (and over half) belong to removed documents


class TfidfCosine:
    def __init__(self) -> None:
        self._hasher = HashingVectorizer(
            ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False, norm=None, dtype=np.float32
        )
        self._df = np.zeros(N_FEATURES, dtype=np.int32)
        self._idx = array("i")  # every document's sorted bucket ids, back to back
        self._tf = array("H")  # ... and their term counts (1 + log(count) is taken when scoring)
        self._span: dict[int, tuple[int, int]] = {}  # key -> (offset, length) in the buffers
        self._dead = 0  # buffer entries of removed or replaced documents
        self._pending: dict[int, str] = {}  # added, not hashed yet
        self._norms: dict[int, tuple[float, int]] = {}  # key -> (norm, index version it was computed at)
        self._version = 0  # bumped by every change: the idf of some grams moved
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            self._flush()
            return len(self._span)

    def add(self, key: int, text: str) -> None:
        with self._lock:
            self._pending[key] = text
            self._version += 1
            if len(self._pending) >= FLUSH_BATCH:  # a bulk load never holds more than a batch of texts
                self._flush()

    def remove(self, key: int) -> None:
        with self._lock:
            self._pending.pop(key, None)
            self._drop(key)
            self._version += 1

    def _drop(self, key: int) -> None:
        span = self._span.pop(key, None)
        if span is None:
            return
        off, n = span
        np.subtract.at(self._df, np.frombuffer(self._idx, dtype=np.int32)[off : off + n].copy(), 1)
        self._norms.pop(key, None)
        self._dead += n

    def flush(self) -> None:
        """Hash what was added since the last read now (a bulk load calls this before serving, so the
        first query does not pay for it)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        """Hash the pending texts in batches and append them to the buffers."""
        if not self._pending:
            return
        items = list(self._pending.items())
        self._pending.clear()
        for b in range(0, len(items), FLUSH_BATCH):
            batch = items[b : b + FLUSH_BATCH]
            rows = self._hasher.transform([text for _, text in batch])
            for i, (key, _) in enumerate(batch):
                self._drop(key)
                start, end = rows.indptr[i], rows.indptr[i + 1]
                idx = rows.indices[start:end].astype(np.int32)
                order = np.argsort(idx)
                idx = idx[order]
                counts = np.minimum(rows.data[start:end][order], 65535).astype(np.uint16)
                self._span[key] = (len(self._idx), len(idx))
                self._idx.frombytes(idx.tobytes())
                self._tf.frombytes(counts.tobytes())
                np.add.at(self._df, idx, 1)
        if self._dead > max(len(self._idx) // 2, COMPACT_MIN):
            self._compact()

    def _compact(self) -> None:
        idx_all = np.frombuffer(self._idx, dtype=np.int32)
        tf_all = np.frombuffer(self._tf, dtype=np.uint16)
        new_idx, new_tf, spans, pos = array("i"), array("H"), {}, 0
        for key, (off, n) in self._span.items():
            new_idx.frombytes(idx_all[off : off + n].tobytes())
            new_tf.frombytes(tf_all[off : off + n].tobytes())
            spans[key] = (pos, n)
            pos += n
        del idx_all, tf_all  # release the views before the old buffers go
        self._idx, self._tf, self._span, self._dead = new_idx, new_tf, spans, 0

    def _idf(self, idx: np.ndarray) -> np.ndarray:
        n = len(self._span)
        idf: np.ndarray = np.log((1.0 + n) / (1.0 + self._df[idx])) + 1.0
        return idf

    def scores_for(self, text: str, keys: list[int]) -> dict[int, float]:
        """Cosine of the query with each of ``keys`` (0 for unknown keys, an empty query or a text
        without words)."""
        q = self._hasher.transform([text])
        qidx = q.indices.astype(np.int32)
        qtf = 1.0 + np.log(q.data.astype(np.float64))
        with self._lock:
            self._flush()
            known = (
                self._df[qidx] > 0
            )  # like a fitted vectorizer, a gram no document has is not in the vocabulary
            qidx, qtf = qidx[known], qtf[known]
            if not len(qidx) or not self._span:
                return dict.fromkeys(keys, 0.0)
            qw = qtf * self._idf(qidx)
            qn = float(np.sqrt(np.sum(qw**2)))
            idx_all = np.frombuffer(self._idx, dtype=np.int32)
            tf_all = np.frombuffer(self._tf, dtype=np.uint16)
            out: dict[int, float] = {}
            for key in keys:
                span = self._span.get(key)
                if span is None or span[1] == 0 or qn <= 0:
                    out[key] = 0.0
                    continue
                idx = idx_all[span[0] : span[0] + span[1]]
                tf = 1.0 + np.log(tf_all[span[0] : span[0] + span[1]].astype(np.float64))
                cached = self._norms.get(key)
                if cached is None or cached[1] != self._version:
                    cached = (float(np.sqrt(np.sum((tf * self._idf(idx)) ** 2))), self._version)
                    self._norms[key] = cached
                pos = np.searchsorted(idx, qidx)
                pos[pos >= len(idx)] = 0
                hit = idx[pos] == qidx
                if not hit.any() or cached[0] <= 0:
                    out[key] = 0.0
                    continue
                dw = tf[pos[hit]] * self._idf(qidx[hit])
                out[key] = min(float(np.dot(qw[hit], dw) / (qn * cached[0])), 1.0)
            return out
