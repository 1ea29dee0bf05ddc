"""Encoder backends: the ONNX path must give the same vectors as sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.encoder import HashingEncoder, SentenceTransformerEncoder, make_encoder


def test_make_encoder_picks_the_backend() -> None:
    assert isinstance(make_encoder(backend="torch"), SentenceTransformerEncoder)
    pytest.importorskip("onnxruntime")
    from retrieval.onnx_encoder import OnnxEncoder

    enc = make_encoder(backend="onnx-int8")
    assert isinstance(enc, OnnxEncoder) and enc.name.endswith("onnx-int8")


def test_hashing_encoder_is_normalised_and_deterministic() -> None:
    a = HashingEncoder().encode(["disk full on broker 3", ""])
    assert np.allclose(np.linalg.norm(a[0]), 1.0) and not a[1].any()
    assert np.array_equal(a, HashingEncoder().encode(["disk full on broker 3", ""]))


@pytest.mark.slow
def test_onnx_matches_sentence_transformers(real_encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from retrieval.onnx_encoder import OnnxEncoder

    texts = ["checkout 5xx after deploy", "The NameNode ran out of heap during a block report storm. " * 20]
    ref = real_encoder.encode(texts)
    fp32 = OnnxEncoder(cache_dir=tmp_path).encode(texts)
    assert np.allclose((ref * fp32).sum(axis=1), 1.0, atol=1e-4)
    int8 = OnnxEncoder(cache_dir=tmp_path, quantize=True).encode(texts)
    assert ((ref * int8).sum(axis=1) > 0.9).all()
