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

    def search(self, qvec: np.ndarray, n: int, keys: list[int]) -> tuple[dict[int, float], dict[int, float]]:
        """``top(qvec, n)`` and ``scores_for(qvec, keys)`` together (one round trip for pgvector)."""
        ...


class NumpyVectorIndex:
    """Exact cosine search over a float32 matrix. Past ``pca_min_rows`` chunks a first stage scans a
    ``pca_dim``-dimensional projection (principal directions of the stored vectors: 4x less memory
    traffic) to pick ``oversample`` times more candidates than asked, which are then rescored exactly."""

    name = "numpy"

    def __init__(
        self, dim: int, *, pca_min_rows: int = 30_000, pca_dim: int = 96, oversample: int = 8
    ) -> None:
        self.dim = dim
        self.pca_min_rows, self.pca_dim, self.oversample = pca_min_rows, pca_dim, oversample
        self._proj: np.ndarray | None = None
        self._low = np.zeros((0, pca_dim), dtype=np.float32)
        self._fitted_at = 0
        self._mat = np.zeros((1024, dim), dtype=np.float32)
        self._chunk_key = np.full(1024, -1, dtype=np.int64)
        self._n = 0
        self._rows: dict[int, list[int]] = {}
        self._single = True  # every live document has exactly one chunk (fast path)

    def __len__(self) -> int:
        return len(self._rows)

    def reserve(self, rows: int) -> None:
        """Grow the matrix to hold ``rows`` chunks (load() calls it once, avoiding repeated copies)."""
        if rows > len(self._mat):
            mat = np.zeros((rows, self.dim), dtype=np.float32)
            mat[: self._n] = self._mat[: self._n]
            self._mat = mat
            self._chunk_key = np.concatenate(
                [self._chunk_key, np.full(rows - len(self._chunk_key), -1, np.int64)]
            )
            if self._proj is not None:
                low = np.zeros((rows, self.pca_dim), dtype=np.float32)
                low[: self._n] = self._low[: self._n]
                self._low = low

    def _fit_projection(self) -> None:
        live = np.flatnonzero(self._chunk_key[: self._n] >= 0)
        sample = self._mat[np.random.default_rng(0).choice(live, min(len(live), 20_000), replace=False)]
        _, _, vt = np.linalg.svd(sample, full_matrices=False)  # uncentred: preserves dot products
        self._proj = np.ascontiguousarray(vt[: self.pca_dim].T)
        self._low = np.zeros((len(self._mat), self.pca_dim), dtype=np.float32)
        self._low[: self._n] = self._mat[: self._n] @ self._proj
        self._fitted_at = self._n

    def add(self, key: int, vectors: np.ndarray) -> None:
        self.remove(key)
        vecs = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        need = self._n + len(vecs)
        if need > len(self._mat):
            self.reserve(max(need, int(len(self._mat) * 1.5)))
        rows = list(range(self._n, need))
        self._mat[self._n : need] = vecs
        if self._proj is not None:
            self._low[self._n : need] = vecs @ self._proj
        self._chunk_key[self._n : need] = key
        self._n = need
        if need >= self.pca_min_rows and (self._proj is None or need >= 2 * self._fitted_at):
            self._fit_projection()
        self._rows[key] = rows
        if len(rows) > 1:
            self._single = False

    def remove(self, key: int) -> None:
        rows = self._rows.pop(key, None)
        if rows:
            self._chunk_key[rows] = -1
            self._mat[rows] = 0.0
            if self._proj is not None:
                self._low[rows] = 0.0

    def top(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        if not self._rows or n <= 0:
            return {}
        q = np.asarray(qvec, dtype=np.float32)
        k = min(self._n, n if self._single else n * 4 + 16)
        if self._proj is not None and self._n > k * self.oversample:
            approx = self._low[: self._n] @ (q @ self._proj)
            cand = np.argpartition(-approx, k * self.oversample - 1)[: k * self.oversample]
            sims_c = self._mat[cand] @ q
        else:
            cand = np.arange(self._n)
            sims_c = self._mat[: self._n] @ q
        sims_c[self._chunk_key[cand] < 0] = -2.0
        k = min(k, len(cand))
        part = np.argpartition(-sims_c, k - 1)[:k]
        part = part[np.argsort(-sims_c[part], kind="stable")]
        idx = cand[part]
        out: dict[int, float] = {}
        for i, sim in zip(idx, sims_c[part], strict=True):
            key = int(self._chunk_key[i])
            if key >= 0 and key not in out:
                out[key] = float(sim)
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

    def search(self, qvec: np.ndarray, n: int, keys: list[int]) -> tuple[dict[int, float], dict[int, float]]:
        top = self.top(qvec, n)
        return top, self.scores_for(qvec, [k for k in keys if k not in top])
