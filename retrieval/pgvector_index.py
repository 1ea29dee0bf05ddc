"""pgvector (HNSW, cosine) dense index. The vectors live in the database, written by whoever owns
the table; this class only reads them. Table and column names are parameters, so it knows no ORM."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, text


class PgVectorIndex:
    name = "pgvector"

    def __init__(
        self, engine: Engine, *, table: str = "knowledge_chunks", key_column: str = "document_id",
        vector_column: str = "embedding", ef_search: int = 100,
    ) -> None:
        self.engine = engine
        self.ef_search = ef_search
        self._top_sql = text(
            f"SELECT {key_column}, 1 - ({vector_column} <=> CAST(:q AS vector)) AS sim FROM {table} "  # noqa: S608
            f"ORDER BY {vector_column} <=> CAST(:q AS vector) LIMIT :n"
        )
        self._for_sql = text(
            f"SELECT {key_column}, MAX(1 - ({vector_column} <=> CAST(:q AS vector))) FROM {table} "  # noqa: S608
            f"WHERE {key_column} = ANY(:keys) GROUP BY {key_column}"
        )

    @staticmethod
    def _literal(qvec: np.ndarray) -> str:
        return "[" + ",".join(f"{x:.7g}" for x in np.asarray(qvec, dtype=np.float32)) + "]"

    def add(self, key: int, vectors: np.ndarray) -> None:
        """Nothing to do: the rows were written to the chunk table in the same transaction."""

    def remove(self, key: int) -> None:
        """Nothing to do: deleting the chunk rows removes them from the HNSW index."""

    def top(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        if n <= 0:
            return {}
        limit = min(n * 2, max(self.ef_search, n))  # chunks, not documents: several may share a document
        with self.engine.connect() as conn, conn.begin():
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {int(max(self.ef_search, limit))}"))
            rows = conn.execute(self._top_sql, {"q": self._literal(qvec), "n": limit}).all()
        out: dict[int, float] = {}
        for key, sim in rows:
            if int(key) not in out:
                out[int(key)] = float(sim)
            if len(out) >= n:
                break
        return out

    def scores_for(self, qvec: np.ndarray, keys: list[int]) -> dict[int, float]:
        if not keys:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(self._for_sql, {"q": self._literal(qvec), "keys": list(keys)}).all()
        found = {int(k): float(s) for k, s in rows}
        return {k: found.get(k, 0.0) for k in keys}
