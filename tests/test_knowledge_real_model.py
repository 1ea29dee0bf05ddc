"""With the real all-MiniLM-L6-v2, and on the public data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.advice.knowledge import KnowledgeBase
from bot.kernel.db import make_engine, make_sessionmaker
from retrieval.importers import iter_documents
from retrieval.types import Query
from tests.conftest import SHARED_DATA

FIXTURES = Path(__file__).parent / "fixtures" / "kb"


@pytest.mark.slow
def test_real_model_ranks_the_related_incident_first(sqlite_url: str, real_encoder) -> None:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(sessions=make_sessionmaker(make_engine(sqlite_url)), encoder=real_encoder)
    kb.import_file(FIXTURES / "incidents.jsonl")
    # no words in common with KB-5's title beyond "auth": the model has to carry it
    top = kb.search(
        Query(text="sign-in broken, callers report the auth server's cert is no longer valid"), top_k=2
    )
    assert top[0].id == "KB-5"
    semantic = float(next(w for w in top[0].why if w.startswith("semantic ")).split()[1])
    assert semantic > 0.4
    assert top[0].score > top[1].score


def test_hadoop_jira_export_imports_cleanly() -> None:
    path = SHARED_DATA / "dup_tickets" / "hadoop_bugs.csv"
    if not path.exists():
        pytest.skip("public data not present (../shared/data)")
    rows = list(iter_documents(path, fmt="jira"))
    docs = [d for _, d, _ in rows if d is not None]
    assert len(docs) == 2503
    assert all(d.created_at is not None and d.created_at.tzinfo is not None for d in docs)
    assert len({d.id for d in docs}) == 2503
