"""Retrieval quality with a leave-one-dataset-out protocol and same-run baselines.

Datasets (``benchmarks/corpora.py``): Hadoop and SeaMonkey duplicate bug reports, postmortem
same-category, three sets of alert-style known-item queries over the postmortems (ours with their
identifiers, and two symptom-only sets by authors who never ran the ranker), and the bundled sample
knowledge base with alert text from the demo and the tests.

Systems, all on the same texts in the same run:
- ``tfidf``: TF-IDF (1-2 grams, sublinear tf) cosine;
- ``dense``: all-MiniLM-L6-v2, one embedding per whole document, cosine (dense-only);
- ``dense_chunks``: our dense half alone (best passage cosine, as the ranker computes it);
- ``lexical``: our BM25F alone (the ranker's lexical half, ``retrieval/lexical.py``);
- ``blend_50_50``: untuned 0.5 TF-IDF + 0.5 dense cosine; ``rrf``: untuned reciprocal-rank
  fusion (k=60) of dense and BM25F;
- ``fused``: the shipped ranker's fusion (``retrieval.fusion``), with weights chosen by
  leave-one-dataset-out: for every dataset, the weights are tuned on all the other datasets and
  the figure reported for it is the one from the round where it was left out.

The alert-query held-out split is never used for tuning; it is scored at the end with the shipped
weights (``--no-heldout`` skips it).

    .venv/bin/python benchmarks/quality.py [--data DIR] [--backend torch|onnx|onnx-int8] [--no-heldout]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import corpora as D  # noqa: E402
from benchmarks.common import DiskCachedEncoder, data_dir, temp_kb  # noqa: E402
from retrieval.fusion import FEATURES, GUARD, Weights, shortness  # noqa: E402
from retrieval.text import tokenize  # noqa: E402

TOP = 100
RIVALS = ("dense", "dense_chunks", "lexical")  # the guarantee: fused >= each of these
MAXIMIN = True  # choose the weights whose worst training-dataset margin over both halves is largest
LEX = FEATURES.index("lexical")
LEX_SHORT = FEATURES.index("lexical_short")
TITLE = FEATURES.index("title")
TITLE_SHORT = FEATURES.index("title_short")


@dataclass
class Prepared:
    ds: D.Dataset
    cand_ids: list[list[str]]
    cand_x: list[np.ndarray]  # candidates x FEATURES, as the ranker computed them
    n_terms: list[int]
    orders: dict[str, list[list[str]]]  # baseline system -> per-query ranked ids
    e2e_ok: bool | None = None


def _order(scores: np.ndarray, ids: list[str], skip: str | None) -> list[str]:
    s = scores.astype(np.float64).copy()
    if skip is not None:
        s[ids.index(skip)] = -np.inf
    top = np.argsort(-s, kind="stable")[:TOP]
    return [ids[i] for i in top if np.isfinite(s[i])]


def _rrf(*orders: list[str], k: int = 60) -> list[str]:
    score: dict[str, float] = {}
    for order in orders:
        for r, e in enumerate(order, start=1):
            score[e] = score.get(e, 0.0) + 1.0 / (k + r)
    return sorted(score, key=lambda e: -score[e])[:TOP]


def prepare(ds: D.Dataset, encoder: DiskCachedEncoder, weights: Weights) -> Prepared:
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = [d.id for d in ds.docs]
    kb = temp_kb(encoder, weights=weights)
    kb.upsert(ds.docs)
    texts = [D.doc_text(d) for d in ds.docs]
    qtexts = [q.text for q in ds.queries]
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit(texts)
    tf_docs, tf_q = vec.transform(texts), vec.transform(qtexts)
    emb_docs = encoder.encode(texts, batch_size=64)
    emb_q = encoder.encode(qtexts, batch_size=64)
    orders: dict[str, list[list[str]]] = {
        k: [] for k in ("tfidf", "dense", "blend_50_50", "lexical", "dense_chunks", "rrf")
    }
    cand_ids, cand_x, n_terms = [], [], []
    for i, q in enumerate(ds.queries):
        skip = ds.self_ids[i]
        tf = (tf_q[i] @ tf_docs.T).toarray()[0]
        dn = emb_docs @ emb_q[i]
        orders["tfidf"].append(_order(tf, ids, skip))
        orders["dense"].append(_order(dn, ids, skip))
        orders["blend_50_50"].append(_order(0.5 * tf + 0.5 * dn, ids, skip))
        exclude = {k for k in (kb.ranker.key_of(e) for e in q.exclude_ids) if k is not None}
        feats = kb.ranker.features(q, emb_q[i], exclude=exclude)
        ext = [kb.ranker._docs[k].external_id for k in feats]
        x = np.array([[f.get(n, 0.0) for n in FEATURES] for f in feats.values()], dtype=np.float64)
        cand_ids.append(ext)
        cand_x.append(x.reshape(len(ext), len(FEATURES)))
        n_terms.append(len(set(tokenize(q.text))))
        lex = [e for e, f in zip(ext, feats.values(), strict=True) if f["lexical"] > 0]
        lex.sort(key=lambda e: -feats[kb.ranker.key_of(e)]["lexical"])  # type: ignore[index]
        orders["lexical"].append(lex[:TOP])
        orders["dense_chunks"].append(sorted(ext, key=lambda e: -feats[kb.ranker.key_of(e)]["dense"])[:TOP])  # type: ignore[index]
        orders["rrf"].append(_rrf(orders["dense"][-1], lex))
    prep = Prepared(ds, cand_ids, cand_x, n_terms, orders)
    # end-to-end: the real search path ranks the first query as the offline re-scoring does
    if ds.queries:
        got = [m.id for m in kb.search(ds.queries[0], top_k=10)]
        prep.e2e_ok = got == fused_orders(prep, kb.weights)[0][:10]
    return prep


def weight_vector(w: Weights) -> np.ndarray:
    return np.array([getattr(w, n) for n in FEATURES], dtype=np.float64)


def fused_orders(p: Prepared, w: Weights) -> list[list[str]]:
    wv = weight_vector(w)
    out = []
    for ids, x, n in zip(p.cand_ids, p.cand_x, p.n_terms, strict=True):
        x = x.copy()
        x[:, LEX_SHORT] = x[:, LEX] * shortness(n, w)
        x[:, TITLE_SHORT] = x[:, TITLE] * shortness(n, w)
        s = x @ wv
        order = sorted(range(len(ids)), key=lambda j: (-s[j], ids[j]))
        out.append([ids[j] for j in order[:TOP]])
    return out


def _first_relevant(p: Prepared, orders: list[list[str]]) -> list[int | None]:
    """Per query, the rank (1-based) of the first relevant result, None if none is listed."""
    return [
        next((r for r, e in enumerate(order, start=1) if e in rel), None)
        for order, rel in zip(orders, p.ds.relevant, strict=True)
    ]


def per_query(p: Prepared, orders: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (hit@5 or precision@5, reciprocal rank of the first relevant), as ``metrics`` averages them."""
    ranks = _first_relevant(p, orders)
    if p.ds.kind == "category":
        at5 = [sum(1 for e in o[:5] if e in rel) / 5 for o, rel in zip(orders, p.ds.relevant, strict=True)]
    else:
        at5 = [float(r is not None and r <= 5) for r in ranks]
    return np.array(at5, dtype=float), np.array([1.0 / r if r else 0.0 for r in ranks])


