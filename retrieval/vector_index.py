"""Dense indexes behind one interface: documents are scored by their best chunk (max pooling).

``NumpyVectorIndex`` keeps every chunk embedding in one growable float32 matrix (exact search,
incremental adds). ``retrieval.pgvector_index.PgVectorIndex`` is the PostgreSQL/HNSW twin.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class DenseIndex(Protocol):
    name: str

    def add(self, key: int, vectors: np.ndarray) -> None:
        """Make the chunk vectors of document ``key`` searchable (replacing earlier ones)."""
        ...

    def remove(self, key: int) -> None: ...

    def top(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        """Up to ``n`` documents as {key: best chunk cosine}."""
        ...

    def scores_for(self, qvec: np.ndarray, keys: list[int]) -> dict[int, float]:
        """Best chunk cosine for each of ``keys`` (0.0 for unknown keys)."""
        ...


class NumpyVectorIndex:
    name = "numpy"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._mat = np.zeros((1024, dim), dtype=np.float32)
        self._chunk_key = np.full(1024, -1, dtype=np.int64)
        self._n = 0
        self._rows: dict[int, list[int]] = {}
        self._single = True  # every live document has exactly one chunk (fast path)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def n_chunks(self) -> int:
        return self._n

    def add(self, key: int, vectors: np.ndarray) -> None:
        self.remove(key)
        vecs = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        need = self._n + len(vecs)
        if need > len(self._mat):
            cap = max(need, len(self._mat) * 2)
            mat = np.zeros((cap, self.dim), dtype=np.float32)
            mat[: self._n] = self._mat[: self._n]
            self._mat = mat
            self._chunk_key = np.concatenate([self._chunk_key, np.full(cap - len(self._chunk_key), -1, np.int64)])
        rows = list(range(self._n, need))
        self._mat[self._n : need] = vecs
        self._chunk_key[self._n : need] = key
        self._n = need
        self._rows[key] = rows
        if len(rows) > 1:
            self._single = False

    def remove(self, key: int) -> None:
        rows = self._rows.pop(key, None)
        if rows:
            self._chunk_key[rows] = -1
            self._mat[rows] = 0.0

    def similarities(self, qvec: np.ndarray) -> np.ndarray:
        return self._mat[: self._n] @ np.asarray(qvec, dtype=np.float32)

    def top(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        if not self._rows or n <= 0:
            return {}
        sims = self.similarities(qvec)
        sims[self._chunk_key[: self._n] < 0] = -2.0
        k = min(len(sims), n if self._single else n * 4 + 16)
        idx = np.argpartition(-sims, k - 1)[:k]
        idx = idx[np.argsort(-sims[idx], kind="stable")]
        out: dict[int, float] = {}
        for i in idx:
            key = int(self._chunk_key[i])
            if key >= 0 and key not in out:
                out[key] = float(sims[i])
                if len(out) >= n:
                    break
        return out

    def scores_for(self, qvec: np.ndarray, keys: list[int]) -> dict[int, float]:
        q = np.asarray(qvec, dtype=np.float32)
        out: dict[int, float] = {}
        for key in keys:
            rows = self._rows.get(key)
            out[key] = float((self._mat[rows] @ q).max()) if rows else 0.0
        return out
