"""The knowledge base service: documents and chunk embeddings in the database, a hybrid ranker in
memory (``retrieval.ranker``). Dense search runs in-process (NumPy) on SQLite and on pgvector (HNSW)
on PostgreSQL; the lexical index and document metadata are always in-process, loaded by ``load()``
and updated incrementally by ``upsert()``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from bot.advice import encoders
from bot.kernel import metrics
from bot.kernel.models import Feedback, KnowledgeChunk, KnowledgeDocument, Suggestion
from retrieval.encoder import Encoder
from retrieval.feedback import RefitReport, refit
from retrieval.fusion import FEATURES, Weights
from retrieval.importers import iter_documents
from retrieval.pgvector_index import PgVectorIndex
from retrieval.ranker import HybridRanker
from retrieval.text import chunk_document, document_hash, sha256
from retrieval.types import Document, Match, Query
from retrieval.vector_index import DenseIndex, NumpyVectorIndex

log = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "pgvector")


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)

    @property
    def imported(self) -> int:
        return self.inserted + self.updated

    def summary(self) -> str:
        return (
            f"inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}, "
            f"skipped {self.skipped}"
        )


def to_document(row: KnowledgeDocument) -> Document:
    """A stored knowledge document as retrieval's value type."""
    meta = dict(row.meta or {})
    return Document(
        id=row.external_id,
        title=row.title,
        text=row.text,
        service=row.service,
        root_cause=row.root_cause,
        resolution=row.resolution,
        created_at=row.created_at,
        url=row.url,
        meta=meta,
    )


