"""``incident-bot kpi --since 30d [--service S] [--json] [--chart PATH]``: the same figures as the slash
command and the Prometheus gauges (one definition: bot/reports/kpi.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.reports.kpi import Durations, KpiReport, daily, last, parse_period

Sessions = Callable[[], sessionmaker[Session]]


def register(subparsers: argparse._SubParsersAction, sessions: Sessions) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("kpi", help="incident KPIs (MTTD, MTTA, MTTR, noise funnel, MLOps) over a period")
    p.add_argument("--since", default="30d", help="period before now: 7d, 30d, 90d, 12h, 2w (default 30d)")
    p.add_argument("--service", default=None, help="only this service")
    p.add_argument("--json", action="store_true", help="print the report as JSON (with a per-service breakdown)")
    p.add_argument("--chart", type=Path, default=None, help="also write the chart PNG here")
    p.set_defaults(func=lambda args: cmd_kpi(args, sessions))


def cmd_kpi(args: argparse.Namespace, sessions: Sessions) -> int:
    try:
        period = parse_period(args.since)
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return 2
    with sessions()() as session:
        rep = last(session, period=period, service=args.service, per_service=args.service is None)
        series = daily(session, since=rep.since, until=rep.until, service=args.service) if args.chart else None
    if series is not None:
        from bot.reports.chart import render_png

        args.chart.write_bytes(render_png(rep, series))
    if args.json:
        print(json.dumps(rep.to_json(), indent=2))
    else:
        print("\n".join(text_lines(rep)))
    if args.chart:
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0


def _d(d: Durations) -> str:
    if not d.count:
        return "n/a (n=0)"
    return f"mean {d.mean_s / 60:.1f} min, median {d.median_s / 60:.1f}, p90 {d.p90_s / 60:.1f} (n={d.count})"  # type: ignore[operator]


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def text_lines(r: KpiReport) -> list[str]:
    f, mk = r.funnel, r.model
    return [
        f"period {r.since:%Y-%m-%d %H:%M} -> {r.until:%Y-%m-%d %H:%M} UTC" + (f", service {r.service}" if r.service else ""),
        f"incidents {r.incidents} (open {r.open_incidents}, resolved {r.resolved_incidents}, resolved before opened "
        f"{r.resolved_before_opened}, flapping {r.flapping_incidents}); change events {r.change_events}",
        f"MTTD (impact start -> detection)   {_d(r.mttd)}",
        f"MTTA (detection -> ack)            {_d(r.mtta)}",
        f"MTTR (impact start -> resolved)    {_d(r.mttr)}",
        f"MTTR (detection -> resolved)       {_d(r.mttr_from_detection)}",
        f"noise funnel {f.deliveries} deliveries -> {f.unique_alerts} alerts -> {f.incidents} incidents, "
        f"reduction {_p(f.noise_reduction)}",
        f"auto-triaged {_p(r.auto_triaged.value)} ({r.auto_triaged.numerator}/{r.auto_triaged.denominator}), "
        f"auto-remediated {_p(r.auto_remediated.value)} ({r.auto_remediated.numerator}/{r.auto_remediated.denominator})",
        f"model incidents {mk.model_incidents}; drift detection latency {_d(mk.drift_detection_latency)}",
        f"model rollback rate {_p(mk.rollback_rate)} ({mk.rollbacks} rollbacks / {mk.promotions} promotions); "
        f"lead time {_d(mk.lead_time)}; linked to infra {_p(mk.linked_to_infra.value)} "
        f"({mk.linked_to_infra.numerator}/{mk.linked_to_infra.denominator})",
    ]