def metrics(p: Prepared, orders: list[list[str]]) -> dict[str, float]:
    """Known-item: Recall@1/5/10 and MRR of the first relevant. Category: precision@5 and MRR."""
    n = max(len(orders), 1)
    ranks = _first_relevant(p, orders)
    at5, rr = per_query(p, orders)
    out: dict[str, float] = {}
    if p.ds.kind == "category":
        out["p@5"] = round(float(at5.sum()) / n, 4)
    else:
        for k in (1, 5, 10):
            out[f"r@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)
    out["mrr"] = round(float(rr.sum()) / n, 4)
    out["n"] = len(orders)
    return out


def paired_ci(
    p: Prepared,
    fused: list[list[str]],
    rivals: dict[str, list[list[str]]],
    *,
    resamples: int = 2000,
    seed: int = 7,
) -> dict[str, dict[str, list[float]]]:
    """Fused minus each rival, per metric: the mean difference and a 95 % paired-bootstrap interval over
    the queries (the same resampled queries for both systems). An interval that straddles 0 says the
    dataset cannot tell the two apart: a margin of half a query's reciprocal rank is noise, not a loss
    or a win."""
    rng = np.random.default_rng(seed)
    n = len(fused)
    idx = rng.integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), dtype=int)
    f5, frr = per_query(p, fused)
    out: dict[str, dict[str, list[float]]] = {}
    for name, orders in rivals.items():
        r5, rrr = per_query(p, orders)
        res = {}
        for metric, d in (("at5", f5 - r5), ("mrr", frr - rrr)):
            boot = d[idx].mean(axis=1) if n else np.zeros(resamples)
            res[metric] = [
                round(float(d.mean()) if n else 0.0, 4),
                round(float(np.percentile(boot, 2.5)), 4),
                round(float(np.percentile(boot, 97.5)), 4),
            ]
        out[name] = res
    return out


