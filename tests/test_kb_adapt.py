"""``kb adapt`` (issue 19): training pairs from the corpus alone, the re-embed-then-switch protocol on SQLite
and PostgreSQL (replicas follow the database's active version, a chunk added meanwhile is not left behind,
rollback), and the whole command end to end with the real model on the sample knowledge base."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from bot.advice import encoders
from bot.advice.knowledge import KnowledgeBase
from bot.kernel.config import SAMPLE_DATA, Settings
from bot.kernel.db import make_engine, make_sessionmaker, transaction
from bot.kernel.models import EmbeddingModel, KnowledgeChunk, StagedEmbedding
from incident_bot.cli.kb import register
from retrieval.adapt import training_pairs
from retrieval.encoder import HashingEncoder
from retrieval.importers import iter_documents
from retrieval.text import sha256
from retrieval.types import Document, Query


class ShiftedEncoder(HashingEncoder):
    """A second, different deterministic model (the hashing encoder's vectors, rolled): stands in for an
    adapted model in the protocol tests, so they need no training."""

    name = "shifted-test-encoder"

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return np.roll(super().encode(texts), 7, axis=1)


def _docs() -> list[Document]:
    return [d for _, d, _ in iter_documents(SAMPLE_DATA / "knowledge_base.jsonl") if d is not None]


def test_training_pairs_come_from_the_documents_alone() -> None:
    docs = _docs()
    pairs, kinds = training_pairs(docs, max_pairs=10_000, seed=3)
    assert len(pairs) == sum(kinds.values()) and set(kinds) == {"title", "ict", "passage", "cause"}
    assert all(kinds[k] > 0 for k in ("title", "ict", "cause"))
    titles = {d.title for d in docs}
    corpus = " ".join(f"{d.title} {d.text} {d.root_cause or ''} {d.resolution or ''}" for d in docs)
    for a, p in pairs:  # every side is text of the corpus (no query, no label), anchor != positive
        assert a != p and (a in titles or a.split()[0] in corpus) and p.split()[0] in corpus
    again, _ = training_pairs(docs, max_pairs=10_000, seed=3)
    assert again == pairs  # deterministic for a seed
    capped, capped_kinds = training_pairs(docs, max_pairs=40, seed=3)
    assert len(capped) == 40 and min(capped_kinds.values()) >= 5  # round-robin: no kind crowded out


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.dispose()


def _kb(url: str, engines: list[Engine], loader: encoders.Loader | None = None) -> KnowledgeBase:
    engines.append(make_engine(url))
    sessions = make_sessionmaker(engines[-1])
    shifted = ShiftedEncoder()
    base = HashingEncoder()
    return KnowledgeBase(
        sessions=sessions,
        encoder=base,
        loader=loader or (lambda row: base if row is None else shifted),
    )


def _register(kb: KnowledgeBase, version: str) -> None:
    with transaction(kb.sessions) as s:
        s.add(EmbeddingModel(version=version, path="/nowhere", sha256="0" * 64, base="test", report={}))


def test_switch_replicas_follow_and_rollback(db_url: str, engines: list[Engine]) -> None:
    a, b = _kb(db_url, engines), _kb(db_url, engines)  # two replicas on one database
    a.upsert(_docs()[:20])
    b.load()
    query = Query(text="kafka consumer lag growing after a deploy")
    before = [m.id for m in b.search(query, top_k=3)]
    shifted = ShiftedEncoder()
    _register(a, "adapted-test")
    assert encoders.stage(a.sessions, shifted, "adapted-test") == a.chunk_count()
    a.upsert(_docs()[20:25])  # imported between the staging and the switch, with the old model
    assert b.encoder.version == encoders.BUNDLED  # nothing switched yet: queries keep the old model
    n = encoders.switch(a.sessions, shifted, "adapted-test", actor="test")
    assert n == a.chunk_count()  # the late chunks were embedded in the switch, not left on the old model
    with a.sessions() as s:
        rows = s.execute(
            select(KnowledgeChunk.text, KnowledgeChunk.embedding, KnowledgeChunk.content_hash)
        ).all()
        assert s.scalar(select(func.count()).select_from(StagedEmbedding)) == 0
        assert s.scalars(select(EmbeddingModel.status)).all() == ["active"]
    for text, emb, chash in rows:
        assert np.allclose(emb, shifted.encode([text])[0], atol=1e-6) and chash == sha256(shifted.name, text)
    b.refresh_seconds = 0.0  # the other replica notices at its next check and switches before reloading
    after = [m.id for m in b.search(query, top_k=3)]
    assert b.encoder.version == "adapted-test" and b.encoder.name == shifted.name
    assert after == before  # both models see the same corpus consistently (rolled vectors: same cosines)
    # An import on a replica that has not noticed yet still writes the active model's embedding.
    c = _kb(db_url, engines)
    c._loaded = True  # never loaded: its encoder is still the bundled one
    c.upsert([Document(id="late-1", title="Disk full on kafka broker", text="Retention misconfigured zqx7.")])
    assert c.encoder.version == "adapted-test"
    with c.sessions() as s:
        text, emb = s.execute(
            select(KnowledgeChunk.text, KnowledgeChunk.embedding).where(KnowledgeChunk.text.like("%zqx7%"))
        ).one()
    assert np.allclose(emb, shifted.encode([text])[0], atol=1e-6)
    # Rollback: re-embed with the bundled model, retire the adapted one.
    encoders.stage(a.sessions, a.bundled, encoders.BUNDLED)
    encoders.switch(a.sessions, a.bundled, encoders.BUNDLED, actor="test")
    with a.sessions() as s:
        assert s.scalars(select(EmbeddingModel.status)).all() == ["retired"]
        text, emb = s.execute(select(KnowledgeChunk.text, KnowledgeChunk.embedding).limit(1)).one()
    assert np.allclose(emb, HashingEncoder().encode([text])[0], atol=1e-6)
    b._checked_at = 0.0
    b.search(query, top_k=3)
    assert b.encoder.version == encoders.BUNDLED


def test_recorded_model_that_is_missing_or_altered_is_refused(tmp_path: Path) -> None:
    from bot.kernel.errors import ConfigError

    row = EmbeddingModel(version="adapted-x", path=str(tmp_path / "gone"), sha256="0" * 64, base="b")
    with pytest.raises(ConfigError, match="does not exist here"):
        encoders.adapted_encoder(row)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    row.path = str(tmp_path / "m")
    with pytest.raises(ConfigError, match="does not match its recorded sha256"):
        encoders.adapted_encoder(row)


@pytest.mark.slow
def test_kb_adapt_end_to_end_with_the_real_model(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command a user runs: real model, real trainer (a few steps), re-embed, switch, search, rollback."""
    from retrieval.encoder import SentenceTransformerEncoder

    settings = Settings(_env_file=None, database_url=sqlite_url, adapted_models_dir=tmp_path / "models")
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    bundled = SentenceTransformerEncoder()

    def build() -> KnowledgeBase:
        kb = KnowledgeBase(sessions=sessions, encoder=bundled)
        kb.load()
        return kb

    parser = argparse.ArgumentParser(prog="incident-bot")
    register(parser.add_subparsers(dest="command", required=True), build, lambda: settings)

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return int(args.func(args))

    assert run("kb", "import", str(SAMPLE_DATA / "knowledge_base.jsonl"), "--no-progress") == 0
    capsys.readouterr()
    assert (
        run(
            "kb",
            "adapt",
            "--minutes",
            "0.05",
            "--batch-size",
            "8",
            "--max-pairs",
            "64",
            "--json",
            "--no-progress",
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["version"].startswith("adapted-") and report["steps"] >= 1 and report["pairs"] == 64
    assert report["chunks_switched"] == build().chunk_count()
    model_dir = Path(report["path"])
    assert model_dir.is_relative_to(tmp_path / "models") and (model_dir / "config.json").exists()
    with sessions() as s:
        row = encoders.active_model(s)
        assert row is not None and row.sha256 == report["sha256"] and row.version == report["version"]
    assert run("kb", "search", "consumer lag on the payments topic", "--json", "--top", "2") == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and all(h["model"] == report["version"] for h in hits)
    fresh = build()  # a new process (replica) answers with the recorded model, loaded from its folder
    assert fresh.encoder.version == report["version"] and fresh.encoder.name.startswith("adapted:")
    assert run("kb", "adapt", "--rollback", "--json", "--no-progress") == 0
    back = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert back["switched_to"] == "bundled" and back["from"] == report["version"]
    assert build().encoder.version == encoders.BUNDLED
    engine.dispose()
