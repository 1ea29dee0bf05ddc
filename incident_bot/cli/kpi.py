"""``incident-bot kpi --since 30d [--service S] [--json] [--chart PATH]``: the same figures as the slash
command and the Prometheus gauges (computed in bot/reports/kpi.py, listed in bot/reports/catalogue.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.periods import parse_period
from bot.reports import catalogue, summary
from bot.reports.kpi import Durations, KpiReport, daily, last
from bot.reports.summary import Style

Sessions = Callable[[], sessionmaker[Session]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], sessions: Sessions) -> None:
    p = subparsers.add_parser(
        "kpi", help="incident KPIs (MTTD, MTTA, MTTR, noise funnel, MLOps) over a period"
    )
    p.add_argument("--since", default="30d", help="period before now: 7d, 30d, 90d, 12h, 2w (default 30d)")
    p.add_argument("--service", default=None, help="only this service")
    p.add_argument(
        "--json", action="store_true", help="print the report as JSON (with a per-service breakdown)"
    )
    p.add_argument("--chart", type=Path, default=None, help="also write the chart PNG here")
    p.set_defaults(func=lambda args: cmd_kpi(args, sessions))


def cmd_kpi(args: argparse.Namespace, sessions: Sessions) -> int:
    try:
        period = parse_period(args.since)
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return 2
    maker = sessions()
    try:
        with maker() as session:
            rep = last(session, period=period, service=args.service, per_service=args.service is None)
            series = (
                daily(session, since=rep.since, until=rep.until, service=args.service) if args.chart else None
            )
    finally:  # the engine was made for this command: close its connections (a PostgreSQL one stays open)
        bind = maker.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()
    if series is not None:
        from bot.reports.chart import render_png

        args.chart.write_bytes(render_png(rep, series))
    if args.json:
        print(json.dumps(catalogue.report_json(rep), indent=2))
    else:
        print("\n".join(text_lines(rep)))
    if args.chart:
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


def _d(d: Durations) -> str:
    if not d.count:
        return "n/a (n=0)"
    mean, median, p90 = (
        0.0 if s is None else s / 60 for s in (d.mean_s, d.median_s, d.p90_s)
    )  # set when count > 0
    return f"mean {mean:.1f} min, median {median:.1f}, p90 {p90:.1f} (n={d.count})"


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


PLAIN = Style(
    durations=_d,
    seconds=lambda s: "n/a" if s is None else f"{s / 60:.1f} min",
    ratio=_p,
    arrow="->",
    sep="; ",
    pad=34,
)  # ASCII only: any terminal, any pipe


def text_lines(r: KpiReport) -> list[str]:
    period = f"period {r.since:%Y-%m-%d %H:%M} -> {r.until:%Y-%m-%d %H:%M} UTC"
    return [
        period + (f", service {r.service}" if r.service else ""),
        *(text for _, text in summary.lines(r, PLAIN)),
    ]
