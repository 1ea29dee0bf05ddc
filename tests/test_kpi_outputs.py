"""The same seeded figures from the CLI (``incident-bot kpi --since ... --json``), as Prometheus gauges on
/metrics, and in the chart PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db import make_engine, make_sessionmaker, transaction
from bot.reports.chart import render_png
from bot.reports.collector import KpiCollector
from bot.reports.kpi import daily, report
from incident_bot.cli.main import main
from tests.kpi_seed import SINCE, UNTIL, seed

NOW = UNTIL  # the seeded week ends here; "--since 8d" from NOW covers it


@pytest.fixture
def seeded_url(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    with transaction(make_sessionmaker(engine)) as s:
        seed(s)
    engine.dispose()
    return sqlite_url


def test_cli_json_matches_definitions(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", seeded_url)
    monkeypatch.setattr("bot.reports.kpi.utcnow", lambda: NOW)
    chart = tmp_path / "kpi.png"
    assert main(["kpi", "--since", "8d", "--json", "--chart", str(chart)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["incidents"] == 8 and out["mttd"]["count"] == 8
    assert out["mttd"]["mean_s"] == pytest.approx(20.4 * 60) and out["mttr"]["mean_s"] == pytest.approx(
        25.2 * 60
    )
    assert out["funnel"] == {
        "deliveries": 19,
        "unique_alerts": 12,
        "incidents": 8,
        "noise_reduction": pytest.approx(11 / 19),
    }
    assert out["auto_triaged"] == {"numerator": 3, "denominator": 8, "value": 0.375}
    assert out["model"]["rollbacks"] == 1 and out["model"]["promotions"] == 3
    assert out["by_service"]["checkout"]["incidents"] == 3
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert main(["kpi", "--since", "8d", "--service", "payments"]) == 0
    text = capsys.readouterr().out
    assert "incidents 2 " in text and "service payments" in text
    assert main(["kpi", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


def test_prometheus_gauges(seeded_url: str) -> None:
    engine = make_engine(seeded_url)
    registry = CollectorRegistry()
    registry.register(KpiCollector(make_sessionmaker(engine), windows=("8d",), clock=lambda: NOW))
    t = generate_latest(registry).decode()  # what /metrics serves (handlers/http/ops.py), this registry only
    engine.dispose()
    assert _sample(t, "incident_bot_kpi_incidents", window="8d", service="") == 8
    assert _sample(
        t, "incident_bot_kpi_duration_seconds", service="", kpi="mttd", stat="mean"
    ) == pytest.approx(1224)
    assert _sample(
        t, "incident_bot_kpi_duration_seconds", service="", kpi="mttr", stat="p90"
    ) == pytest.approx(37.84 * 60)
    assert _sample(t, "incident_bot_kpi_duration_samples", service="", kpi="mtta") == 6
    assert _sample(t, "incident_bot_kpi_noise_reduction_ratio", service="") == pytest.approx(11 / 19)
    assert _sample(t, "incident_bot_kpi_rate_numerator", service="", kpi="auto_remediated") == 2
    assert _sample(t, "incident_bot_kpi_rate_denominator", service="", kpi="auto_remediated") == 7
    assert _sample(t, "incident_bot_kpi_model_rollback_ratio", service="") == pytest.approx(1 / 3)
    assert _sample(t, "incident_bot_kpi_incidents", service="checkout") == 3


def test_chart_renders(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with transaction(sessions) as s:
        seed(s)
    with sessions() as s:
        r = report(s, since=SINCE, until=UNTIL)
        d = daily(s, since=SINCE, until=UNTIL)
    assert sum(sum(v) for v in d.by_severity.values()) == 8 and set(d.by_severity) == {"critical", "warning"}
    png = render_png(r, d)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    (tmp_path / "kpi.png").write_bytes(png)
