"""Which embedding model answers: the bundled one, or the active model adapted to this knowledge base.

``kb adapt`` trains a copy of the bundled model on the knowledge base's own text (retrieval/adapt.py), records
it in ``embedding_models`` with its path and hash, and re-embeds every chunk into ``staged_embeddings`` while
queries go on with the old model. Only when every chunk has its new embedding does one transaction copy them
onto ``knowledge_chunks`` and mark the model active; from then on each replica's knowledge base sees the new
active version in its change signature and switches its encoder (``SwitchableEncoder``) before it reloads,
so every replica answers with the same version. ``kb adapt --rollback`` re-embeds with the bundled model the
same way and retires the adapted one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel import audit, locks
from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.errors import ConfigError
from bot.kernel.models import EmbeddingModel, KnowledgeChunk, StagedEmbedding
from retrieval.encoder import Encoder, SentenceTransformerEncoder
from retrieval.text import sha256

log = logging.getLogger(__name__)

BUNDLED = "bundled"  # the version name of the model the package ships
ACTIVE = "active"
LOCK = "kb:embedding-model"


class SwitchableEncoder:
    """The one encoder the knowledge base and the runbook index share; ``switch`` swaps the model under it
    (a query in flight finishes with the model it started with)."""

    def __init__(self, inner: Encoder, version: str = BUNDLED) -> None:
        self._inner = inner
        self.version = version
        self.name = inner.name
        self.dim = inner.dim
        self._lock = threading.Lock()

    @property
    def inner(self) -> Encoder:
        return self._inner

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return self._inner.encode(texts, batch_size=batch_size, show_progress=show_progress)

    def switch(self, inner: Encoder, version: str) -> None:
        with self._lock:
            self._inner, self.version, self.name, self.dim = inner, version, inner.name, inner.dim


def active_model(session: Session) -> EmbeddingModel | None:
    return session.scalars(select(EmbeddingModel).where(EmbeddingModel.status == ACTIVE).limit(1)).first()


def active_version(session: Session) -> str:
    row = active_model(session)
    return row.version if row is not None else BUNDLED


def adapted_encoder(row: EmbeddingModel, *, backend: str = "torch", check_hash: bool = True) -> Encoder:
    """The encoder of a recorded model; a missing folder or a hash that differs from the record is a
    ``ConfigError`` naming both (a replica must never answer with a model other than the recorded one)."""
    from retrieval.adapt import model_hash

    path = Path(row.path)
    if not path.is_dir():
        raise ConfigError(
            f"adapted model {row.version} is recorded at {path}, which does not exist here: every replica "
            "needs the same folder (a shared volume), or run `incident-bot kb adapt --rollback`"
        )
    if check_hash and model_hash(path) != row.sha256:
        raise ConfigError(f"adapted model {row.version} at {path} does not match its recorded sha256")
    return SentenceTransformerEncoder(str(path), backend=backend, name=f"adapted:{row.version}")


Loader = Callable[[EmbeddingModel | None], Encoder]


def stage(
    sessions: sessionmaker[Session],
    encoder: Encoder,
    version: str,
    *,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every chunk that has no staged embedding for ``version`` yet, committing per batch (so a
    stopped run resumes where it was). Returns how many chunks were embedded."""
    done = 0
    with sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(KnowledgeChunk)) or 0)
    while True:
        with transaction(sessions) as s:
            rows = s.execute(_unstaged(version).limit(batch)).all()
            if not rows:
                return done
            _stage_rows(s, encoder, version, rows)
        done += len(rows)
        if progress is not None:
            progress(done, total)


def _unstaged(version: str):  # type: ignore[no-untyped-def]
    staged = exists().where(
        and_(StagedEmbedding.chunk_id == KnowledgeChunk.id, StagedEmbedding.model_version == version)
    )
    return select(KnowledgeChunk.id, KnowledgeChunk.text).where(~staged).order_by(KnowledgeChunk.id)


def _stage_rows(s: Session, encoder: Encoder, version: str, rows: Sequence[tuple[int, str]]) -> None:
    vecs = encoder.encode([t for _, t in rows], batch_size=64)
    s.add_all(
        StagedEmbedding(
            chunk_id=cid, model_version=version, content_hash=sha256(encoder.name, text), embedding=v
        )
        for (cid, text), v in zip(rows, vecs, strict=True)
    )
    s.flush()


def switch(sessions: sessionmaker[Session], encoder: Encoder, version: str, *, actor: str) -> int:
    """Make ``version`` the one that answers, in one transaction: chunks added since the staging are embedded
    here, every chunk gets its staged embedding, the model rows change status. Returns the chunks switched."""
    with transaction(sessions) as s:
        locks.xact_lock(s, [LOCK])
        late = s.execute(_unstaged(version)).all()
        if late:
            _stage_rows(s, encoder, version, late)
        mine = and_(StagedEmbedding.chunk_id == KnowledgeChunk.id, StagedEmbedding.model_version == version)
        n = s.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult
            update(KnowledgeChunk)
            .where(exists().where(mine))
            .values(
                embedding=select(StagedEmbedding.embedding).where(mine).scalar_subquery(),
                content_hash=select(StagedEmbedding.content_hash).where(mine).scalar_subquery(),
            )
        ).rowcount
        s.execute(delete(StagedEmbedding).where(StagedEmbedding.model_version == version))
        previous = active_version(s)
        s.execute(update(EmbeddingModel).where(EmbeddingModel.status == ACTIVE).values(status="retired"))
        if version != BUNDLED:
            s.execute(
                update(EmbeddingModel)
                .where(EmbeddingModel.version == version)
                .values(status=ACTIVE, activated_at=utcnow())
            )
        audit.record(
            s, event="kb.model_switched", actor=actor, previous=previous, version=version, chunks=int(n or 0)
        )
    log.info("knowledge base switched from %s to %s (%s chunks)", previous, version, n)
    return int(n or 0)
