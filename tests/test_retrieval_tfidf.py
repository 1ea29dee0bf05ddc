"""The incremental TF-IDF cosine gives scikit-learn's TfidfVectorizer figures, survives removal and
replacement, and never lets a word no document has inflate the query."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from retrieval.tfidf import TfidfCosine

DOCS = [
    "disk full on db-7, writes failing",
    "Disk pressure on node db-7: kubelet evicting pods",
    "TLS certificate expired on the edge load balancer, handshakes failing",
    "etcd leader election storm, apiserver requests timing out",
    "checkout p99 latency above 2s after deploy v1.42",
]
QUERIES = [
    "db-7 disk full, postgres writes failing",
    "apiserver timing out, etcd leader changed 40 times",
    "certificate expired",
    "something nobody wrote about",
]


def _reference(docs: list[str], query: str) -> np.ndarray:
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(docs)
    return (vec.transform([query]) @ vec.transform(docs).T).toarray()[0]


@pytest.mark.parametrize("query", QUERIES)
def test_cosines_equal_scikit_learn(query: str) -> None:
    index = TfidfCosine()
    for i, d in enumerate(DOCS):
        index.add(i, d)
    got = index.scores_for(query, list(range(len(DOCS))))
    assert [got[i] for i in range(len(DOCS))] == pytest.approx(list(_reference(DOCS, query)), abs=1e-5)


def test_removal_and_replacement_leave_the_index_as_if_built_fresh() -> None:
    index = TfidfCosine()
    for i, d in enumerate(DOCS):
        index.add(i, d)
    index.remove(2)
    index.add(4, "checkout latency p99 regression after deploy")  # replaced in place
    kept = {0: DOCS[0], 1: DOCS[1], 3: DOCS[3], 4: "checkout latency p99 regression after deploy"}
    query = "checkout p99 latency after deploy"
    fresh = _reference(list(kept.values()), query)
    got = index.scores_for(query, [*kept, 2, 99])
    assert [got[k] for k in kept] == pytest.approx(list(fresh), abs=1e-5)
    assert got[2] == 0.0 and got[99] == 0.0  # removed and unknown keys score nothing
    assert len(index) == 4


def test_an_empty_index_or_query_scores_zero() -> None:
    assert TfidfCosine().scores_for("disk full", [1, 2]) == {1: 0.0, 2: 0.0}
    index = TfidfCosine()
    index.add(1, DOCS[0])
    assert index.scores_for("", [1]) == {1: 0.0}
    assert index.scores_for("!!!", [1]) == {1: 0.0}


def test_scores_stay_exact_while_the_collection_changes_under_cached_norms() -> None:
    index = TfidfCosine()
    docs = {i: f"service {i} latency p99 above budget after deploy" for i in range(30)}
    for k, d in docs.items():
        index.add(k, d)
    query = docs[0]
    assert index.scores_for(query, [0])[0] == pytest.approx(1.0, abs=1e-5)  # norms now cached
    for k in range(1, 30):  # replace almost everything in place: the size never changes
        docs[k] = f"certificate {k} expired on the edge balancer"
        index.add(k, docs[k])
    got = index.scores_for(query, list(docs))
    ref = _reference(list(docs.values()), query)
    assert [got[k] for k in docs] == pytest.approx(list(ref), abs=1e-5)
    for k in range(25, 30):
        index.remove(k)
        del docs[k]
    got = index.scores_for(query, list(docs))
    assert [got[k] for k in docs] == pytest.approx(list(_reference(list(docs.values()), query)), abs=1e-5)
    assert max(got.values()) <= 1.0


def test_a_document_without_words_scores_zero_and_breaks_nothing() -> None:
    index = TfidfCosine()
    index.add(1, "")
    index.add(2, "? !")
    index.add(3, "disk full on db-7")
    assert index.scores_for("disk full", [1, 2, 3]) == {
        1: 0.0,
        2: 0.0,
        3: pytest.approx(index.scores_for("disk full", [3])[3]),
    }
    assert index.scores_for("disk full", [3])[3] > 0


def test_buffers_are_compacted_after_many_replacements(monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.tfidf as T

    monkeypatch.setattr(T, "COMPACT_MIN", 10)
    index = TfidfCosine()
    docs = {k: f"note {k} about disk pressure on db-{k}" for k in range(5)}
    for round_ in range(6):  # every document rewritten six times: old entries pile up, then go
        for k in docs:
            docs[k] = f"revision {round_} of note {k}: disk pressure on db-{k} after deploy v{round_}"
            index.add(k, docs[k])
        index.scores_for("disk", [0])  # hash and append
    live = sum(n for _, n in index._span.values())
    assert len(index._idx) < 2 * live + 10  # garbage was dropped
    query = "disk pressure after deploy v5"
    got = index.scores_for(query, list(docs))
    assert [got[k] for k in docs] == pytest.approx(list(_reference(list(docs.values()), query)), abs=1e-5)
