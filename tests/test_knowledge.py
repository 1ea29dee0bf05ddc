"""KnowledgeBase on SQLite (NumPy index) and real PostgreSQL (pgvector HNSW)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.advice.knowledge import KnowledgeBase
from bot.kernel.models import KnowledgeChunk, KnowledgeDocument
from retrieval.encoder import HashingEncoder
from retrieval.types import Document, Query

FIXTURES = Path(__file__).parent / "fixtures" / "kb"


class CountingEncoder(HashingEncoder):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts, batch_size=batch_size)


@pytest.fixture
def kb(sessions: sessionmaker[Session]) -> KnowledgeBase:
    kb = KnowledgeBase(sessions=sessions, encoder=CountingEncoder())
    kb.load()
    report = kb.import_file(FIXTURES / "incidents.jsonl")
    assert report.inserted == 5
    return kb


def test_backend_follows_dialect(kb: KnowledgeBase, sessions: sessionmaker[Session]) -> None:
    dialect = sessions.kw["bind"].dialect.name
    assert kb.backend == ("pgvector" if dialect == "postgresql" else "numpy")


def test_related_document_ranks_first_with_reasons(kb: KnowledgeBase) -> None:
    matches = kb.search(
        Query(text="checkout 503 connection pool exhausted pgbouncer", service="checkout"), top_k=3
    )
    assert matches[0].id == "KB-1"
    why = matches[0].why
    assert "same service checkout" in why
    assert any(w.startswith("semantic ") for w in why)
    shared = next(w for w in why if w.startswith("shared terms: "))
    assert "pool" in shared and "exhausted" in shared
    assert any(w.startswith("resolved by: Rolled back checkout v2.3") for w in why)
    assert set(matches[0].features) >= {"dense", "lexical", "service", "recency", "has_rca"}
    assert matches[0].features["service"] == 1.0
    assert len({m.id for m in matches}) == len(matches)  # per document, not per chunk
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_reimport_unchanged_is_not_reencoded_and_never_duplicates(kb: KnowledgeBase) -> None:
    enc = kb.encoder.inner
    assert isinstance(enc, CountingEncoder)
    before = len(enc.texts)
    report = kb.import_file(FIXTURES / "incidents.jsonl")
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 5)
    assert len(enc.texts) == before
    assert kb.count() == 5


def test_update_replaces_chunks_and_index(kb: KnowledgeBase, sessions: sessionmaker[Session]) -> None:
    doc = Document(
        id="KB-3",
        title="Disk full on kafka broker 3",
        text="Zookeeper session expiry storm made brokers drop out of the ISR.",
        service="kafka",
    )
    report = kb.upsert([doc])
    assert (report.inserted, report.updated) == (0, 1)
    with sessions() as s:
        pk = s.scalar(select(KnowledgeDocument.id).where(KnowledgeDocument.external_id == "KB-3"))
        n_chunks = s.scalar(
            select(func.count()).select_from(KnowledgeChunk).where(KnowledgeChunk.document_id == pk)
        )
    assert n_chunks == 1
    assert kb.count() == 5
    top = kb.search(Query(text="zookeeper session expiry ISR"), top_k=1)
    assert top[0].id == "KB-3"


def test_single_rca_upsert_is_searchable_without_reload(
    kb: KnowledgeBase, sessions: sessionmaker[Session]
) -> None:
    rca = Document(
        id="incident-77",
        title="Feature store stale: materialisation job stuck",
        text="Online features were 6 hours old; the materialisation job was stuck on a lock.",
        service="features",
        root_cause="lock held by a crashed job",
        resolution="killed the job",
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    enc = kb.encoder.inner
    assert isinstance(enc, CountingEncoder)
    before = len(enc.texts)
    report = kb.upsert([rca], source="rca")
    assert report.inserted == 1
    assert len(enc.texts) - before == 1  # one short document, one chunk encoded
    top = kb.search(Query(text="materialisation job stuck stale features"), top_k=1)
    assert top[0].id == "incident-77"
    assert top[0].document.created_at is not None and top[0].document.created_at.tzinfo is not None
    with sessions() as s:
        assert (
            s.scalar(select(KnowledgeDocument.source).where(KnowledgeDocument.external_id == "incident-77"))
            == "rca"
        )


def test_load_rebuilds_same_ranking(kb: KnowledgeBase, sessions: sessionmaker[Session]) -> None:
    q = Query(text="certificate expired x509 auth", now=datetime(2026, 7, 1, tzinfo=UTC))
    first = [(m.id, round(m.score, 5)) for m in kb.search(q, top_k=5)]
    fresh = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    fresh.load()
    assert [(m.id, round(m.score, 5)) for m in fresh.search(q, top_k=5)] == first


def test_excluded_ids_are_not_suggested(kb: KnowledgeBase) -> None:
    q = Query(text="checkout connection pool exhausted", exclude_ids=frozenset({"KB-1"}))
    assert "KB-1" not in [m.id for m in kb.search(q, top_k=5)]


def test_concurrent_searches_and_upserts(kb: KnowledgeBase) -> None:
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for _ in range(20):
                assert kb.search(Query(text="disk full kafka retention"), top_k=2)[0].id == "KB-3"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    kb.upsert(Document(id=f"X-{i}", title=f"unrelated note {i}", text="lunch menu") for i in range(30))
    for t in threads:
        t.join()
    assert not errors
    assert kb.count() == 35


def test_duplicate_ids_in_one_batch_count_once(sessions: sessionmaker[Session]) -> None:
    kb = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    docs = [Document(id="D", title="first", text="a"), Document(id="D", title="second", text="b")]
    report = kb.upsert(docs)
    assert (report.inserted, report.updated) == (1, 1)
    assert kb.count() == 1
    assert kb.search(Query(text="second"), top_k=1)[0].title == "second"


def test_naive_created_at_is_refused(sessions: sessionmaker[Session]) -> None:
    kb = KnowledgeBase(sessions=sessions, encoder=HashingEncoder())
    with pytest.raises(ValueError, match="naive datetime"):
        kb.upsert([Document(id="N", title="t", text="x", created_at=datetime(2026, 1, 1))])  # noqa: DTZ001
    assert kb.count() == 0
