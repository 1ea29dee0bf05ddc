"""Unsupervised adaptation of the sentence encoder to a corpus: no queries, no labels.

A knowledge base is text we may learn from: each document's title against its body, one passage against
another of the same document, a sentence against the passage it was cut from (the Inverse Cloze Task), its
summary against its root cause and fix. Those pairs train a copy of the model with sentence-transformers'
trainer and ``MultipleNegativesRankingLoss`` (the other pairs of a batch are the negatives), on the CPU,
bounded in time: the run stops at the budget and saves what it has.

Pure library, like the rest of ``retrieval/``: documents in, a saved model folder and a report out.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.text import chunk_document
from retrieval.types import Document

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_WORDS = 4


@dataclass(frozen=True)
class AdaptConfig:
    minutes: float = 10.0  # wall-clock budget for training (saving and the pairs come on top)
    max_steps: int | None = (
        None  # a fixed amount of training (benchmarks: the same work however busy the CPU)
    )
    batch_size: int = 32
    max_pairs: int = 20_000
    epochs: int = 1
    learning_rate: float = 2e-5
    max_seq_length: int = 128
    seed: int = 0


@dataclass
class AdaptReport:
    path: str
    sha256: str
    base: str
    documents: int
    pairs: int
    pair_kinds: dict[str, int]
    steps: int
    planned_steps: int
    train_seconds: float
    stopped_by_budget: bool
    loss_first: float | None = None
    loss_last: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _words(text: str) -> int:
    return len(text.split())


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if _words(s.strip()) >= MIN_WORDS]


def training_pairs(
    docs: Sequence[Document], *, max_pairs: int = 20_000, seed: int = 0
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(anchor, positive) pairs from the documents' own text, and how many of each kind.

    - ``title``: the title (or summary) against each passage of the body: short text → the document;
    - ``ict``: a sentence against the rest of its passage (Inverse Cloze Task, the sentence removed);
    - ``passage``: one passage against the next one of the same document;
    - ``cause``: the title against the root cause, and against the fix, where the document states them.
    Pairs are shuffled with ``seed`` and capped at ``max_pairs``, taking kinds round-robin so no kind crowds
    the others out on a large corpus.
    """
    rng = random.Random(seed)
    kinds: dict[str, list[tuple[str, str]]] = {"title": [], "ict": [], "passage": [], "cause": []}
    for d in docs:
        title = (d.title or "").strip()
        chunks = [c for c in chunk_document(d) if _words(c) >= MIN_WORDS]
        body_chunks = [c for c in chunks if c.strip() != title]
        if title and _words(title) >= 2:
            kinds["title"] += [(title, c) for c in body_chunks[:3]]
            for extra in (d.root_cause, d.resolution):
                if extra and _words(extra) >= MIN_WORDS:
                    kinds["cause"].append((title, extra.strip()))
        kinds["passage"] += [(a, b) for a, b in zip(body_chunks, body_chunks[1:], strict=False)][:3]
        for chunk in body_chunks[:3]:
            sents = _sentences(chunk)
            if len(sents) < 2:
                continue
            s = rng.choice(sents)
            rest = " ".join(x for x in sents if x is not s)
            kinds["ict"].append((s, rest))
    for pairs in kinds.values():
        rng.shuffle(pairs)
    out: list[tuple[str, str]] = []
    taken = dict.fromkeys(kinds, 0)
    cursors = dict.fromkeys(kinds, 0)
    while len(out) < max_pairs and any(cursors[k] < len(v) for k, v in kinds.items()):
        for k, v in kinds.items():
            if cursors[k] < len(v) and len(out) < max_pairs:
                out.append(v[cursors[k]])
                cursors[k] += 1
                taken[k] += 1
    rng.shuffle(out)
    return out, taken


def model_hash(path: Path) -> str:
    """SHA-256 over the saved model's files (names and bytes, sorted): the version a database records."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def adapt(
    docs: Sequence[Document],
    *,
    base_path: str,
    out_dir: Path,
    config: AdaptConfig = AdaptConfig(),
    progress: bool = True,
    on_estimate: Callable[[str], None] | None = None,
) -> AdaptReport:
    """Train a copy of the model at ``base_path`` on ``docs`` and save it in ``out_dir``.

    The trainer shows its progress bar when ``progress``; ``on_estimate`` gets a line after the first steps
    with the planned steps and the time they would take against the budget. Raises ``ValueError`` when the
    documents give too few pairs to learn from (fewer than two batches)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import TrainerCallback

    pairs, kinds = training_pairs(docs, max_pairs=config.max_pairs, seed=config.seed)
    if len(pairs) < 2 * config.batch_size:
        raise ValueError(
            f"{len(docs)} documents give {len(pairs)} training pairs; adapting needs at least "
            f"{2 * config.batch_size} (import more documents first)"
        )
    torch.manual_seed(config.seed)
    model = SentenceTransformer(base_path, device="cpu")
    model.max_seq_length = config.max_seq_length
    data = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    budget = config.minutes * 60.0
    planned = config.epochs * (len(pairs) // config.batch_size)
    if config.max_steps is not None:
        planned = min(planned, config.max_steps)
    track: dict[str, Any] = {"t0": None, "stopped": False, "losses": []}

    class Budget(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            track["t0"] = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            st = state
            elapsed = time.monotonic() - track["t0"]
            if st.global_step == min(3, planned) and on_estimate is not None:
                per = elapsed / st.global_step
                full = per * planned
                on_estimate(
                    f"{planned} steps planned, ~{per:.2f} s each: ~{full / 60:.1f} min for all of them; "
                    f"budget {config.minutes:g} min"
                    + (f" (stops after ~{int(budget / per)} steps)" if full > budget else "")
                )
            if elapsed >= budget:
                track["stopped"] = True
                control.should_training_stop = True

        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs")
            if logs and "loss" in logs:
                track["losses"].append(float(logs["loss"]))

    work = Path(out_dir).with_name(Path(out_dir).name + ".trainer")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        max_steps=planned if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=0.1,  # a float: the fraction of the steps (transformers 5)
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=not progress,
        use_cpu=True,
        seed=config.seed,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[Budget()],
    )
    t0 = time.monotonic()
    result = trainer.train()
    seconds = time.monotonic() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    losses = track["losses"]
    return AdaptReport(
        path=str(out_dir),
        sha256=model_hash(out_dir),
        base=str(base_path),
        documents=len(docs),
        pairs=len(pairs),
        pair_kinds=kinds,
        steps=int(result.global_step),
        planned_steps=planned,
        train_seconds=round(seconds, 1),
        stopped_by_budget=bool(track["stopped"]),
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
    )
