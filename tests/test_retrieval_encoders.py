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


def test_onnx_backend_runs_without_torch(tmp_path: Path) -> None:
    """The [onnx] extra needs no torch: the graph is written from the safetensors with NumPy and the
    tokenizer is `tokenizers`'. A child process where `import torch` (and sentence-transformers,
    transformers) fails builds, loads and encodes; its vectors match the same code run here."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import subprocess
    import sys

    from retrieval.onnx_encoder import OnnxEncoder

    script = (
        "import sys, numpy as np\n"
        "for m in ('torch', 'sentence_transformers', 'transformers'): sys.modules[m] = None\n"
        "from retrieval.onnx_encoder import OnnxEncoder\n"
        f"v = OnnxEncoder(cache_dir=__import__('pathlib').Path({str(tmp_path / 'child')!r}))"
        ".encode(['disk full on broker 3', 'checkout 5xx after deploy'])\n"
        "np.save(sys.argv[1], v)\n"
    )
    out = tmp_path / "v.npy"
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=300)  # noqa: S603
    child = np.load(out)
    assert child.shape == (2, 384) and np.allclose(np.linalg.norm(child, axis=1), 1.0, atol=1e-5)
    assert list((tmp_path / "child").rglob("model.onnx"))
    here = OnnxEncoder(cache_dir=tmp_path / "here").encode(
        ["disk full on broker 3", "checkout 5xx after deploy"]
    )
    assert np.allclose(child, here, atol=1e-6)
    assert float(child[0] @ child[1]) < 0.9  # two different texts, two different vectors


def test_torch_backend_without_its_packages_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from retrieval.errors import RetrievalError

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # type: ignore[arg-type]
    with pytest.raises(RetrievalError, match=r"\[torch\] extra"):
        SentenceTransformerEncoder().encode(["x"])
