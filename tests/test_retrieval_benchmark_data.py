"""The benchmark's own query sets and metrics: well-formed, not copied from the documents, and
scored the way benchmarks/README.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import corpora as D
from benchmarks.quality import Prepared, fast_headline, guarantee, metrics
from retrieval.fusion import FEATURES, Weights
from retrieval.types import Document, Query

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUERIES = Path(D.__file__).resolve().parent / "queries"
needs_data = pytest.mark.skipif(not (DATA / "postmortems").is_dir(), reason="public data not present")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _longest_shared_run(a: str, b: str) -> int:
    x, y = _words(a), _words(b)
    best, prev = 0, [0] * (len(y) + 1)
    for i in range(1, len(x) + 1):
        cur = [0] * (len(y) + 1)
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def test_alert_queries_are_many_split_and_unique() -> None:
    recs = [
        json.loads(line)
        for line in (QUERIES / "postmortem_alerts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(recs) >= 40
    assert len({r["qid"] for r in recs}) == len(recs) and len({r["query"] for r in recs}) == len(recs)
    splits = [r["split"] for r in recs]
    assert splits.count("dev") >= 20 and splits.count("heldout") >= 20
    assert all(r["relevant"] and len(r["query"]) <= 160 for r in recs)  # short, as typed at 3 a.m.


def test_symptom_queries_are_many_unique_and_short() -> None:
    recs = [
        json.loads(line)
        for line in (QUERIES / "postmortem_alerts_symptoms.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(recs) >= 80
    assert len({r["qid"] for r in recs}) == len(recs) and len({r["query"] for r in recs}) == len(recs)
    assert all(r["relevant"] and len(r["query"]) <= 200 for r in recs)


@needs_data
@pytest.mark.parametrize("load", [D.pm_alerts, D.pm_symptoms])
def test_alert_queries_point_at_real_postmortems_without_copying_them(load) -> None:  # type: ignore[no-untyped-def]
    ds = load(DATA)
    text = {d.id: d.text for d in ds.docs}
    for q, rel in zip(ds.queries, ds.relevant, strict=True):
        assert rel <= set(text), q.text
        for r in rel:  # paraphrased: never five words in a row from the postmortem
            assert _longest_shared_run(q.text, text[r]) < 5, (q.text, r)


def test_sample_kb_queries_point_at_bundled_notes() -> None:
    ds = D.sample_kb()
    ids = {d.id for d in ds.docs}
    assert len(ds.queries) >= 20
    assert all(rel and rel <= ids for rel in ds.relevant)
    assert any(q.service for q in ds.queries) and any(
        not (q.service or q.alert_name or q.model) for q in ds.queries
    )


def _prepared(
    kind: str, relevant: list[set[str]], cands: list[list[str]], dense: list[list[float]]
) -> Prepared:
    docs = [Document(id=i, title=i, text=i) for i in sorted({e for c in cands for e in c})]
    ds = D.Dataset(
        "toy",
        kind,
        docs,
        [Query(text="q")] * len(relevant),
        relevant,
        ["all"] * len(relevant),
        [None] * len(relevant),
    )
    xs = []
    for ids, ds_ in zip(cands, dense, strict=True):
        x = np.zeros((len(ids), len(FEATURES)))
        x[:, FEATURES.index("dense")] = ds_
        xs.append(x)
    return Prepared(ds, cands, xs, [3] * len(cands), {})


def test_metrics_rank_the_first_relevant_and_fast_path_agrees() -> None:
    p = _prepared("known_item", [{"b"}, {"z"}], [["a", "b", "c"], ["a", "b"]], [[0.9, 0.5, 0.1], [0.2, 0.1]])
    from benchmarks.quality import fused_orders

    m = metrics(p, fused_orders(p, Weights()))
    assert m["r@1"] == 0.0 and m["r@5"] == 0.5 and m["mrr"] == pytest.approx(0.25)  # rank 2, then missing
    assert fast_headline(p, Weights()) == (m["r@5"], m["mrr"])


def test_guarantee_needs_both_metrics_against_every_half() -> None:
    base = {
        "dense": {"r@5": 0.8, "mrr": 0.6},
        "dense_chunks": {"r@5": 0.7, "mrr": 0.5},
        "lexical": {"r@5": 0.9, "mrr": 0.55},
    }
    p = _prepared("known_item", [{"a"}], [["a"]], [[1.0]])
    assert guarantee(p, {"r@5": 0.9, "mrr": 0.6}, base)["ok"]
    lost = guarantee(p, {"r@5": 0.95, "mrr": 0.59}, base)
    assert not lost["ok"] and lost["margin_mrr"] == pytest.approx(-0.01)


def test_paired_bootstrap_interval_is_zero_for_equal_systems_and_positive_for_a_clear_win() -> None:
    from benchmarks.quality import paired_ci

    n = 40
    p = _prepared("known_item", [{"a"}] * n, [["a", "b", "c"]] * n, [[0.9, 0.5, 0.1]] * n)
    first, third = [["a", "b", "c"]] * n, [["b", "c", "a"]] * n
    same = paired_ci(p, first, {"twin": first})["twin"]
    assert same == {"at5": [0.0, 0.0, 0.0], "mrr": [0.0, 0.0, 0.0]}
    mixed = [
        ["a", "b", "c"] if i % 2 else ["b", "c", "a"] for i in range(n)
    ]  # half the queries improve 1/3 -> 1
    win = paired_ci(p, mixed, {"worse": third})["worse"]
    assert win["mrr"][0] == pytest.approx((1 - 1 / 3) / 2, abs=1e-4)
    assert 0 < win["mrr"][1] < win["mrr"][0] < win["mrr"][2]  # interval around the mean, above zero
    assert win["at5"] == [0.0, 0.0, 0.0]  # rank 3 is inside the top 5 either way
