"""Block Kit for KPI summaries (slash command, weekly digest, App Home): pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.reports import summary
from bot.reports.kpi import Durations, KpiReport
from bot.reports.summary import Style
from handlers.blocks.mrkdwn import escape


def dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def durations(d: Durations) -> str:
    if d.count == 0:
        return "n/a (0)"
    return f"avg {dur(d.mean_s)} · p50 {dur(d.median_s)} · p90 {dur(d.p90_s)} (n={d.count})"


SLACK = Style(durations=durations, seconds=dur, ratio=pct, strong=lambda s: f"*{s}*", capitalize=True)


def period_label(r: KpiReport) -> str:
    days = round((r.until - r.since).total_seconds() / 86400)
    scope = f" · service {escape(r.service)}" if r.service else ""
    return f"last {days}d ({r.since:%Y-%m-%d} → {r.until:%Y-%m-%d}){scope}"


def kpi_summary(
    r: KpiReport, previous: KpiReport | None = None, *, title: str = "Incident KPIs"
) -> list[Block]:
    """The catalogue's KPIs, a section block per summary section. ``previous`` adds ▲/▼ changes."""
    out: list[Block] = [
        HeaderBlock(text=title),
        ContextBlock(elements=[MarkdownTextObject(text=period_label(r))]),
    ]
    for _, group in groupby(summary.lines(r, SLACK, previous), key=itemgetter(0)):
        out.append(SectionBlock(text=MarkdownTextObject(text="\n".join(text for _, text in group))))
    if r.by_service:
        top = sorted(r.by_service.items(), key=lambda kv: -kv[1].incidents)[:8]
        per = " · ".join(
            f"{escape(svc, max_len=60)} {x.incidents} (MTTR {dur(x.mttr.mean_s)})" for svc, x in top
        )
        out.append(ContextBlock(elements=[MarkdownTextObject(text=f"By service: {per}")]))
    return out


def kpi_fallback(r: KpiReport) -> str:
    return f"KPIs {period_label(r)}: {summary.headline(r, SLACK)}"


def digest(
    r: KpiReport,
    previous: KpiReport,
    top: list[tuple[str, str, int]],
    stale: list[tuple[int, str, str, float]],
    stale_hours: int,
) -> list[Block]:
    """Weekly digest: KPIs vs the previous period, top recurring incidents, open incidents older than N hours.
    ``stale`` is (incident id, severity, title, age hours)."""
    out = kpi_summary(r, previous, title="Weekly incident digest")
    rec = "\n".join(f"• {escape(t)} ({escape(s)}): {n}×" for s, t, n in top) or "none"
    out.append(SectionBlock(text=MarkdownTextObject(text=f"*Top recurring*\n{rec}")))
    old = (
        "\n".join(f"• #{i} [{escape(sev)}] {escape(t)}: open {h:.0f}h" for i, sev, t, h in stale[:15])
        or "none"
    )
    out.append(SectionBlock(text=MarkdownTextObject(text=f"*Open longer than {stale_hours}h*\n{old}")))
    return out


def as_dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def age(created: datetime, now: datetime) -> str:
    hours = (now - created).total_seconds() / 3600
    return f"{hours * 60:.0f}m" if hours < 1 else (f"{hours:.0f}h" if hours < 48 else f"{hours / 24:.0f}d")
