"""``incident-bot noise``: what the alert stream delivered and what triage made of it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from bot.kernel.config import Settings


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], settings: Callable[[], Settings]
) -> None:
    p = subparsers.add_parser(
        "noise", help="noise accounting per source and service (deliveries, duplicates, …)"
    )
    p.add_argument("--since", default="7d", help="how far back: 7d, 12h, 2w, 30m (hour buckets; default 7d)")
    p.add_argument("--json", action="store_true", help="print the JSON object documented in the README")
    p.set_defaults(func=lambda args: cmd_noise(args, settings()))


def cmd_noise(args: argparse.Namespace, settings: Settings) -> int:
    from bot.kernel.db import make_engine, make_sessionmaker, upgrade
    from bot.kernel.db_types import utcnow
    from bot.kernel.periods import parse_period
    from bot.triage import noise

    try:
        since = parse_period(args.since)
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        now = utcnow()
        with make_sessionmaker(engine)() as session:
            rep = noise.report(session, since=now - since, until=now)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    t = rep["totals"]
    reduction = "n/a" if t["noise_reduction"] is None else f"{t['noise_reduction'] * 100:.1f}%"
    print(
        f"since {rep['since']}: {t['deliveries']} deliveries, {t['duplicates']} duplicates, "
        f"{t['flaps_suppressed']} flaps suppressed, {t['grouped']} grouped, {t['incidents_opened']} incidents "
        f"(noise reduction {reduction}), {t['changes']} change events, "
        f"{t['orphaned_resolves']} orphaned resolves (not deliveries)"
    )
    for g in rep["groups"]:
        print(
            f"  {g['source']:14} {g['service'] or '-':24} deliveries={g['deliveries']} "
            f"duplicates={g['duplicates']} flaps={g['flaps_suppressed']} grouped={g['grouped']} "
            f"incidents={g['incidents_opened']}"
        )
    return 0
