"""The KPI catalogue: one entry per KPI, read by every output (the Slack summary, digest, App Home and
notification text; the ``incident-bot kpi`` text and ``--json``; the ``/metrics`` gauges; the chart).

An entry says what the KPI is called (``name``: the stable id, a ``kpi`` label or a gauge name on /metrics;
``label``: how the summary names it), its unit, where it sits in the summary (``line`` and ``role``) and how
its value is read from a computed :class:`~bot.reports.kpi.KpiReport`: ``path``, an attribute path that is also
where ``--json`` shows it, or ``compute``, a function of the report (``--json`` then shows it under ``name``).

Adding a KPI the report already has the data for is one entry here; one that needs new data is an entry
plus its computation in bot/reports/kpi.py. The outputs write a KPI by its unit in their own style
(bot/reports/summary.py); nothing else names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from enum import StrEnum
from operator import attrgetter
from typing import Any, get_type_hints

from bot.reports.kpi import KpiReport, jsonable


class Unit(StrEnum):
    SECONDS = "seconds"  # a Durations: count, mean, median, p90 (gauges duration_seconds / duration_samples)
    RATE = "rate"  # a Rate: a ratio with its counts (gauges rate_ratio, rate_numerator, rate_denominator)
    RATIO = "ratio"  # a bare ratio, None when undefined (a gauge of its own, named after the KPI)
    COUNT = "count"  # an int (a gauge of its own, named after the KPI)


class Role(StrEnum):
    """How a KPI sits on its summary line (the examples are Slack's mrkdwn)."""

    HEAD = "head"  # named in bold: "*MTTD* (impact start → detection) avg 20.4m …"
    PART = "part"  # label then value, after the figure before it: "lead time avg 60.0m …"
    TALLY = "tally"  # value then label: "2 incidents"
    BREAKDOWN = "breakdown"  # value then label, in parentheses after the line's first figure: "(1 open, …)"
    FUNNEL = "funnel"  # a ratio after the counts (``of``) it comes from: "19 deliveries → …: reduction 58%"


TIMING, OUTCOMES = "timing", "outcomes"  # the summary's two sections (one Slack section block each)


@dataclass(frozen=True, kw_only=True)
class Line:
    """A line of the summary. Lines show in the order the catalogue first places a KPI on them."""

    name: str
    section: str
    title: str = ""  # a leading word when the line is named by no KPI of its own ("noise", "models")


@dataclass(frozen=True, kw_only=True)
class Kpi:
    """One KPI: what it is called, its unit, where the summary shows it and how to read it from a report."""

    name: str
    label: str
    unit: Unit
    doc: str  # one sentence; the HELP of its own gauge
    path: str = ""  # attribute path on KpiReport, e.g. "model.lead_time" (also its place in --json)
    compute: Callable[[KpiReport], Any] | None = None  # or: computed from the report (in --json as ``name``)
    line: Line | None = None  # None: shown only inside another KPI (``of``) and on /metrics
    role: Role = Role.PART
    detail: str = ""  # what it measures, in parentheses after a HEAD's label: "impact start → detection"
    note: str = ""  # a caveat in parentheses after the value: "not incidents"
    of: tuple[str, ...] = ()  # a ratio's counts, by name, shown with it: "(1 rollbacks / 3 promotions)"
    trend: bool = False  # compared with the previous period where there is one (the weekly digest)
    headline: str = ""  # its name in the one-line summary (notification text); "" = not in it
    metric: bool = True  # on /metrics

    def __post_init__(self) -> None:
        if bool(self.path) == (self.compute is not None):
            raise ValueError(f"KPI {self.name!r}: give exactly one of path and compute")
        if self.role is Role.FUNNEL and (self.unit is not Unit.RATIO or not self.of):
            raise ValueError(f"KPI {self.name!r}: a funnel is a ratio with the counts it comes from (of)")

    def value(self, r: KpiReport) -> Any:
        """Its figure in ``r``: a Durations (SECONDS), a Rate (RATE), a float or None (RATIO), an int (COUNT)."""
        return self.compute(r) if self.compute is not None else attrgetter(self.path)(r)


INCIDENTS = Line(name="incidents", section=TIMING)
NOISE = Line(name="noise", section=OUTCOMES, title="noise")
AUTOMATION = Line(name="automation", section=OUTCOMES)
MODELS = Line(name="models", section=OUTCOMES, title="models")

KPIS: tuple[Kpi, ...] = (
    Kpi(
        name="incidents",
        label="incidents",
        unit=Unit.COUNT,
        path="incidents",
        line=INCIDENTS,
        role=Role.HEAD,
        trend=True,
        headline="incidents",
        doc="Incidents opened in the window (change events excluded)",
    ),
    Kpi(
        name="open_incidents",
        label="open",
        unit=Unit.COUNT,
        path="open_incidents",
        line=INCIDENTS,
        role=Role.BREAKDOWN,
        doc="Incidents opened in the window and not resolved",
    ),
    Kpi(
        name="resolved_incidents",
        label="resolved",
        unit=Unit.COUNT,
        path="resolved_incidents",
        line=INCIDENTS,
        role=Role.BREAKDOWN,
        metric=False,  # not a gauge until now: kept off /metrics
        doc="Incidents opened in the window and resolved",
    ),
    Kpi(
        name="resolved_before_opened",
        label="resolved before opened",
        unit=Unit.COUNT,
        path="resolved_before_opened",
        line=INCIDENTS,
        role=Role.BREAKDOWN,
        doc="Incidents resolved before the bot opened them (counted in MTTR)",
    ),
    Kpi(
        name="flapping_incidents",
        label="flapping",
        unit=Unit.COUNT,
        path="flapping_incidents",
        line=INCIDENTS,
        role=Role.BREAKDOWN,
        metric=False,
        doc="Incidents whose alerts flapped",
    ),
    Kpi(
        name="change_events",
        label="change events",
        unit=Unit.COUNT,
        path="change_events",
        line=INCIDENTS,
        note="not incidents",
        doc="Change events in the window (not incidents)",
    ),
    Kpi(
        name="mttd",
        label="MTTD",
        unit=Unit.SECONDS,
        path="mttd",
        line=Line(name="mttd", section=TIMING),
        role=Role.HEAD,
        detail="impact start → detection",
        trend=True,
        headline="MTTD",
        doc="Time to detect: impact start to detection",
    ),
    Kpi(
        name="mtta",
        label="MTTA",
        unit=Unit.SECONDS,
        path="mtta",
        line=Line(name="mtta", section=TIMING),
        role=Role.HEAD,
        detail="detection → ack",
        trend=True,
        headline="MTTA",
        doc="Time to acknowledge: detection to the first acknowledgement",
    ),
    Kpi(
        name="mttr",
        label="MTTR",
        unit=Unit.SECONDS,
        path="mttr",
        line=Line(name="mttr", section=TIMING),
        role=Role.HEAD,
        detail="impact start → resolved",
        trend=True,
        headline="MTTR",
        doc="Time to resolve: impact start to resolved",
    ),
    Kpi(
        name="mttr_from_detection",
        label="MTTR from detection",
        unit=Unit.SECONDS,
        path="mttr_from_detection",
        line=Line(name="mttr_from_detection", section=TIMING),
        role=Role.HEAD,
        doc="Time to resolve from detection: detection to resolved",
    ),
    Kpi(
        name="alert_deliveries",
        label="deliveries",
        unit=Unit.COUNT,
        path="funnel.deliveries",  # a funnel stage
        doc="Alert deliveries, repeats, updates and flaps included",
    ),
    Kpi(
        name="unique_alerts",
        label="alerts",
        unit=Unit.COUNT,
        path="funnel.unique_alerts",
        doc="Unique alerts",
    ),
    Kpi(
        name="noise_reduction_ratio",
        label="reduction",
        unit=Unit.RATIO,
        path="funnel.noise_reduction",
        line=NOISE,
        role=Role.FUNNEL,
        of=("alert_deliveries", "unique_alerts", "incidents"),
        trend=True,
        headline="noise reduction",
        doc="1 - incidents / alert deliveries",
    ),
    Kpi(
        name="auto_triaged",
        label="auto-triaged",
        unit=Unit.RATE,
        path="auto_triaged",
        line=AUTOMATION,
        role=Role.HEAD,
        doc="Incidents with an offerable runbook nobody marked unhelpful",
    ),
    Kpi(
        name="auto_remediated",
        label="auto-remediated",
        unit=Unit.RATE,
        path="auto_remediated",
        line=AUTOMATION,
        role=Role.HEAD,
        doc="Resolved incidents whose resolution followed a succeeded action",
    ),
    Kpi(
        name="model_incidents",
        label="incidents",
        unit=Unit.COUNT,
        path="model.model_incidents",
        line=MODELS,
        role=Role.TALLY,
        doc="Incidents about a model",
    ),
    Kpi(
        name="drift_detection_latency",
        label="drift detection",
        unit=Unit.SECONDS,
        path="model.drift_detection_latency",
        line=MODELS,
        doc="A model alert's window start to its first delivery",
    ),
    Kpi(
        name="model_rollbacks",
        label="rollbacks",
        unit=Unit.COUNT,
        path="model.rollbacks",  # with the rate
        doc="Model incidents resolved after a succeeded mlflow_rollback",
    ),
    Kpi(
        name="model_promotions",
        label="promotions",
        unit=Unit.COUNT,
        path="model.promotions",
        doc="Model promotion change events",
    ),
    Kpi(
        name="model_rollback_ratio",
        label="rollback rate",
        unit=Unit.RATIO,
        path="model.rollback_rate",
        line=MODELS,
        of=("model_rollbacks", "model_promotions"),
        doc="model_rollbacks / model_promotions",
    ),
    Kpi(
        name="model_lead_time",
        label="lead time",
        unit=Unit.SECONDS,
        path="model.lead_time",
        line=MODELS,
        doc="Lead time for model changes: promotion registered to serving",
    ),
    Kpi(
        name="model_linked_to_infra",
        label="linked to infra",
        unit=Unit.RATE,
        path="model.linked_to_infra",
        line=MODELS,
        doc="Model incidents linked to an infrastructure incident, over model incidents",
    ),
)


def kpi(name: str) -> Kpi:
    """The catalogue's entry called ``name`` (KeyError naming it otherwise)."""
    for k in KPIS:
        if k.name == name:
            return k
    raise KeyError(f"no KPI {name!r} in the catalogue")


def derived(r: KpiReport) -> dict[str, Any]:
    """The computed (not stored) KPIs of ``r`` by name: what --json adds to the report's own fields."""
    return {k.name: k.value(r) for k in KPIS if k.compute is not None}


def report_json(r: KpiReport) -> dict[str, Any]:
    """``incident-bot kpi --json``: every field of the report, then the catalogue's computed KPIs by name;
    the same for each service."""
    out: dict[str, Any] = jsonable(asdict(replace(r, by_service={})))
    out.update(
        (name, jsonable(asdict(v) if is_dataclass(v) and not isinstance(v, type) else v))
        for name, v in derived(r).items()
    )
    out["by_service"] = {svc: report_json(x) for svc, x in r.by_service.items()}
    return out


_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a Prometheus name suffix and label value, a JSON key
_SHARED = {
    "duration_seconds",
    "duration_samples",
    "rate_ratio",
    "rate_numerator",
    "rate_denominator",
    "exporter",
}


def _resolves(path: str) -> bool:
    cls: Any = KpiReport
    for part in path.split("."):
        hints = get_type_hints(cls) if is_dataclass(cls) else {}
        if part not in hints:
            return False
        cls = hints[part]
    return True


def check(kpis: tuple[Kpi, ...]) -> None:
    """ValueError unless names are unique ids (and no shared gauge's), ``of`` names and paths exist,
    computed names shadow no report field and no two lines share a name: a mistaken entry fails on
    import, not in one output."""
    names = [k.name for k in kpis]
    top_level = {f.name for f in fields(KpiReport)}
    lines = {k.line for k in kpis if k.line is not None}
    problems = [f"duplicate name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"{n!r} is not a lowercase id" for n in names if not _NAME.fullmatch(n)]
    problems += [f"{n!r} is the name of a shared gauge" for n in names if n in _SHARED]
    problems += [
        f"{k.name!r} shows {o!r}, not in the catalogue" for k in kpis for o in k.of if o not in names
    ]
    problems += [f"{k.name!r}: no {k.path!r} on the report" for k in kpis if k.path and not _resolves(k.path)]
    problems += [
        f"computed {k.name!r} shadows a report field" for k in kpis if k.compute and k.name in top_level
    ]
    problems += [
        f"two lines called {n!r}"
        for n in sorted({ln.name for ln in lines})
        if sum(ln.name == n for ln in lines) > 1
    ]
    if problems:
        raise ValueError("KPI catalogue: " + "; ".join(problems))


check(KPIS)
