"""``kb`` subcommands: import, search, stats, refit, adapt."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.importers import FORMATS, SourceError, parse_mapping
from retrieval.types import Query

if TYPE_CHECKING:
    from bot.advice.knowledge import KnowledgeBase
    from bot.kernel.config import Settings

BuildKb = Callable[[], "KnowledgeBase"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    build_kb: BuildKb,
    settings: Callable[[], Settings],
) -> None:
    kb = subparsers.add_parser("kb", help="the knowledge base of past incidents")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    imp = sub.add_parser("import", help="import past incidents (JSONL, CSV, Jira, ServiceNow, PagerDuty)")
    imp.add_argument("path", type=Path)
    imp.add_argument("--format", dest="fmt", choices=FORMATS, default="auto")
    imp.add_argument(
        "--map",
        dest="mapping",
        default=None,
        help='rename source columns, e.g. text=Description,title=Summary,id="Issue id"',
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp.set_defaults(func=lambda args: cmd_import(args, build_kb))

    se = sub.add_parser("search", help="find similar past incidents")
    se.add_argument("text")
    se.add_argument("--top", type=int, default=5)
    se.add_argument("--service", default=None, help="prefer documents of this service")
    se.add_argument("--alert", default=None, help="prefer documents about this alert name")
    se.add_argument(
        "--json", action="store_true", help='print a JSON list of {"id", "title", "score", "why"}'
    )
    se.set_defaults(func=lambda args: cmd_search(args, build_kb))

    st = sub.add_parser("stats", help="document and chunk counts, backend")
    st.set_defaults(func=lambda args: cmd_stats(args, build_kb))

    rf = sub.add_parser("refit", help="refit the fusion weights on 👍/👎 feedback and report before/after")
    rf.add_argument("--min-samples", type=int, default=30)
    rf.add_argument("--dry-run", action="store_true", help="report only; keep the current weights")
    rf.set_defaults(func=lambda args: cmd_refit(args, build_kb))

    from incident_bot.cli import adapt

    adapt.add_parser(sub, build_kb, settings)


def cmd_import(args: argparse.Namespace, build_kb: BuildKb) -> int:
    try:
        mapping = parse_mapping(args.mapping)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kb = build_kb()
    try:
        report = kb.import_file(
            args.path, fmt=args.fmt, mapping=mapping or None, progress=not args.no_progress
        )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line, message in report.errors:
        print(f"line {line}: {message}", file=sys.stderr)
    print(report.summary())
    return 0 if report.imported or report.unchanged else 1  # 1: nothing usable in the file


def cmd_search(args: argparse.Namespace, build_kb: BuildKb) -> int:
    kb = build_kb()
    matches = kb.search(Query(text=args.text, service=args.service, alert_name=args.alert), top_k=args.top)
    model = kb.encoder.version  # which embedding model answered (bundled, or an adapted version)
    if args.json:
        print(json.dumps([{**m.as_json(), "model": model} for m in matches], ensure_ascii=False))
        return 0
    if not matches:
        print("no matches")
    for rank, m in enumerate(matches, start=1):
        print(f"{rank}. {m.id}  {m.title}  (score {m.score:.3f})")
        for reason in m.why:
            print(f"     - {reason}")
    print(f"(embedding model: {model})")
    return 0


def cmd_stats(args: argparse.Namespace, build_kb: BuildKb) -> int:
    kb = build_kb()
    print(
        json.dumps(
            {
                "documents": kb.count(),
                "chunks": kb.chunk_count(),
                "backend": kb.backend,
                "encoder": kb.encoder.name,
                "model_version": kb.encoder.version,
                "weights": kb.weights.as_dict(),
            }
        )
    )
    return 0


def cmd_refit(args: argparse.Namespace, build_kb: BuildKb) -> int:
    kb = build_kb()
    report = kb.refit_weights(min_samples=args.min_samples, apply=not args.dry_run)
    if report is None:
        print(f"not enough feedback yet (need {args.min_samples} rated suggestions with both 👍 and 👎)")
        return 1
    print(report.summary())
    return 0
