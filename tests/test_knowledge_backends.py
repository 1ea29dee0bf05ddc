"""The two dense backends agree, and feedback is stored, excludes, and refits."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.knowledge import KnowledgeBase
from bot.kernel.db import make_engine, make_sessionmaker
from bot.kernel.models import Incident
from retrieval.encoder import HashingEncoder
from retrieval.fusion import FEATURES
from retrieval.types import Document, Query
from tests.conftest import pg_url_from_template

WORDS = (
    "disk cpu memory pool connection timeout kafka broker lag certificate dns resolver pod oom "
    "checkout payments auth search deploy rollback index migration cache redis eviction"
).split()


def _corpus(n: int) -> list[Document]:
    rng = random.Random(3)
    return [
        Document(
            id=f"D{i}",
            title=" ".join(rng.sample(WORDS, 3)),
            text=" ".join(rng.choices(WORDS, k=30)),
            service=rng.choice(["checkout", "payments", "auth"]),
        )
        for i in range(n)
    ]


@pytest.mark.postgres
def test_pgvector_and_numpy_return_the_same_top_k(pg_server: str) -> None:
    engine = make_engine(pg_url_from_template(pg_server))
    sessions = make_sessionmaker(engine)
    enc = HashingEncoder()
    pg = KnowledgeBase(sessions=sessions, encoder=enc)
    assert pg.backend == "pgvector"
    pg.upsert(_corpus(300))
    local = KnowledgeBase(sessions=sessions, encoder=enc, backend="numpy")
    local.load()
    rng = random.Random(5)
    agree = 0
    for _ in range(20):
        q = Query(text=" ".join(rng.sample(WORDS, 4)), service="checkout")
        a = [(m.id, round(m.score, 4)) for m in pg.search(q, top_k=5)]
        b = [(m.id, round(m.score, 4)) for m in local.search(q, top_k=5)]
        agree += a == b
    engine.dispose()
    assert agree >= 19  # HNSW is approximate; allow one tie-order difference


def test_pgvector_backend_needs_postgres(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL"):
        KnowledgeBase(
            sessions=make_sessionmaker(make_engine(sqlite_url)), encoder=HashingEncoder(), backend="pgvector"
        )


def _incident(sessions: sessionmaker[Session]) -> int:
    with sessions() as s, s.begin():
        return int(
            s.execute(
                insert(Incident).returning(Incident.id),
                {"title": "t", "severity": "critical", "source": "test", "group_key": "g"},
            ).scalar_one()
        )


def test_feedback_excludes_unhelpful_matches_for_that_incident(sessions: sessionmaker[Session]) -> None:
    kb = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    kb.upsert(_corpus(20))
    inc, other = _incident(sessions), _incident(sessions)
    q = Query(text="kafka broker lag")
    first = kb.search(q, top_k=1)[0]
    kb.record_feedback(inc, "document", first.id, "U1", False, first.features)
    kb.record_feedback(inc, "runbook", "disk-full", "U1", True, None)
    assert kb.excluded_for(inc) == {first.id}
    assert kb.excluded_for(other) == set()
    again = kb.search(Query(text=q.text, exclude_ids=frozenset(kb.excluded_for(inc))), top_k=5)
    assert first.id not in [m.id for m in again]
    kb.record_feedback(
        inc, "document", first.id, "U1", True, first.features
    )  # the same user changes their mind
    assert kb.excluded_for(inc) == set()


def test_refit_reports_before_after_and_learns_from_feedback(sessions: sessionmaker[Session]) -> None:
    kb = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    inc = _incident(sessions)
    assert kb.refit_weights() is None  # not enough feedback yet
    rng = random.Random(1)
    for i in range(80):
        helpful = i % 2 == 0
        feats = {name: rng.random() * 0.3 for name in FEATURES}
        # users find same-service matches helpful whatever the text says; lexical is noise here
        feats["service"] = 1.0 if helpful else 0.0
        feats["lexical"] = rng.random()
        kb.record_feedback(inc, "document", f"D{i}", "U1", helpful, feats)
    before = kb.weights
    report = kb.refit_weights(min_samples=30)
    assert report is not None
    assert report.n_train + report.n_test == 80 and report.n_test >= 20
    assert report.after_auc >= report.before_auc
    assert report.after_auc > 0.95
    assert report.after_weights.service > report.after_weights.lexical
    assert ("applied" in report.summary()) == report.improved
    assert kb.weights == (report.after_weights if report.improved else before)


def _suggestions_with_clicks(sessions: sessionmaker[Session], n: int, *, old: int = 0) -> KnowledgeBase:
    """``n`` suggestions whose stored features say "same service" exactly for the 👍, each clicked with no
    features of its own; the first ``old`` were stored by a ranker without the TF-IDF feature."""
    from bot.kernel.models import Suggestion

    kb = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    inc = _incident(sessions)
    with sessions() as s, s.begin():
        for i in range(n):
            feats = {name: 0.1 for name in FEATURES} | {"service": 1.0 if i % 2 else 0.0}
            if i < old:
                feats.pop("tfidf")
            s.add(
                Suggestion(
                    incident_id=inc,
                    target_kind="document",
                    target_id=f"D{i}",
                    rank=1,
                    score=1.0,
                    why=["x"],
                    features=feats,
                )
            )
    for i in range(n):
        kb.record_feedback(inc, "document", f"D{i}", "U1", bool(i % 2), None)
    return kb


def test_refit_uses_suggestion_features_when_the_click_carried_none(sessions: sessionmaker[Session]) -> None:
    kb = _suggestions_with_clicks(sessions, 40)
    report = kb.refit_weights(min_samples=30)
    assert report is not None and report.n_train + report.n_test == 40
    assert report.after_auc > 0.9  # the suggestion's features (service agreement) predicted the 👍
    assert report.after_weights.service > 0


def test_refit_ignores_clicks_recorded_before_a_feature_existed(sessions: sessionmaker[Session]) -> None:
    kb = _suggestions_with_clicks(sessions, 60, old=40)
    report = kb.refit_weights(min_samples=15)
    assert report is not None and report.n_train + report.n_test == 20  # only the 20 complete samples
    assert kb.refit_weights(min_samples=21) is None  # and 20 are not enough for 21