def headline(m: dict[str, float]) -> tuple[float, float]:
    return (m.get("r@5", m.get("p@5", 0.0)), m["mrr"])


def guarantee(p: Prepared, fused: dict[str, float], base: dict[str, dict[str, float]]) -> dict[str, Any]:
    """fused >= max(dense-only, lexical-only) on R@5 (P@5) and MRR; dense-only is checked both as the
    whole-document baseline and as the ranker's own dense half."""
    h5, mrr = headline(fused)
    rivals = RIVALS
    best5 = max(headline(base[s])[0] for s in rivals)
    bestm = max(headline(base[s])[1] for s in rivals)
    return {
        "ok": bool(h5 >= best5 and mrr >= bestm),
        "margin_at5": round(h5 - best5, 4),
        "margin_mrr": round(mrr - bestm, 4),
    }


# --- tuning -------------------------------------------------------------------------------------

GRID = {  # the dense weight is the unit (scores are scale-free)
    "dense_rel": (0.0, 0.2, 0.4),
    "lexical": (0.2, 0.5, 1.0, 1.5),  # BM25F (relative to the query's best) for long, ticket-like queries
    "lexical_at_short": (0.0, 0.1),  # ... for short, alert-like ones; at most ``lexical``
    "title": (0.0, 0.1, 0.25),
    "title_at_short": (0.0, 0.1),  # at most ``title``
    "lexical_strength": (0.0, 0.5, 1.0),
    "tfidf": (0.0, 0.25, 0.5, 1.0, 2.0),  # the absolute-scale TF-IDF cosine
    "short_query_terms": (8.0, 16.0),  # distinct terms at or below which a query counts as short
    "long_query_terms": (40.0,),  # ... at or above which it counts as long (linear in between)
}
SHOWN = (
    "dense",
    "dense_rel",
    "lexical",
    "lexical_short",
    "lexical_strength",
    "title",
    "title_short",
    "tfidf",
    "short_query_terms",
    "long_query_terms",
)


def candidates(base: Weights) -> list[Weights]:
    """The grid, with the short-query weights given as what a short query gets (``lexical +
    lexical_short``, ``title + title_short``), never more than a long one gets."""
    out = []
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        v = dict(zip(keys, values, strict=True))
        if v["lexical_at_short"] > v["lexical"] or v["title_at_short"] > v["title"]:
            continue
        out.append(
            Weights.from_dict(
                {
                    **base.as_dict(),
                    "dense": 1.0,
                    "dense_rel": v["dense_rel"],
                    "lexical": v["lexical"],
                    "lexical_short": v["lexical_at_short"] - v["lexical"],
                    "title": v["title"],
                    "title_short": v["title_at_short"] - v["title"],
                    "lexical_strength": v["lexical_strength"],
                    "tfidf": v["tfidf"],
                    "short_query_terms": v["short_query_terms"],
                    "long_query_terms": v["long_query_terms"],
                }
            )
        )
    return out


def _masks(p: Prepared) -> list[np.ndarray]:
    cached = getattr(p, "_masks_cache", None)
    if cached is None:
        cached = [
            np.array([e in rel for e in ids], dtype=bool)
            for ids, rel in zip(p.cand_ids, p.ds.relevant, strict=True)
        ]
        p._masks_cache = cached  # type: ignore[attr-defined]
    return cached


def fast_headline(p: Prepared, w: Weights) -> tuple[float, float]:
    """(R@5 or P@5, MRR) for fused weights without sorting: the rank of the best relevant candidate
    is one plus the number of candidates scoring above it (ties counted in its favour)."""
    wv = weight_vector(w)
    at5, rr = 0.0, 0.0
    for x, n, mask in zip(p.cand_x, p.n_terms, _masks(p), strict=True):
        if not mask.any():
            continue
        x = x.copy()
        x[:, LEX_SHORT] = x[:, LEX] * shortness(n, w)
        x[:, TITLE_SHORT] = x[:, TITLE] * shortness(n, w)
        s = x @ wv
        rank = 1 + int((s > s[mask].max()).sum())
        rr += 1.0 / rank if rank <= TOP else 0.0
        if p.ds.kind == "category":
            top = np.argsort(-s, kind="stable")[:5]
            at5 += mask[top].sum() / 5
        else:
            at5 += rank <= 5
    n = max(len(p.cand_x), 1)
    return round(at5 / n, 4), round(rr / n, 4)


