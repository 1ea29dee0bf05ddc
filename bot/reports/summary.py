"""The KPI summary as lines of text, composed from the catalogue (bot/reports/catalogue.py) in an output's
style: Slack mrkdwn (handlers/blocks/kpi.py) or plain text (``incident-bot kpi``).

The catalogue says where a KPI sits (its line and role); a :class:`Style` says how the output writes a
figure of each unit, so a new KPI is written by every output without either naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.reports import catalogue
from bot.reports.catalogue import Kpi, Line, Role, Unit
from bot.reports.kpi import Durations, KpiReport


@dataclass(frozen=True, kw_only=True)
class Style:
    """How an output writes the summary's figures."""

    durations: Callable[[Durations], str]  # a SECONDS figure: count, mean, median, p90
    seconds: Callable[[float | None], str]  # one duration (a mean, a change of one)
    ratio: Callable[[float | None], str]  # a ratio as a percentage
    strong: Callable[[str], str] = str  # a line's named figures (bold in Slack)
    capitalize: bool = False  # the first word of each line
    arrow: str = "→"  # also replaces the catalogue's "→" in details
    sep: str = " · "  # between the figures of a line
    pad: int = 0  # a duration line's head is padded to this width (plain text: the durations line up)


def lines(r: KpiReport, style: Style, previous: KpiReport | None = None) -> list[tuple[str, str]]:
    """(section, text) per summary line, in catalogue order. ``previous`` adds each trend KPI's change
    (▲/▼ for durations and ratios, "previous period N" for counts)."""
    placed: dict[Line, list[Kpi]] = {}
    for k in catalogue.KPIS:
        if k.line is not None:
            placed.setdefault(k.line, []).append(k)
    return [(line.section, _line(line, kpis, r, style, previous)) for line, kpis in placed.items()]


def headline(r: KpiReport, style: Style) -> str:
    """The headline KPIs in one line: "8 incidents, MTTD 20.4m, …"."""
    out = []
    for k in catalogue.KPIS:
        if k.headline:
            v = k.value(r)
            out.append(
                f"{v} {k.headline}" if k.unit is Unit.COUNT else f"{k.headline} {_one(k, _mean(k, v), style)}"
            )
    return ", ".join(out)


def _line(line: Line, kpis: list[Kpi], r: KpiReport, style: Style, previous: KpiReport | None) -> str:
    main = [k for k in kpis if k.role is not Role.BREAKDOWN]
    parts = [_figure(k, r, style, first=not n and not line.title) for n, k in enumerate(main)]
    breakdown = [f"{_value(k, r, style)} {k.label}" for k in kpis if k.role is Role.BREAKDOWN]
    if breakdown and parts:  # of the line's first figure
        parts[0] += f" ({', '.join(breakdown)})"
    elif breakdown:
        parts = breakdown
    changes = ""  # ▲/▼ after the line; a count's previous value is a figure of its own
    for k in [k for k in kpis if k.trend] if previous is not None else []:
        assert previous is not None
        if k.unit is Unit.COUNT:
            parts.append(f"previous period {k.value(previous)}")
        else:
            changes += _change(_mean(k, k.value(r)), _mean(k, k.value(previous)), k, style)
    text = style.sep.join(parts)
    if line.title:
        text = f"{style.strong(_first(line.title, style))} {text}"
    return text + changes


def _figure(k: Kpi, r: KpiReport, style: Style, *, first: bool) -> str:
    label, value = (_first(k.label, style) if first else k.label), _value(k, r, style)
    if k.role is Role.HEAD:
        head = style.strong(label) + (f" ({k.detail.replace('→', style.arrow)})" if k.detail else "")
        text = f"{head.ljust(style.pad) if k.unit is Unit.SECONDS else head} {value}"
    elif k.role is Role.FUNNEL:
        stages = f" {style.arrow} ".join(f"{_value(s, r, style)} {s.label}" for s in map(catalogue.kpi, k.of))
        text = f"{stages}: {label} {value}"
    elif k.role in (Role.TALLY, Role.BREAKDOWN):
        text = f"{value} {label}"
    else:
        text = f"{label} {value}"
    if k.of and k.role is not Role.FUNNEL:
        text += " (" + " / ".join(f"{_value(s, r, style)} {s.label}" for s in map(catalogue.kpi, k.of)) + ")"
    return text + (f" ({k.note})" if k.note else "")


def _value(k: Kpi, r: KpiReport, style: Style) -> str:
    v = k.value(r)
    if k.unit is Unit.SECONDS:
        return style.durations(v)
    if k.unit is Unit.RATE:
        return f"{style.ratio(v.value)} ({v.numerator}/{v.denominator})"
    return style.ratio(v) if k.unit is Unit.RATIO else str(v)


def _mean(k: Kpi, v: Any) -> float | None:
    """The one number a KPI's change and headline are told by: a duration's mean, a rate's value."""
    figure = v.mean_s if k.unit is Unit.SECONDS else (v.value if k.unit is Unit.RATE else v)
    return None if figure is None else float(figure)


def _one(k: Kpi, x: float | None, style: Style) -> str:
    """One number in the KPI's unit (a mean, a change)."""
    if k.unit is Unit.SECONDS:
        return style.seconds(x)
    return str(x) if k.unit is Unit.COUNT else style.ratio(x)


def _change(now: float | None, before: float | None, k: Kpi, style: Style) -> str:
    if now is None or before is None:
        return ""
    diff = now - before
    return f" {'▲' if diff > 0 else ('▼' if diff < 0 else '=')}{_one(k, abs(diff), style)}"


def _first(word: str, style: Style) -> str:
    return word[:1].upper() + word[1:] if style.capitalize else word
