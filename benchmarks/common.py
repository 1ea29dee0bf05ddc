"""Shared by the benchmark scripts: data location, an on-disk embedding cache, metrics, a temp KB."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from retrieval.encoder import Encoder  # noqa: E402
from retrieval.text import sha256  # noqa: E402


def data_dir(arg: str | None) -> Path:
    """``--data``, else $INCIDENT_BOT_DATA, else ``<repo>/../shared/data``; exits clearly if absent."""
    path = Path(arg or os.environ.get("INCIDENT_BOT_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        sys.exit(f"benchmark data not found at {path}: pass --data DIR or set INCIDENT_BOT_DATA")
    return path


class DiskCachedEncoder:
    """Wraps an encoder; embeddings are stored under benchmarks/.cache keyed by content hash, so a
    rerun re-encodes nothing. ``misses`` counts the texts actually encoded in this run."""

    def __init__(self, inner: Encoder, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.dim = inner.dim
        self.misses = 0
        CACHE.mkdir(parents=True, exist_ok=True)
        self.path = CACHE / f"emb-{sha256(self.name)[:16]}.npz"
        self._cache: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self._cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
        self._dirty = False

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        keys = [sha256(self.name, t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
        if todo:
            vecs = self.inner.encode(list(todo.values()), batch_size=batch_size, show_progress=show_progress)
            self._cache.update(zip(todo.keys(), vecs, strict=True))
            self.misses += len(todo)
            self._dirty = True
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._cache[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if self._dirty:
            if self.path.exists():  # another run may have added entries meanwhile: keep them
                with np.load(self.path) as z:
                    for k, v in zip(z["keys"].tolist(), z["vecs"], strict=True):
                        self._cache.setdefault(k, v)
            keys = list(self._cache)
            np.savez(self.path, keys=np.array(keys), vecs=np.vstack([self._cache[k] for k in keys]))
            self._dirty = False


def temp_kb(encoder: Any, **kwargs: Any) -> Any:
    """A KnowledgeBase on a fresh, migrated SQLite file (the same code path as the bot)."""
    from bot.advice.knowledge import KnowledgeBase
    from bot.kernel.db import make_engine, make_sessionmaker, upgrade

    path = Path(tempfile.mkdtemp(prefix="kb-bench-")) / "kb.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return KnowledgeBase(sessions=make_sessionmaker(engine), encoder=encoder, **kwargs)


def rank_metrics(ranks: list[int | None], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k and MRR from the 1-based rank of the single relevant item (None = not retrieved)."""
    n = max(len(ranks), 1)
    out = {f"recall@{k}": round(sum(1 for r in ranks if r is not None and r <= k) / n, 4) for k in ks}
    out["mrr"] = round(sum(1.0 / r for r in ranks if r) / n, 4)
    out["n"] = len(ranks)
    return out


def rank_of(order: Sequence[Any], target: Any) -> int | None:
    for i, item in enumerate(order, start=1):
        if item == target:
            return i
    return None
