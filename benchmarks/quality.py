"""Retrieval quality on public data, with same-run baselines.

(a) Hadoop duplicate tickets: for each labelled pair, query with one ticket and find its duplicate
    among all other tickets: Recall@1/5/10 and MRR.
(b) danluu postmortems: same-category precision@5 over the categorised entries.

Each prints the project's ranking (bot.knowledge.KnowledgeBase, the same code path as `kb search`)
next to TF-IDF-only, dense-only and a naive 50/50 blend computed in the same run.

    .venv/bin/python benchmarks/quality.py [--data DIR] [--tune]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import DiskCachedEncoder, data_dir, rank_metrics, rank_of, temp_kb  # noqa: E402
from retrieval.fusion import Weights  # noqa: E402
from retrieval.importers import iter_documents  # noqa: E402
from retrieval.types import Document, Query  # noqa: E402


def query_text(d: Document) -> str:
    return f"{d.title}\n{d.text}"


def baselines(docs: list[Document], encoder: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cosine matrices (n x n) for TF-IDF (1-2 grams) and dense (one embedding per whole document)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [query_text(d) for d in docs]
    tf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(texts)
    tfidf = (tf @ tf.T).toarray()
    emb = encoder.encode(texts, batch_size=64)
    return tfidf, emb @ emb.T


def candidate_features(kb: Any, docs: list[Document], queries: list[int], encoder: Any) -> list[dict[str, dict[str, float]]]:
    """For each query document: {external id: features} over the hybrid ranker's candidates."""
    out = []
    for qi in queries:
        d = docs[qi]
        q = Query(text=query_text(d), exclude_ids=frozenset({d.id}))
        qvec = encoder.encode([q.text])[0]
        exclude = {kb.ranker.key_of(d.id)}
        feats = kb.ranker.features(q, qvec, exclude=exclude)
        ext = {key: kb.ranker._docs[key].external_id for key in feats}
        out.append({ext[k]: f for k, f in feats.items()})
    return out


def rank_with(weights: Weights, feats: dict[str, dict[str, float]]) -> list[str]:
    return sorted(feats, key=lambda e: -weights.score(feats[e]))


def baseline_order(sim: np.ndarray, qi: int, ids: list[str]) -> list[str]:
    row = sim[qi].copy()
    row[qi] = -np.inf
    top = np.argsort(-row, kind="stable")[:100]
    return [ids[i] for i in top]


def evaluate_pairs(orders: list[list[str]], targets: list[str], subset: list[int]) -> dict[str, float]:
    return rank_metrics([rank_of(orders[i], targets[i]) for i in subset])


def tune(feats: list[dict[str, dict[str, float]]], targets: list[str], subset: list[int], base: Weights) -> Weights:
    best, best_key = base, (-1.0, -1.0)
    for lex in (0.5, 1.0, 1.5, 2.0, 3.0):
        for title in (0.0, 0.25, 0.5, 0.75):
            w = Weights.from_dict({**base.as_dict(), "lexical": lex, "title": title})
            m = evaluate_pairs([rank_with(w, feats[i]) for i in subset], [targets[i] for i in subset],
                               list(range(len(subset))))
            key = (m["mrr"] + m["recall@5"], m["mrr"])
            if key > best_key:
                best, best_key = w, key
    return best


