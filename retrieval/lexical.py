"""Field-weighted BM25 (BM25F-style, with idf-weighted query terms) over an incrementally growing inverted index.

Postings are compact ``array`` buffers (4 bytes per doc id, 4 per weighted term frequency), read
as NumPy views at query time, so a query costs one vectorised pass per query term. Documents are
added one at a time; an updated document gets a new row and its old row is masked out.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

from retrieval.text import tokenize


@dataclass(frozen=True)
class FieldWeights:
    title: float = 3.0
    text: float = 1.0
    root_cause: float = 1.5
    resolution: float = 1.0
    extra: float = 1.0  # service, alert name, model


class LexicalIndex:
    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.9,
        fields: FieldWeights | None = None,
        query_idf_power: float = 2.0,
    ) -> None:
        self.k1, self.b = k1, b
        self.query_idf_power = query_idf_power
        self.fields = fields or FieldWeights()
        self._postings: dict[str, tuple[array[int], array[float]]] = {}
        self._doclen = np.zeros(1024, dtype=np.float32)
        self._alive = np.zeros(1024, dtype=bool)
        self._row_key: list[int] = []
        self._key_row: dict[int, int] = {}
        self._total_len = 0.0

    def __len__(self) -> int:
        return len(self._key_row)

    @property
    def n_rows(self) -> int:
        return len(self._row_key)

    def row_key(self, row: int) -> int:
        return self._row_key[row]

    def row_of(self, key: int) -> int | None:
        return self._key_row.get(key)

    def _grow(self) -> None:
        if len(self._row_key) >= len(self._doclen):
            n = len(self._doclen) * 2
            self._doclen = np.resize(self._doclen, n)
            alive = np.zeros(n, dtype=bool)
            alive[: len(self._alive)] = self._alive
            self._alive = alive

    def add(self, key: int, fields: dict[str, str | None]) -> None:
        """Index (or re-index) the document ``key``; ``fields`` maps field name to text."""
        self.remove(key)
        tf: dict[str, float] = {}
        for name, text in fields.items():
            if text:
                w = getattr(self.fields, name, self.fields.extra)
                for tok in tokenize(text):
                    tf[tok] = tf.get(tok, 0.0) + w
        self._grow()
        row = len(self._row_key)
        self._row_key.append(key)
        self._key_row[key] = row
        length = float(sum(tf.values())) or 1.0
        self._doclen[row] = length
        self._alive[row] = True
        self._total_len += length
        for term, f in tf.items():
            post = self._postings.get(term)
            if post is None:
                post = self._postings[term] = (array("i"), array("f"))
            post[0].append(row)
            post[1].append(f)

    def remove(self, key: int) -> None:
        row = self._key_row.pop(key, None)
        if row is not None:
            self._alive[row] = False
            self._total_len -= float(self._doclen[row])

    def idf(self, term: str) -> float:
        post = self._postings.get(term)
        df = len(post[0]) if post else 0
        n = max(len(self._key_row), 1)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every row (dead rows score 0)."""
        n_rows = len(self._row_key)
        out = np.zeros(n_rows, dtype=np.float32)
        if not n_rows or not self._key_row:
            return out
        avgdl = self._total_len / len(self._key_row)
        norm = self.k1 * (1.0 - self.b + self.b * self._doclen[:n_rows] / max(avgdl, 1e-6))
        for term, qtf in Counter(tokens).items():
            post = self._postings.get(term)
            if post is None:
                continue
            rows = np.frombuffer(post[0], dtype=np.int32)
            tf = np.frombuffer(post[1], dtype=np.float32)
            # repeated query terms count sub-linearly; idf**2 weighting (as in a TF-IDF cosine, where both
            # sides carry idf) lets rare identifiers in a long query outweigh its common words
            qw = (1.0 + math.log(qtf)) * self.idf(term) ** self.query_idf_power
            out[rows] += qw * tf * (self.k1 + 1.0) / (tf + norm[rows])
        out[:n_rows][~self._alive[:n_rows]] = 0.0
        return out

    def ceiling(self, tokens: list[str]) -> float:
        """An upper bound of any document's score for this query (every term saturated), so that
        ``best / ceiling`` says how much of the query the best lexical match actually covers."""
        return float(
            sum(
                (1.0 + math.log(qtf)) * self.idf(t) ** self.query_idf_power * (self.k1 + 1.0)
                for t, qtf in Counter(tokens).items()
            )
        )

    def top(
        self, tokens: list[str], n: int, full: np.ndarray | None = None
    ) -> tuple[dict[int, float], float]:
        """The ``n`` best documents as {key: score}, and the best score (for normalisation)."""
        s = self.scores(tokens) if full is None else full
        if not len(s):
            return {}, 0.0
        k = min(n, len(s))
        idx = np.argpartition(-s, k - 1)[:k]
        best = {self._row_key[i]: float(s[i]) for i in idx if s[i] > 0}
        return best, float(s.max())

    def scores_for(
        self, tokens: list[str], keys: list[int], full: np.ndarray | None = None
    ) -> dict[int, float]:
        s = self.scores(tokens) if full is None else full
        out: dict[int, float] = {}
        for key in keys:
            row = self._key_row.get(key)
            out[key] = float(s[row]) if row is not None and row < len(s) else 0.0
        return out

    def shared_terms(self, query_tokens: list[str], doc_text: str, limit: int = 6) -> list[str]:
        """Query terms that also occur in the document, most distinctive (highest idf) first; adjacent
        shared terms that are also adjacent in the document are shown as one phrase."""
        doc_tokens = tokenize(doc_text)
        doc_terms = set(doc_tokens)
        doc_pairs = set(zip(doc_tokens, doc_tokens[1:], strict=False))
        items: list[tuple[float, str]] = []
        used: set[str] = set()
        for a, b in zip(query_tokens, query_tokens[1:], strict=False):
            if _overlap(a, b):  # a compound next to its own part ("non-replication", "non")
                continue
            if (a, b) in doc_pairs and a != b and f"{a} {b}" not in {t for _, t in items}:
                items.append((self.idf(a) + self.idf(b), f"{a} {b}"))
                used.update((a, b))
        for t in dict.fromkeys(query_tokens):
            if t in doc_terms and t not in used:
                items.append((self.idf(t), t))
        items.sort(key=lambda it: (-it[0], it[1]))
        out: list[str] = []
        covered: set[str] = set()
        for (
            _,
            term,
        ) in items:  # a term whose words an earlier (more distinctive) term already shows adds nothing
            words = _parts(term)
            if words <= covered:
                continue
            out.append(term)
            covered |= words
            if len(out) == limit:
                break
        return out


def _parts(term: str) -> set[str]:
    return {w for w in re.split(r"[\s\-_./:]+", term) if w}


def _overlap(a: str, b: str) -> bool:
    return bool(_parts(a) & _parts(b))
