"""The KPI chart, rendered server-side to PNG (matplotlib, Agg backend: no display, thread-safe figures).

Three panels: incidents opened per day stacked by severity, the daily median MTTA/MTTR trend, and
the noise funnel (the catalogue's noise reduction KPI and the counts it comes from: deliveries → alerts →
incidents).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # before pyplot: rendering happens in a server, never on a display
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bot.intake.alerts import Severity  # noqa: E402
from bot.reports import catalogue  # noqa: E402
from bot.reports.kpi import Daily, KpiReport  # noqa: E402

SEVERITY_COLOUR: dict[str, str] = {
    Severity.CRITICAL: "#d62728",
    Severity.HIGH: "#ff7f0e",
    Severity.WARNING: "#e6b800",
    Severity.INFO: "#1f77b4",
}
FUNNEL = "noise_reduction_ratio"  # the catalogue's KPI the third panel draws, with its stages
BLUES = ["#1f77b4", "#6baed6", "#c6dbef"]  # funnel stages, dark to light


def render_png(r: KpiReport, d: Daily) -> bytes:
    fig = Figure(figsize=(12, 4), dpi=100, layout="constrained")  # no pyplot: no global figure registry
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.4, 1.4, 1])
    scope = f" · {r.service}" if r.service else ""
    fig.suptitle(f"Incident KPIs {r.since:%Y-%m-%d} → {r.until:%Y-%m-%d}{scope}")

    x = list(range(len(d.days)))
    labels = [f"{day:%m-%d}" for day in d.days]
    bottom = [0] * len(x)
    severities = sorted(d.by_severity, key=lambda s: (Severity.rank_of(s), s))
    for sev in severities:
        counts = d.by_severity[sev]
        ax1.bar(x, counts, bottom=bottom, label=sev, color=SEVERITY_COLOUR.get(sev, "#7f7f7f"))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax1.set_title("Incidents per day, by severity")
    ax1.set_ylabel("incidents")
    ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylim(0, max([*bottom, 1]) * 1.35)  # headroom: the legend sits above the bars, not on them
    _days_axis(ax1, x, labels)
    if severities:
        ax1.legend(fontsize=8, loc="upper left")  # fixed: "best" searches the data and warns when slow

    for series, name, colour in (
        (d.mtta_median_s, "MTTA (median)", "#2ca02c"),
        (d.mttr_median_s, "MTTR (median)", "#9467bd"),
    ):
        pts = [(i, v / 60) for i, v in zip(x, series, strict=True) if v is not None]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name, color=colour)
    ax2.set_title("MTTA / MTTR trend")
    ax2.set_ylabel("minutes")
    tops = [v / 60 for series in (d.mtta_median_s, d.mttr_median_s) for v in series if v is not None]
    ax2.set_ylim(0, max([*tops, 1.0]) * 1.35)  # headroom for the legend
    _days_axis(ax2, x, labels)
    if ax2.lines:
        ax2.legend(fontsize=8, loc="upper left")

    funnel = catalogue.kpi(FUNNEL)  # its stages are the counts the catalogue shows it with
    stages = [catalogue.kpi(name) for name in funnel.of]
    values = [s.value(r) for s in stages]
    colours = [BLUES[i % len(BLUES)] for i in range(len(stages))]
    bars = ax3.barh([s.label for s in stages][::-1], values[::-1], color=colours[::-1])
    ax3.bar_label(bars, labels=[str(v) for v in values[::-1]], padding=3)
    ratio = funnel.value(r)
    ax3.set_title(f"Noise funnel ({funnel.label} {'n/a' if ratio is None else f'{ratio * 100:.0f}%'})")
    ax3.set_xlim(0, max(values + [1]) * 1.2)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _days_axis(ax: Axes, x: list[int], labels: list[str]) -> None:
    step = max(1, len(x) // 10)
    ax.set_xticks(x[::step], labels[::step], rotation=45, fontsize=8)
    ax.set_xlim(-0.5, max(len(x) - 0.5, 0.5))