def hadoop(data: Path, encoder: DiskCachedEncoder, do_tune: bool) -> dict[str, Any]:
    folder = data / "dup_tickets"
    docs = [d for _, d, _ in iter_documents(folder / "hadoop_bugs.csv", fmt="jira") if d is not None]
    index = {d.id: i for i, d in enumerate(docs)}
    with (folder / "hadoop_bugs-combined.csv").open(encoding="utf-8") as fh:
        pairs = [(r["Issue id"].strip(), r["Duplicate id"].strip()) for r in csv.DictReader(fh)]
    pairs = [(a, b) for a, b in pairs if a in index and b in index and a != b]
    t0 = time.perf_counter()
    kb = temp_kb(encoder)
    kb.upsert(docs)
    build_s = time.perf_counter() - t0
    queries = [index[a] for a, _ in pairs]
    targets = [b for _, b in pairs]
    feats = candidate_features(kb, docs, queries, encoder)
    tfidf, dense = baselines(docs, encoder)
    ids = [d.id for d in docs]
    halves = {"tune_half": list(range(0, len(pairs), 2)), "test_half": list(range(1, len(pairs), 2)),
              "all": list(range(len(pairs)))}
    systems: dict[str, list[list[str]]] = {
        "tfidf": [baseline_order(tfidf, qi, ids) for qi in queries],
        "dense": [baseline_order(dense, qi, ids) for qi in queries],
        "blend_50_50": [baseline_order(0.5 * tfidf + 0.5 * dense, qi, ids) for qi in queries],
    }
    weights = kb.weights
    if do_tune:
        weights = tune(feats, targets, halves["tune_half"], weights)
    systems["ours"] = [rank_with(weights, f) for f in feats]
    # end-to-end check: the real search path returns the same top 10 as the offline re-scoring
    kb.ranker.weights = weights
    e2e = [m.id for m in kb.search(Query(text=query_text(docs[queries[0]]), exclude_ids=frozenset({pairs[0][0]})),
                                   top_k=10)]
    results = {name: {h: evaluate_pairs(orders, targets, idx) for h, idx in halves.items()}
               for name, orders in systems.items()}
    return {"pairs": len(pairs), "documents": len(docs), "chunks": kb.chunk_count(),
            "build_seconds": round(build_s, 1), "weights": {k: v for k, v in weights.as_dict().items()},
            "end_to_end_matches_offline": e2e == systems["ours"][0][:10], "results": results}


def postmortems(data: Path, encoder: DiskCachedEncoder, weights: Weights) -> dict[str, Any]:
    rows = [json.loads(line) for line in (data / "postmortems" / "danluu_postmortems.jsonl").open(encoding="utf-8")]
    rows = [r for r in rows if r.get("category") and r["category"] != "Uncategorized"]
    # the entries have no title: like the importers, use the first sentence
    docs = [Document(id=str(r["id"]), title=r["text"].split(". ")[0][:160], text=r["text"]) for r in rows]
    cat = {d.id: r["category"] for d, r in zip(docs, rows, strict=True)}
    kb = temp_kb(encoder, weights=weights)
    kb.upsert(docs)
    tfidf, dense = baselines(docs, encoder)
    ids = [d.id for d in docs]
    queries = list(range(len(docs)))
    feats = candidate_features(kb, docs, queries, encoder)
    systems = {
        "tfidf": [baseline_order(tfidf, qi, ids) for qi in queries],
        "dense": [baseline_order(dense, qi, ids) for qi in queries],
        "blend_50_50": [baseline_order(0.5 * tfidf + 0.5 * dense, qi, ids) for qi in queries],
        "ours": [rank_with(weights, f) for f in feats],
    }

    def p_at5(orders: list[list[str]]) -> float:
        vals = [sum(1 for e in o[:5] if cat[e] == cat[ids[qi]]) / 5 for qi, o in zip(queries, orders, strict=True)]
        return round(float(np.mean(vals)), 4)

    return {"entries": len(docs), "categories": len(set(cat.values())),
            "precision@5": {name: p_at5(o) for name, o in systems.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="folder with dup_tickets/ and postmortems/ (default ../shared/data)")
    ap.add_argument("--tune", action="store_true",
                    help="grid-search the lexical and title weights on the tune half (default: Weights() as shipped)")
    ap.add_argument("--backend", default="torch", choices=("torch", "onnx", "onnx-int8"), help="encoder backend")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    from retrieval.encoder import make_encoder

    encoder = DiskCachedEncoder(make_encoder(backend=args.backend))
    t0 = time.perf_counter()
    try:
        had = hadoop(data, encoder, args.tune)
        pm = postmortems(data, encoder, Weights.from_dict(had["weights"]))
    finally:
        encoder.save()
    print(json.dumps({
        "benchmark": "quality", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "encoder": encoder.name,
        "texts_encoded_this_run": encoder.misses, "seconds": round(time.perf_counter() - t0, 1),
        "hadoop_duplicates": had, "postmortems": pm,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
