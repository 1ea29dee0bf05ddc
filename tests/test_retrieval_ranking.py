"""Pure retrieval units: lexical index, chunking, dense index, fusion and reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from retrieval.encoder import HashingEncoder
from retrieval.fusion import FEATURES, Weights, confidence, explain, metadata_features
from retrieval.lexical import LexicalIndex
from retrieval.ranker import HybridRanker
from retrieval.text import CHUNK_CHARS, chunk_document, document_hash, tokenize
from retrieval.types import Document, Query
from retrieval.vector_index import NumpyVectorIndex

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_tokenize_drops_stopwords_and_splits_identifiers() -> None:
    toks = tokenize("The org.apache.hadoop.FileSystem threw an OutOfMemoryError")
    assert "the" not in toks and "an" not in toks
    assert "org.apache.hadoop.filesystem" in toks and "filesystem" in toks and "hadoop" in toks


def test_bm25_title_field_outweighs_body() -> None:
    idx = LexicalIndex()
    idx.add(1, {"title": "kafka consumer lag", "text": "unrelated words here"})
    idx.add(2, {"title": "unrelated words here", "text": "kafka consumer lag"})
    idx.add(3, {"title": "nothing", "text": "else"})
    top, best = idx.top(tokenize("kafka lag"), 3)
    assert list(sorted(top, key=lambda k: -top[k]))[:2] == [1, 2]
    assert best == pytest.approx(top[1])
    assert 3 not in top


def test_lexical_update_and_remove_mask_old_rows() -> None:
    idx = LexicalIndex()
    idx.add(1, {"title": "disk full"})
    idx.add(1, {"title": "certificate expired"})  # update: the old text must stop matching
    assert idx.top(tokenize("disk"), 5)[0] == {}
    assert 1 in idx.top(tokenize("certificate"), 5)[0]
    idx.remove(1)
    assert idx.top(tokenize("certificate"), 5)[0] == {}
    assert len(idx) == 0


def test_shared_terms_prefers_phrases_and_rare_terms() -> None:
    idx = LexicalIndex()
    for i in range(10):
        idx.add(i, {"text": "checkout error" if i else "checkout connection pool exhausted error"})
    terms = idx.shared_terms(
        tokenize("connection pool exhausted on checkout"), "checkout connection pool exhausted error"
    )
    assert terms[0] == "connection pool"
    assert terms[-1] == "checkout"  # in every document: least distinctive, listed last


def test_long_notes_are_chunked_and_rca_gets_its_own_passage() -> None:
    para = "The replica fell behind while the batch job ran. " * 12
    doc = Document(
        id="x",
        title="Replication lag",
        text="\n\n".join([para] * 4),
        root_cause="vacuum blocked by a long transaction",
        resolution="killed the transaction",
    )
    chunks = chunk_document(doc)
    assert len(chunks) >= 4
    assert all(len(c) <= CHUNK_CHARS + len(doc.title) + 1 for c in chunks)
    assert all(c.startswith("Replication lag") for c in chunks)
    assert any("Root cause: vacuum blocked" in c for c in chunks)
    assert chunks[-1] == "Replication lag"  # a long document's title is a passage of its own
    short = Document(id="y", title="Disk full", text="broker 3 disk full")
    assert chunk_document(short) == ["Disk full\nbroker 3 disk full"]


def test_document_hash_changes_with_content_only() -> None:
    a = Document(id="1", title="t", text="x", meta={"a": 1})
    assert document_hash(a) == document_hash(Document(id="1", title="t", text="x", meta={"a": 1}))
    assert document_hash(a) != document_hash(Document(id="1", title="t", text="y", meta={"a": 1}))
    assert document_hash(a) != document_hash(Document(id="1", title="t", text="x", meta={"a": 2}))


def test_numpy_index_max_pools_chunks_per_document() -> None:
    idx = NumpyVectorIndex(3)
    idx.add(1, np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    idx.add(2, np.array([[0.8, 0.6, 0]], dtype=np.float32))
    top = idx.top(np.array([0, 1, 0], dtype=np.float32), 5)
    assert top == {1: pytest.approx(1.0), 2: pytest.approx(0.6)}
    idx.add(1, np.array([[0, 0, 1]], dtype=np.float32))  # replaced
    assert idx.scores_for(np.array([0, 1, 0], dtype=np.float32), [1, 9]) == {1: 0.0, 9: 0.0}
    for k in range(3, 3000):  # growth keeps earlier rows
        idx.add(k, np.array([[0, 0, 1]], dtype=np.float32))
    assert idx.top(np.array([0.8, 0.6, 0], dtype=np.float32), 1) == {2: pytest.approx(1.0)}


def test_metadata_features_and_recency() -> None:
    q = Query(
        text="x",
        service="Checkout",
        alert_name="HighErrorRate",
        labels={"env": "prod", "team": "pay"},
        model="fraud",
        now=NOW,
    )
    f = metadata_features(
        q,
        "checkout",
        {"alert_name": "higherrorrate", "labels": {"env": "prod"}, "model": "fraud"},
        NOW - timedelta(days=180),
        True,
        180.0,
    )
    assert f["service"] == 1.0 and f["alert"] == 1.0 and f["model"] == 1.0
    assert f["labels"] == 0.5 and f["recency"] == pytest.approx(0.5) and f["has_rca"] == 1.0
    none = metadata_features(Query(text="x"), "checkout", {}, None, False, 180.0)
    assert all(v == 0.0 for v in none.values())


def test_weights_score_is_linear_and_roundtrips() -> None:
    w = Weights()
    feats = {name: 0.0 for name in FEATURES}
    base = w.score(feats)
    feats["service"] = 1.0
    assert w.score(feats) - base == pytest.approx(w.service)
    assert Weights.from_dict(w.as_dict()) == w


def test_confidence_separates_good_from_lucky() -> None:
    assert confidence({"dense": 0.75, "lexical": 0.9}) == "strong match"
    assert confidence({"dense": 0.15, "lexical": 0.1}).startswith("weak match")


def test_explain_names_every_contributing_feature() -> None:
    doc = Document(
        id="A",
        title="t",
        text="x",
        service="checkout",
        resolution="rollback of v1.42",
        root_cause="pool too small",
        created_at=NOW - timedelta(days=3),
        meta={"alert_name": "HighErrorRate", "model": "m1", "labels": {"env": "prod"}},
    )
    q = Query(
        text="x", service="checkout", alert_name="HighErrorRate", model="m1", labels={"env": "prod"}, now=NOW
    )
    feats = {
        "dense": 0.81,
        "lexical": 0.7,
        "title": 0.9,
        "service": 1.0,
        "alert": 1.0,
        "model": 1.0,
        "labels": 1.0,
    }
    why = explain(q, doc, feats, ["connection pool", "exhausted"])
    for expected in (
        "same service checkout",
        "same alert HighErrorRate",
        "same model m1",
        "same labels env=prod",
        "semantic 0.81",
        "similar title",
        "shared terms: connection pool, exhausted",
        "resolved by: rollback of v1.42",
        "root cause: pool too small",
    ):
        assert expected in why
    assert any(w.startswith("from 2026-05-29 (3 days ago)") for w in why)


def _ranker_with(docs: list[Document], weights: Weights | None = None) -> tuple[HybridRanker, HashingEncoder]:
    enc = HashingEncoder()
    r = HybridRanker(NumpyVectorIndex(enc.dim), weights=weights)
    for i, d in enumerate(docs):
        r.add(i, d, enc.encode(chunk_document(d)))
    return r, enc


def test_fusion_metadata_breaks_a_text_tie() -> None:
    docs = [
        Document(id="a", title="error rate high", text="errors", service="search"),
        Document(id="b", title="error rate high", text="errors", service="checkout"),
    ]
    r, enc = _ranker_with(docs)
    q = Query(text="error rate high", service="checkout")
    lookup = {i: d for i, d in enumerate(docs)}
    matches = r.search(q, enc.encode([q.text])[0], top_k=2, load=lambda ks: {k: lookup[k] for k in ks})
    assert [m.id for m in matches] == ["b", "a"]
    assert matches[0].score - matches[1].score == pytest.approx(Weights().service)


def test_lexical_weight_zero_gives_dense_only_order() -> None:
    docs = [
        Document(id=str(i), title=f"note {i}", text=t)
        for i, t in enumerate(["disk full on broker", "broker disk almost full warning", "cpu throttling"])
    ]
    q = Query(text="broker disk full")
    dense_only, enc = _ranker_with(docs, Weights(lexical=0.0, title=0.0, recency=0.0, has_rca=0.0))
    qv = enc.encode([q.text])[0]
    lookup = dict(enumerate(docs))
    got = [m.id for m in dense_only.search(q, qv, top_k=3, load=lambda ks: {k: lookup[k] for k in ks})]
    sims = enc.encode([f"{d.title}\n{d.text}" for d in docs]) @ qv
    assert got[: len(got)] == [docs[i].id for i in np.argsort(-sims)][: len(got)]


def test_pca_first_stage_keeps_exact_top_k() -> None:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((24, 384)).astype(
        np.float32
    )  # vectors on a low-dimensional manifold, like text
    vecs = rng.standard_normal((6000, 24)).astype(np.float32) @ basis + 0.05 * rng.standard_normal(
        (6000, 384)
    ).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    exact, fast = (
        NumpyVectorIndex(384, pca_min_rows=10**9),
        NumpyVectorIndex(384, pca_min_rows=2000, pca_dim=32),
    )
    for i, v in enumerate(vecs):
        exact.add(i, v[None])
        fast.add(i, v[None])
    assert fast._proj is not None and exact._proj is None
    overlap = []
    for qi in range(50):
        q = vecs[qi * 7]
        a, b = exact.top(q, 10), fast.top(q, 10)
        overlap.append(len(set(a) & set(b)) / 10)
        for k in set(a) & set(b):
            assert a[k] == pytest.approx(b[k], abs=1e-6)  # rescored exactly
    assert np.mean(overlap) >= 0.98


def test_relevant_paragraph_of_a_long_note_is_not_drowned() -> None:
    filler = [
        f"Paragraph {i}: " + "the quarterly capacity review covered budgets, vendors and hiring plans. " * 5
        for i in range(12)
    ]
    long_doc = Document(
        id="long",
        title="Quarterly review notes",
        text="\n\n".join(
            [*filler[:6], "Kafka consumer lag grew after a rebalance storm on orders.", *filler[6:]]
        ),
    )
    short_doc = Document(id="short", title="Kafka broker disk usage", text="broker disk at 80 percent")
    r, enc = _ranker_with([long_doc, short_doc])
    q = Query(text="kafka consumer lag rebalance storm")
    qv = enc.encode([q.text])[0]
    lookup = {0: long_doc, 1: short_doc}
    top = r.search(q, qv, top_k=2, load=lambda ks: {k: lookup[k] for k in ks})[0]
    whole = float(enc.encode([f"{long_doc.title}\n{long_doc.text}"])[0] @ qv)
    assert top.id == "long"
    assert top.features["dense"] > max(5 * whole, whole + 0.1)  # the best passage, not the whole note