def tune(
    train: list[Prepared], base: Weights, baselines: dict[str, dict[str, dict[str, float]]]
) -> tuple[Weights, dict[str, Any]]:
    """Most training datasets where the guarantee holds first, then the best mean of (R@5 + MRR)."""
    best: tuple[tuple[float, float, float], Weights] | None = None
    for w in candidates(base):
        ok, total, worst = 0, 0.0, np.inf
        for p in train:
            h5, mrr = fast_headline(p, w)
            g = guarantee(p, {"r@5": h5, "mrr": mrr}, baselines[p.ds.name])
            ok += g["ok"]
            worst = min(worst, g["margin_at5"] + g["margin_mrr"])
            total += h5 + mrr
        key = (float(ok), round(float(worst), 4) if MAXIMIN else 0.0, total / len(train))
        if best is None or key > best[0]:
            best = (key, w)
    assert best is not None
    return best[1], {
        "train_datasets_with_guarantee": int(best[0][0]),
        "train_worst_margin": best[0][1],
        "train_mean_at5_plus_mrr": round(float(best[0][2]), 4),
    }


def guard_box(prepared: list[Prepared], baselines: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The feedback refit may only move the text weights inside ``fusion.GUARD``: check the
    guarantee at every corner of that box (and the shipped point) on every dataset."""
    shipped = Weights()
    total = shipped.dense + shipped.dense_rel
    keys = (
        "dense_rel",
        "lexical",
        "lexical_at_short",
        "lexical_strength",
        "title",
        "title_at_short",
        "tfidf",
        "recency",
        "has_rca",
    )
    failures, points = [], 0
    for corner in sorted(set(itertools.product(*(GUARD[k] for k in keys)))):
        r = dict(zip(keys, corner, strict=True))
        w = Weights.from_dict(
            {
                **shipped.as_dict(),
                "dense": total * (1 - r["dense_rel"]),
                "dense_rel": total * r["dense_rel"],
                "lexical": total * r["lexical"],
                "lexical_short": total * (r["lexical_at_short"] - r["lexical"]),
                "lexical_strength": total * r["lexical_strength"],
                "title": total * r["title"],
                "title_short": total * (r["title_at_short"] - r["title"]),
                "tfidf": total * r["tfidf"],
                "recency": total * r["recency"],
                "has_rca": total * r["has_rca"],
            }
        )
        points += 1
        for p in prepared:
            h5, mrr = fast_headline(p, w)
            g = guarantee(p, {"r@5": h5, "mrr": mrr}, baselines[p.ds.name])
            if not g["ok"]:
                failures.append({"corner": r, "dataset": p.ds.name, **g})
    return {"corners": points, "datasets": len(prepared), "failures": len(failures), "examples": failures[:5]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=None, help="folder with dup_tickets/ and postmortems/ (default ../shared/data)"
    )
    ap.add_argument(
        "--backend", default="torch", choices=("torch", "onnx", "onnx-int8"), help="encoder backend"
    )
    ap.add_argument(
        "--no-heldout", action="store_true", help="do not score the sealed held-out alert queries"
    )
    ap.add_argument("--only", default="", help="comma-separated dataset names (debugging; no LODO claim)")
    ap.add_argument(
        "--adapt-minutes",
        type=float,
        default=0.0,
        help="also adapt the model on each dataset's own documents (this training budget each; issue 19)",
    )
    ap.add_argument(
        "--adapt-steps",
        type=int,
        default=None,
        help="train each adapted model for exactly this many steps (--adapt-minutes is then a safety cap)",
    )
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    from retrieval.encoder import make_encoder

    encoder = DiskCachedEncoder(make_encoder(backend=args.backend))
    t0 = time.perf_counter()
    shipped = Weights()
    alerts = D.pm_alerts(data)
    sets = [
        D.hadoop(data),
        D.seamonkey(data),
        D.pm_category(data),
        alerts.subset("dev"),
        D.pm_symptoms(data),
        alerts.subset("blind"),
        D.sample_kb(data),
    ]
    if args.only:
        sets = [s for s in sets if s.name in args.only.split(",")]
    try:
        prepared = [prepare(ds, encoder, shipped) for ds in sets]
        held = None if args.no_heldout else prepare(alerts.subset("heldout"), encoder, shipped)
    finally:
        encoder.save()
    prep_s = time.perf_counter() - t0
    base = {p.ds.name: {s: metrics(p, o) for s, o in p.orders.items()} for p in prepared}
    table: dict[str, dict[str, dict[str, float]]] = {}
    rounds = []
    round_weights: dict[str, Weights] = {}
    for p in prepared:
        train = [q for q in prepared if q is not p]
        w, info = tune(train, shipped, base)
        round_weights[p.ds.name] = w
        orders = fused_orders(p, w)
        fused = metrics(p, orders)
        table[p.ds.name] = {
            **base[p.ds.name],
            "fused": fused,
            "fused_shipped_weights": metrics(p, fused_orders(p, shipped)),
            "fused_minus_rival_ci95": paired_ci(p, orders, {s: p.orders[s] for s in RIVALS}),
        }
        rounds.append(
            {
                "left_out": p.ds.name,
                **info,
                "weights": {k: getattr(w, k) for k in SHOWN},
                "left_out_fused": fused,
                "guarantee": guarantee(p, fused, base[p.ds.name]),
            }
        )
    final_w, final_info = tune(prepared, shipped, base)
    out: dict[str, Any] = {
        "benchmark": "quality",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared CPU: timings are noisy)",
        "encoder": encoder.name,
        "texts_encoded_this_run": encoder.misses,
        "seconds": round(time.perf_counter() - t0, 1),
        "prepare_seconds": round(prep_s, 1),
        "datasets": {
            p.ds.name: {
                "documents": len(p.ds.docs),
                "queries": len(p.ds.queries),
                "kind": p.ds.kind,
                "end_to_end_matches_offline": p.e2e_ok,
            }
            for p in prepared
        },
        "table": table,
        "rounds": rounds,
        "all_rounds_guarantee": all(r["guarantee"]["ok"] for r in rounds),
        "fused_beats_untuned_blends_on_average": _avg_beats(table),
        "tuned_on_all_dev": {"weights": {k: getattr(final_w, k) for k in SHOWN}, **final_info},
        "shipped_weights": {k: getattr(shipped, k) for k in SHOWN},
    }
    if held is not None:
        hb = {s: metrics(held, o) for s, o in held.orders.items()}
        ho = fused_orders(held, shipped)
        hf = metrics(held, ho)
        out["heldout_alerts"] = {
            **hb,
            "fused": hf,
            "guarantee": guarantee(held, hf, hb),
            "fused_minus_rival_ci95": paired_ci(held, ho, {s: held.orders[s] for s in RIVALS}),
        }
    out["guard_box"] = guard_box(prepared, base)
    if args.adapt_minutes > 0:
        out["adapted"] = adapted_rows(prepared, round_weights, shipped, args)
    print(json.dumps(out, indent=1))
    print_table(out)
    return 0


# The ship rule of issue 19, fixed before the first run: the adapted model becomes the recommended default
# only if, left out, adapted-fused beats fused on average by at least 0.02 MRR over the datasets AND loses no
# dataset by more than its bootstrap interval (lost = the whole 95 % paired interval of adapted-fused minus
# fused MRR lies below 0).
SHIP_MIN_MEAN_MRR_GAIN = 0.02


def adapted_rows(
    prepared: list[Prepared], weights: dict[str, Weights], shipped: Weights, args: argparse.Namespace
) -> dict[str, Any]:
    """Per dataset: adapt a copy of the model on that dataset's documents only (a child process: its own
    peak memory), then score the left-out round as the table does, with the round's weights."""
    import subprocess

    from retrieval.encoder import SentenceTransformerEncoder

    rows: dict[str, Any] = {}
    for p in prepared:
        cmd = [sys.executable, "-m", "benchmarks.adapt_one", "--dataset", p.ds.name]
        cmd += ["--minutes", f"{args.adapt_minutes:g}"] + (["--data", args.data] if args.data else [])
        cmd += ["--steps", str(args.adapt_steps)] if args.adapt_steps else []
        child = subprocess.run(
            cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent
        )
        rep = json.loads(child.stdout.strip().splitlines()[-1])
        enc = DiskCachedEncoder(
            SentenceTransformerEncoder(rep["path"], name=f"adapted:{p.ds.name}:{rep['sha256'][:16]}")
        )
        try:
            pa = prepare(p.ds, enc, shipped)
        finally:
            enc.save()
        w = weights[p.ds.name]
        fused_o, adapted_o = fused_orders(p, w), fused_orders(pa, w)
        rows[p.ds.name] = {
            "dense": metrics(p, p.orders["dense"]),
            "fused": metrics(p, fused_o),
            "adapted_dense": metrics(pa, pa.orders["dense"]),
            "adapted_fused": metrics(pa, adapted_o),
            "adapted_fused_minus_fused_ci95": paired_ci(pa, adapted_o, {"fused": fused_o})["fused"],
            "adapted_dense_minus_dense_ci95": paired_ci(pa, pa.orders["dense"], {"dense": p.orders["dense"]})[
                "dense"
            ],
            "train": {
                k: rep[k]
                for k in (
                    "pairs",
                    "pair_kinds",
                    "steps",
                    "planned_steps",
                    "train_seconds",
                    "stopped_by_budget",
                )
            },
            "peak_rss_mb": rep["peak_rss_mb"],
        }
        print(
            f"adapted {p.ds.name}: {rows[p.ds.name]['adapted_fused']} vs {rows[p.ds.name]['fused']}",
            file=sys.stderr,
        )
    gains = [r["adapted_fused"]["mrr"] - r["fused"]["mrr"] for r in rows.values()]
    lost = [n for n, r in rows.items() if r["adapted_fused_minus_fused_ci95"]["mrr"][2] < 0]
    mean_gain = round(float(np.mean(gains)), 4) if gains else 0.0
    ship = bool(rows) and len(rows) == 7 and mean_gain >= SHIP_MIN_MEAN_MRR_GAIN and not lost
    return {
        "budget_minutes_per_dataset": args.adapt_minutes,
        "steps_per_dataset": args.adapt_steps,
        "table": rows,
        "ship_rule": {
            "mean_mrr_gain_adapted_fused_vs_fused": mean_gain,
            "needed": SHIP_MIN_MEAN_MRR_GAIN,
            "datasets_lost_beyond_interval": lost,
            "ship": ship,
            "verdict": (
                "the adapted model is recommended"
                if ship
                else "the adapted model is NOT recommended: kb adapt stays an experiment"
            ),
        },
    }