class KnowledgeBase:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        encoder: Encoder,
        backend: str = "auto",
        weights: Weights | None = None,
        batch_docs: int = 512,
        loader: encoders.Loader | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
        self.sessions = sessions
        # The bundled model, and the one shared encoder whose model follows `embedding_models` (kb adapt).
        self.bundled = encoder.inner if isinstance(encoder, encoders.SwitchableEncoder) else encoder
        self.encoder = (
            encoder
            if isinstance(encoder, encoders.SwitchableEncoder)
            else encoders.SwitchableEncoder(encoder)
        )
        self._loader: encoders.Loader = loader or (
            lambda row: self.bundled if row is None else encoders.adapted_encoder(row)
        )
        engine = sessions.kw["bind"]
        is_pg = engine.dialect.name == "postgresql"
        if backend == "pgvector" and not is_pg:
            raise ValueError("the pgvector backend needs a PostgreSQL database")
        self.backend = "pgvector" if backend == "pgvector" or (backend == "auto" and is_pg) else "numpy"
        dense: DenseIndex = (
            PgVectorIndex(engine) if self.backend == "pgvector" else NumpyVectorIndex(encoder.dim)
        )
        self.ranker = HybridRanker(dense, weights=weights)
        self.batch_docs = batch_docs
        self._write_lock = threading.Lock()
        self._loaded = False
        # Other replicas add documents too (RCA notes, imports): every ``refresh_seconds`` a search checks a
        # cheap signature of the table and reloads the in-process index when it changed.
        self.refresh_seconds = 10.0
        self._signature: tuple[Any, ...] | None = None
        self._checked_at = 0.0
        self._model_switched = False

    @property
    def weights(self) -> Weights:
        return self.ranker.weights

    def load(self) -> None:
        """(Re)build the in-process state from the database (streamed: documents, then chunk vectors)."""
        if self.backend == "pgvector":
            dense: DenseIndex = self.ranker.dense
        else:
            dense = NumpyVectorIndex(self.encoder.dim)
        ranker = HybridRanker(dense, weights=self.ranker.weights)
        signature = self._current_signature()  # taken first: a write during the load triggers another
        with self.sessions() as s:
            self.follow_model(s)
            for row in s.scalars(select(KnowledgeDocument).execution_options(yield_per=2000)):
                ranker.add(row.id, to_document(row), None)
                s.expunge(row)
            ranker.flush()  # deferred indexing done here, not by the first query after the swap
            if isinstance(dense, NumpyVectorIndex):
                dense.reserve(int(s.scalar(select(func.count()).select_from(KnowledgeChunk)) or 0))
                q = select(KnowledgeChunk.document_id, KnowledgeChunk.embedding).order_by(
                    KnowledgeChunk.document_id, KnowledgeChunk.ordinal
                )
                current, group = -1, list[np.ndarray]()
                for doc_id, emb in s.execute(q.execution_options(yield_per=5000)):
                    if doc_id != current and group:
                        dense.add(current, np.vstack(group))
                        group = []
                    current = doc_id
                    group.append(emb)
                if group:
                    dense.add(current, np.vstack(group))
        self.ranker = ranker
        self._signature, self._checked_at = signature, time.monotonic()
        self._loaded = True
        self._model_switched = False

    def _current_signature(self) -> tuple[Any, ...]:
        with self.sessions() as s:
            return (
                *s.execute(
                    select(
                        func.count(), func.max(KnowledgeDocument.id), func.max(KnowledgeDocument.imported_at)
                    )
                ).one(),
                encoders.active_version(s),  # kb adapt switched the model: switch with it, then reload
            )

    def follow_model(self, session: Session) -> str:
        """Use the model the database says is active (every replica follows the same row). Returns it."""
        row = encoders.active_model(session)
        version = encoders.BUNDLED if row is None else row.version
        if version != self.encoder.version:
            self.encoder.switch(self._loader(row), version)
            self._model_switched = True  # the in-process vectors are the old model's: reload them
            log.info("knowledge base now answers with embedding model %s", version)
        return version

    def _refresh_if_changed(self) -> None:
        """Reload when another process changed the documents since our last load (checked at most every
        ``refresh_seconds``)."""
        if time.monotonic() - self._checked_at < self.refresh_seconds:
            return
        self._checked_at = time.monotonic()
        if self._current_signature() != self._signature:
            with self._write_lock:
                self.load()

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            with self._write_lock:
                if not self._loaded:
                    self.load()

    def count(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(KnowledgeDocument)) or 0)

    def chunk_count(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(KnowledgeChunk)) or 0)

    # -- writing -------------------------------------------------------------------------------
    def upsert(
        self,
        docs: Iterable[Document],
        *,
        progress: bool = False,
        source: str = "import",
        total: int | None = None,
    ) -> ImportReport:
        report = ImportReport()
        self._ensure_loaded()
        bar = tqdm(total=total, unit="doc", desc="import", disable=not progress, leave=False)
        with self._write_lock:
            batch: dict[str, Document] = {}
            for doc in docs:
                if doc.id in batch or len(batch) >= self.batch_docs:
                    self._write_batch(list(batch.values()), report, source)
                    bar.update(len(batch))
                    batch = {}
                batch[doc.id] = doc
            if batch:
                self._write_batch(list(batch.values()), report, source)
                bar.update(len(batch))
            if self._model_switched:  # the model changed during the writes: vectors of both are in memory
                self.load()
            self._signature = self._current_signature()  # our own writes are in the index already
        bar.close()
        return report

    def _embed(self, s: Session, texts: list[str], hashes: list[str]) -> list[np.ndarray]:
        """Embeddings for chunk texts, reusing any stored embedding with the same content hash."""
        cached: dict[str, np.ndarray] = {}
        wanted = sorted(set(hashes))
        for i in range(0, len(wanted), 500):
            q = select(KnowledgeChunk.content_hash, KnowledgeChunk.embedding).where(
                KnowledgeChunk.content_hash.in_(wanted[i : i + 500])
            )
            cached.update({h: e for h, e in s.execute(q)})
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}
        if todo:
            vecs = self.encoder.encode(list(todo.values()), batch_size=64)
            cached.update(zip(todo.keys(), vecs, strict=True))
        return [np.asarray(cached[h], dtype=np.float32) for h in hashes]

    def _write_batch(self, docs: list[Document], report: ImportReport, source: str) -> None:
        for d in docs:
            if d.created_at is not None and d.created_at.tzinfo is None:
                raise ValueError(f"document {d.id}: created_at is a naive datetime; use an aware UTC one")
            d.meta.setdefault("source", source)
        hashes = {d.id: document_hash(d) for d in docs}
        added: list[tuple[int, Document, np.ndarray]] = []
        with self.sessions() as s, s.begin():
            self.follow_model(s)  # never write an embedding of a model that no longer answers
            existing = {
                ext: (pk, h)
                for pk, ext, h in s.execute(
                    select(
                        KnowledgeDocument.id, KnowledgeDocument.external_id, KnowledgeDocument.content_hash
                    ).where(KnowledgeDocument.external_id.in_(list(hashes)))
                )
            }
            todo = [d for d in docs if existing.get(d.id, (None, None))[1] != hashes[d.id]]
            report.unchanged += len(docs) - len(todo)
            if not todo:
                return
            chunks = [chunk_document(d) for d in todo]
            flat = [c for cs in chunks for c in cs]
            chash = [sha256(self.encoder.name, c) for c in flat]
            vecs = self._embed(s, flat, chash)
            rows = [self._row(d, hashes[d.id], source) for d in todo]
            new = [r for r, d in zip(rows, todo, strict=True) if d.id not in existing]
            ids: dict[str, int] = {ext: pk for ext, (pk, _) in existing.items()}
            if new:
                res = s.execute(
                    insert(KnowledgeDocument).returning(
                        KnowledgeDocument.id, KnowledgeDocument.external_id, sort_by_parameter_order=True
                    ),
                    new,
                )
                ids.update({ext: pk for pk, ext in res})
            for r, d in zip(rows, todo, strict=True):
                if d.id in existing:
                    s.execute(update(KnowledgeDocument).where(KnowledgeDocument.id == ids[d.id]).values(**r))
            old = [ids[d.id] for d in todo if d.id in existing]
            if old:
                s.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id.in_(old)))
            chunk_rows: list[dict[str, Any]] = []
            pos = 0
            for d, cs in zip(todo, chunks, strict=True):
                doc_vecs = vecs[pos : pos + len(cs)]
                for i, (text, h, v) in enumerate(zip(cs, chash[pos : pos + len(cs)], doc_vecs, strict=True)):
                    chunk_rows.append(
                        {
                            "document_id": ids[d.id],
                            "ordinal": i,
                            "text": text,
                            "content_hash": h,
                            "embedding": v,
                        }
                    )
                added.append((ids[d.id], d, np.vstack(doc_vecs)))
                pos += len(cs)
            s.execute(insert(KnowledgeChunk), chunk_rows)
            report.updated += len(old)
            report.inserted += len(todo) - len(old)
        for key, d, v in added:  # after commit: the index never shows uncommitted documents
            self.ranker.add(key, d, v)
        self.ranker.flush()

    @staticmethod
    def _row(d: Document, content_hash: str, source: str) -> dict[str, Any]:
        return {
            "external_id": d.id,
            "source": str(d.meta.get("source") or source),
            "title": d.title,
            "text": d.text,
            "service": d.service,
            "root_cause": d.root_cause,
            "resolution": d.resolution,
            "url": d.url,
            "meta": d.meta,
            "created_at": d.created_at,
            "content_hash": content_hash,
        }

    def import_file(
        self, path: Path, *, fmt: str = "auto", mapping: dict[str, str] | None = None, progress: bool = False
    ) -> ImportReport:
        """Import a JSONL/CSV/Jira/ServiceNow/PagerDuty file; bad rows are reported and skipped.
        Raises ``retrieval.importers.SourceError`` if the file as a whole cannot be read."""
        errors: list[tuple[int, str]] = []
        rows = list(iter_documents(Path(path), fmt=fmt, mapping=mapping))

        def good() -> Iterator[Document]:
            for line, doc, err in rows:
                if doc is None:
                    errors.append((line, err or "invalid row"))
                else:
                    yield doc

        report = self.upsert(good(), progress=progress, total=sum(1 for r in rows if r[1] is not None))
        report.errors = errors
        report.skipped = len(errors)
        return report

    # -- reading -------------------------------------------------------------------------------
    def _load_docs(self, keys: list[int]) -> dict[int, Document]:
        if not keys:
            return {}
        with self.sessions() as s:
            rows = s.scalars(select(KnowledgeDocument).where(KnowledgeDocument.id.in_(keys))).all()
            return {r.id: to_document(r) for r in rows}

    def embed_query(self, query: Query) -> np.ndarray:
        return np.asarray(self.encoder.encode([query.text])[0])

    def search(self, query: Query, *, top_k: int = 3, qvec: np.ndarray | None = None) -> list[Match]:
        self._ensure_loaded()
        self._refresh_if_changed()
        if not query.text.strip() or top_k <= 0:
            return []
        with metrics.SEARCH_SECONDS.time():
            vec = self.embed_query(query) if qvec is None else qvec
            return self.ranker.search(query, vec, top_k=top_k, load=self._load_docs)

    # -- feedback ------------------------------------------------------------------------------
    def record_feedback(
        self,
        incident_id: int,
        target_kind: str,
        target_id: str,
        user_id: str,
        helpful: bool,
        features: dict[str, float] | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """Store one 👍/👎 (a user's later click on the same target replaces their earlier one).
        With ``session`` the write joins the caller's transaction (so its audit event commits with it)."""
        if session is not None:
            self._write_feedback(session, incident_id, target_kind, target_id, user_id, helpful, features)
            return
        with self.sessions() as s, s.begin():
            self._write_feedback(s, incident_id, target_kind, target_id, user_id, helpful, features)

    @staticmethod
    def _write_feedback(
        s: Session,
        incident_id: int,
        target_kind: str,
        target_id: str,
        user_id: str,
        helpful: bool,
        features: dict[str, float] | None,
    ) -> None:
        row = s.scalar(
            select(Feedback).where(
                Feedback.incident_id == incident_id,
                Feedback.target_kind == target_kind,
                Feedback.target_id == target_id,
                Feedback.user_id == user_id,
            )
        )
        if row is None:
            s.add(
                Feedback(
                    incident_id=incident_id,
                    target_kind=target_kind,
                    target_id=target_id,
                    user_id=user_id,
                    helpful=helpful,
                    features=features,
                )
            )
        else:
            row.helpful = helpful
            row.features = features if features is not None else row.features

    def excluded_for(self, incident_id: int, target_kind: str | None = None) -> set[str]:
        """Targets marked unhelpful for this incident (more 👎 than 👍): never suggested for it again."""
        q = select(Feedback.target_id, Feedback.helpful).where(Feedback.incident_id == incident_id)
        if target_kind is not None:
            q = q.where(Feedback.target_kind == target_kind)
        votes: dict[str, int] = {}
        with self.sessions() as s:
            for target, helpful in s.execute(q):
                votes[target] = votes.get(target, 0) + (1 if helpful else -1)
        return {t for t, v in votes.items() if v < 0}

    def refit_weights(
        self, *, min_samples: int = 30, apply: bool = True, seed: int = 0
    ) -> RefitReport | None:
        """Refit the fusion weights on stored document feedback; None until enough exists."""
        on = (
            (Suggestion.incident_id == Feedback.incident_id)
            & (Suggestion.target_kind == Feedback.target_kind)
            & (Suggestion.target_id == Feedback.target_id)
        )
        with self.sessions() as s:  # the features shown with the click, else those stored with the suggestion
            rows = s.execute(
                select(Feedback.features, Suggestion.features, Feedback.helpful)
                .outerjoin(Suggestion, on)
                .where(Feedback.target_kind == "document")
            ).all()
        # only clicks whose features were recorded by the current ranker: a sample from before a feature
        # existed would read it as 0 and skew both the fit and the before/after comparison
        samples = [(dict(f or g), bool(h)) for f, g, h in rows if (f or g) and set(FEATURES) <= set(f or g)]
        if len(samples) < min_samples or len({h for _, h in samples}) < 2:
            return None
        report = refit(samples, self.ranker.weights, seed=seed)
        if apply and report.improved:
            self.ranker.weights = report.after_weights
        return report
