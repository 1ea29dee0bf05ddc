"""pgvector (HNSW, cosine) dense index. The vectors live in the database, written by whoever owns
the table; this class only reads them. Table and column names are parameters, so it knows no ORM."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, Engine, text


class PgVectorIndex:
    name = "pgvector"

    def __init__(
        self,
        engine: Engine,
        *,
        table: str = "knowledge_chunks",
        key_column: str = "document_id",
        vector_column: str = "embedding",
        ef_search: int = 64,
    ) -> None:
        self.engine = engine
        self.ef_search = ef_search
        self._top_sql = text(
            f"SELECT {key_column}, 1 - ({vector_column} <=> CAST(:q AS vector)) AS sim FROM {table} "  # noqa: S608
            f"ORDER BY {vector_column} <=> CAST(:q AS vector) LIMIT :n"
        )
        # one round trip: the HNSW top list plus exact scores for the lexical candidates
        self._both_sql = text(
            f"(SELECT 0 AS part, {key_column} AS key, 1 - ({vector_column} <=> CAST(:q AS vector)) AS sim "  # noqa: S608
            f"FROM {table} ORDER BY {vector_column} <=> CAST(:q AS vector) LIMIT :n) UNION ALL "
            f"(SELECT 1, {key_column}, MAX(1 - ({vector_column} <=> CAST(:q AS vector))) FROM {table} "
            f"WHERE {key_column} = ANY(:keys) GROUP BY {key_column})"
        )
        self._for_sql = text(
            f"SELECT {key_column}, MAX(1 - ({vector_column} <=> CAST(:q AS vector))) FROM {table} "  # noqa: S608
            f"WHERE {key_column} = ANY(:keys) GROUP BY {key_column}"
        )

    @staticmethod
    def _literal(qvec: np.ndarray) -> str:
        return "[" + ",".join(map(str, np.asarray(qvec, dtype=np.float32).tolist())) + "]"

    def _limit(self, n: int) -> int:
        return min(n * 2, max(self.ef_search, n))  # chunks, not documents: several may share a document

    def _prepare(self, conn: Connection, limit: int) -> None:
        """HNSW returns at most ``hnsw.ef_search`` rows: set it once per pooled connection."""
        ef = max(self.ef_search, limit)
        if conn.info.get("hnsw.ef_search") != ef:
            conn.exec_driver_sql(f"SET hnsw.ef_search = {int(ef)}")
            conn.commit()
            conn.info["hnsw.ef_search"] = ef

    def search(self, qvec: np.ndarray, n: int, keys: list[int]) -> tuple[dict[int, float], dict[int, float]]:
        """``top(qvec, n)`` and ``scores_for(qvec, keys)`` in one query."""
        if n <= 0:
            return {}, self.scores_for(qvec, keys)
        limit = self._limit(n)
        with self.engine.connect() as conn:
            self._prepare(conn, limit)
            rows = conn.execute(
                self._both_sql, {"q": self._literal(qvec), "n": limit, "keys": list(keys)}
            ).all()
        top: dict[int, float] = {}
        exact = {int(k): 0.0 for k in keys}
        for part, key, sim in rows:
            if part == 1:
                exact[int(key)] = float(sim)
            elif int(key) not in top and len(top) < n:
                top[int(key)] = float(sim)
        return top, exact

    def add(self, key: int, vectors: np.ndarray) -> None:
        """Nothing to do: the rows were written to the chunk table in the same transaction."""

    def remove(self, key: int) -> None:
        """Nothing to do: deleting the chunk rows removes them from the HNSW index."""

    def top(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        if n <= 0:
            return {}
        limit = self._limit(n)
        with self.engine.connect() as conn:
            self._prepare(conn, limit)
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