def print_table(out: dict[str, Any]) -> None:
    """The same figures as a plain table on stderr: left-out fused vs the baselines, then rounds."""
    systems = ("fused", "dense", "dense_chunks", "lexical", "tfidf", "blend_50_50", "rrf")
    rows = list(out["table"].items())
    if "heldout_alerts" in out:
        rows.append(("pm_alerts_heldout", out["heldout_alerts"]))
    err = sys.stderr
    print(f"{'dataset':<18} {'metric':<5} " + " ".join(f"{s:>12}" for s in systems), file=err)
    for name, t in rows:
        for metric in ("r@5" if "r@5" in t["fused"] else "p@5", "mrr"):
            print(f"{name:<18} {metric:<5} " + " ".join(f"{t[s][metric]:>12.4f}" for s in systems), file=err)
    print("fused minus rival (left-out round), mean [95% paired bootstrap]:", file=err)
    for name, t in rows:
        ci = t.get("fused_minus_rival_ci95", {})
        print(
            f"  {name:<18} "
            + "  ".join(
                f"{rival} @5 {v['at5'][0]:+.3f} [{v['at5'][1]:+.3f},{v['at5'][2]:+.3f}] "
                f"mrr {v['mrr'][0]:+.3f} [{v['mrr'][1]:+.3f},{v['mrr'][2]:+.3f}]"
                for rival, v in ci.items()
            ),
            file=err,
        )
    for r in out["rounds"]:
        g = r["guarantee"]
        print(
            f"round left_out={r['left_out']:<12} weights={r['weights']} guarantee={'ok' if g['ok'] else 'LOST'} "
            f"margins @5 {g['margin_at5']:+.4f} mrr {g['margin_mrr']:+.4f}",
            file=err,
        )


def _avg_beats(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    res = {}
    for rival in ("blend_50_50", "rrf"):
        diffs = [sum(headline(t["fused"])) - sum(headline(t[rival])) for t in table.values()]
        res[rival] = {
            "mean_diff_at5_plus_mrr": round(float(np.mean(diffs)), 4),
            "ok": float(np.mean(diffs)) > 0,
        }
    return res


if __name__ == "__main__":
    raise SystemExit(main())
