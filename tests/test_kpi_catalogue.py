"""The KPI catalogue (bot/reports/catalogue.py) is the one place a KPI is defined: the Slack summary and
the CLI text are written from it (pinned here on the seeded case), a mistaken entry fails on import, and a
new entry shows up in every output (Slack, the notification text, the CLI, --json, /metrics) untouched."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db import transaction
from bot.reports import catalogue
from bot.reports.catalogue import OUTCOMES, Kpi, Line, Role, Unit, check
from bot.reports.collector import KpiCollector
from bot.reports.kpi import KpiReport, Rate, report
from handlers.blocks.kpi import as_dicts, kpi_fallback, kpi_summary
from incident_bot.cli.kpi import text_lines
from tests.kpi_seed import SINCE, UNTIL, seed

TIMING = (
    "*Incidents* 8 (1 open, 7 resolved, 1 resolved before opened, 1 flapping) · change events 4 (not incidents)"
    " · previous period 1\n"
    "*MTTD* (impact start → detection) avg 20.4m · p50 16.0m · p90 39.7m (n=8) ▲19.4m\n"
    "*MTTA* (detection → ack) avg 3.5m · p50 3.5m · p90 5.5m (n=6) ▲2.5m\n"
    "*MTTR* (impact start → resolved) avg 25.2m · p50 25.0m · p90 37.8m (n=7) ▲22.2m\n"
    "*MTTR from detection* avg 10.5m · p50 9.0m · p90 17.0m (n=7)"
)
OUTCOMES_TEXT = (
    "*Noise* 19 deliveries → 12 alerts → 8 incidents: reduction 58% ▲58%\n"
    "*Auto-triaged* 38% (3/8) · *auto-remediated* 29% (2/7)\n"
    "*Models* 2 incidents · drift detection avg 14.5m · p50 14.5m · p90 18.9m (n=2) · rollback rate 33% "
    "(1 rollbacks / 3 promotions) · lead time avg 60.0m · p50 60.0m · p90 84.0m (n=2) · linked to infra 50% (1/2)"
)
CLI = [
    "period 2026-11-01 00:00 -> 2026-11-09 00:00 UTC",
    "incidents 8 (1 open, 7 resolved, 1 resolved before opened, 1 flapping); change events 4 (not incidents)",
    "MTTD (impact start -> detection)   mean 20.4 min, median 16.0, p90 39.7 (n=8)",
    "MTTA (detection -> ack)            mean 3.5 min, median 3.5, p90 5.5 (n=6)",
    "MTTR (impact start -> resolved)    mean 25.2 min, median 25.0, p90 37.8 (n=7)",
    "MTTR from detection                mean 10.5 min, median 9.0, p90 17.0 (n=7)",
    "noise 19 deliveries -> 12 alerts -> 8 incidents: reduction 57.9%",
    "auto-triaged 37.5% (3/8); auto-remediated 28.6% (2/7)",
    "models 2 incidents; drift detection mean 14.5 min, median 14.5, p90 18.9 (n=2); rollback rate 33.3% "
    "(1 rollbacks / 3 promotions); lead time mean 60.0 min, median 60.0, p90 84.0 (n=2); linked to infra 50.0% (1/2)",
]


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(sessions) as s:
        seed(s)
    return sessions


def _reports(sessions: sessionmaker[Session]) -> tuple[KpiReport, KpiReport]:
    with sessions() as s:
        return (
            report(s, since=SINCE, until=UNTIL, per_service=True),
            report(s, since=SINCE - timedelta(days=7), until=SINCE),
        )


def _sections(r: KpiReport, previous: KpiReport | None = None) -> list[str]:
    return [b["text"]["text"] for b in as_dicts(kpi_summary(r, previous)) if b["type"] == "section"]


def test_slack_and_cli_text_from_the_catalogue(seeded: sessionmaker[Session]) -> None:
    r, previous = _reports(seeded)
    assert _sections(r, previous) == [TIMING, OUTCOMES_TEXT]
    assert kpi_fallback(r) == (
        "KPIs last 8d (2026-11-01 → 2026-11-09): 8 incidents, MTTD 20.4m, MTTA 3.5m, "
        "MTTR 25.2m, noise reduction 58%"
    )
    assert text_lines(r) == CLI
    assert list(catalogue.report_json(r)) == [
        f.name for f in fields(KpiReport)
    ]  # --json: the report's fields (a contract)


def test_a_mistaken_entry_fails() -> None:
    mttd = catalogue.kpi("mttd")
    with pytest.raises(ValueError, match="duplicate name 'mttd'"):
        check((*catalogue.KPIS, mttd))
    with pytest.raises(ValueError, match="'x' shows 'nope', not in the catalogue"):
        check(
            (
                *catalogue.KPIS,
                Kpi(name="x", label="x", unit=Unit.RATIO, doc="x", path="model.rollback_rate", of=("nope",)),
            )
        )
    with pytest.raises(ValueError, match="no 'model.lead_times' on the report"):
        check((Kpi(name="x", label="x", unit=Unit.SECONDS, doc="x", path="model.lead_times"),))
    with pytest.raises(ValueError, match="computed 'mttd' shadows a report field"):
        check((Kpi(name="mttd", label="x", unit=Unit.COUNT, doc="x", compute=lambda r: 0),))
    with pytest.raises(ValueError, match="two lines called 'mtta'"):
        check(
            (
                *catalogue.KPIS,
                Kpi(
                    name="x",
                    label="x",
                    unit=Unit.COUNT,
                    doc="x",
                    path="incidents",
                    line=Line(name="mtta", section=OUTCOMES),
                ),
            )
        )
    with pytest.raises(ValueError, match="'Bad-name' is not a lowercase id"):
        check((Kpi(name="Bad-name", label="x", unit=Unit.COUNT, doc="x", path="incidents"),))
    with pytest.raises(ValueError, match="'rate_ratio' is the name of a shared gauge"):
        check((Kpi(name="rate_ratio", label="x", unit=Unit.COUNT, doc="x", path="incidents"),))
    with pytest.raises(ValueError, match="exactly one of path and compute"):
        Kpi(name="x", label="x", unit=Unit.COUNT, doc="x", path="incidents", compute=lambda r: 0)
    with pytest.raises(ValueError, match="a funnel is a ratio"):
        Kpi(name="x", label="x", unit=Unit.RATIO, doc="x", path="funnel.noise_reduction", role=Role.FUNNEL)
    with pytest.raises(KeyError, match="no KPI 'nope'"):
        catalogue.kpi("nope")


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_a_new_entry_shows_up_in_every_output(
    seeded: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two entries derived from the report, added to the catalogue only: a count in the incidents line's
    breakdown (and the notification headline), and a rate on a line of its own."""
    unacked = Kpi(
        name="unacknowledged_incidents",
        label="unacknowledged",
        unit=Unit.COUNT,
        compute=lambda r: r.incidents - r.mtta.count,
        line=catalogue.INCIDENTS,
        role=Role.BREAKDOWN,
        headline="unacknowledged",
        doc="Incidents nobody acknowledged",
    )
    acked = Kpi(
        name="acknowledged",
        label="acknowledged",
        unit=Unit.RATE,
        compute=lambda r: Rate.of(r.mtta.count, r.incidents),
        line=Line(name="ack", section=OUTCOMES),
        role=Role.HEAD,
        doc="Acknowledged incidents, over incidents",
    )
    extended = (*catalogue.KPIS, unacked, acked)
    check(extended)
    monkeypatch.setattr(catalogue, "KPIS", extended)
    r, _ = _reports(seeded)

    timing, outcomes = _sections(r)
    assert timing.startswith(
        "*Incidents* 8 (1 open, 7 resolved, 1 resolved before opened, 1 flapping, "
        "2 unacknowledged) · change events 4"
    )
    assert outcomes.endswith("linked to infra 50% (1/2)\n*Acknowledged* 75% (6/8)")
    assert kpi_fallback(r).endswith("noise reduction 58%, 2 unacknowledged")

    cli = text_lines(r)
    assert cli[1].startswith(
        "incidents 8 (1 open, 7 resolved, 1 resolved before opened, 1 flapping, 2 unacknowledged);"
    )
    assert cli[-1] == "acknowledged 75.0% (6/8)"

    out = catalogue.report_json(r)
    assert out["unacknowledged_incidents"] == 2 and out["acknowledged"] == {
        "numerator": 6,
        "denominator": 8,
        "value": 0.75,
    }
    assert out["by_service"]["checkout"]["unacknowledged_incidents"] == 1  # #8 of #1, #4, #8
    assert out["mttd"]["count"] == 8 and out["funnel"]["deliveries"] == 19  # the report's own keys unchanged

    registry = CollectorRegistry()
    registry.register(KpiCollector(seeded, windows=("8d",), clock=lambda: UNTIL))
    t = generate_latest(registry).decode()
    assert _sample(t, "incident_bot_kpi_unacknowledged_incidents", window="8d", service="") == 2
    assert _sample(t, "incident_bot_kpi_unacknowledged_incidents", service="checkout") == 1
    assert _sample(t, "incident_bot_kpi_rate_ratio", service="", kpi="acknowledged") == 0.75
    assert _sample(t, "incident_bot_kpi_rate_numerator", service="", kpi="acknowledged") == 6
    assert "# HELP incident_bot_kpi_unacknowledged_incidents Incidents nobody acknowledged" in t
