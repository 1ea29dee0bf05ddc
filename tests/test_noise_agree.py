"""Numbers that agree (issue 17): one noise definition (bot/triage/noise.py::noise_reduction) behind `/incident kpi`,
`incident-bot kpi`, `incident-bot noise`, `/metrics` and the chart, on real alerts sent through the HTTP edge and
triaged for real, orphaned resolves included; and "resolved before opened" made by the input that makes it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.db_types import utcnow
from bot.reports import catalogue
from bot.reports.chart import FUNNEL
from bot.reports.collector import KpiCollector
from incident_bot.cli.main import main
from incident_bot.demo.slack_stub import block_action_body
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app

WEEK = timedelta(days=7)


def _alert(app: App, **fields: Any) -> dict[str, Any]:
    resp = app.alert("generic", {"severity": "critical", **fields})
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


def _stream(app: App) -> None:
    """7 deliveries (a first, its exact repeat, a grouped alert, a second incident, two resolves, a flap),
    2 orphaned resolves, 1 change event: 2 incidents."""
    a = {"name": "Checkout latency", "service": "checkout", "fingerprint": "a"}
    assert _alert(app, **a)["incidents_created"] == [1]
    _alert(app, **a)  # exact repeat
    _alert(app, name="Checkout latency", service="checkout", fingerprint="b")  # grouped into #1
    assert _alert(app, name="Payments errors", service="payments", fingerprint="c")["incidents_created"] == [
        2
    ]
    for fp in ("x", "y"):  # resolves of alerts never seen firing
        assert (
            _alert(app, name="Gone", service="checkout", fingerprint=fp, status="resolved")[
                "orphaned_resolved_alerts"
            ]
            == 1
        )
    _alert(app, name="Deploy checkout", service="checkout", kind="change")
    app.alert(
        "generic",
        {
            "alerts": [
                {**a, "severity": "critical", "status": "resolved"},
                {
                    "name": "Checkout latency",
                    "service": "checkout",
                    "fingerprint": "b",
                    "severity": "critical",
                    "status": "resolved",
                },
            ]
        },
    )
    _alert(app, **a)  # fires again within FLAP_WINDOW_MINUTES: a flap of #1, no new incident


def test_one_noise_reduction_everywhere(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stream(app)
    expected = (
        1 - 2 / 7
    )  # orphaned resolves are not deliveries (they were: 1 - 2/9 in `noise`, 1 - 2/7 in kpi)

    # /incident kpi (the service call the slash command makes, and the message it posts)
    rep, _ = app.rt.service.kpis(period=WEEK)
    assert (rep.funnel.deliveries, rep.funnel.unique_alerts, rep.funnel.incidents) == (7, 3, 2)
    assert rep.funnel.noise_reduction == pytest.approx(expected)
    body = urlencode(
        {
            "command": "/incident",
            "text": "kpi 7d",
            "user_id": "U0ONCALL1",
            "channel_id": "C0KPI",
            "team_id": "T0TEAM",
            "response_url": app.stub.base_url + "response",
            "trigger_id": "T0TRIGGER",
        }
    ).encode()
    assert app.slack(body).status_code == 200
    blocks = json.dumps(app.posts()[-1].params["blocks"])
    assert (
        "71%" in blocks and "78%" not in blocks
    )  # Slack shows whole percents; with the orphans, 1 - 2/9 = 78%

    # the chart draws the catalogue's funnel KPI from the same report
    assert catalogue.kpi(FUNNEL).value(rep) == pytest.approx(expected)

    # /metrics
    registry = CollectorRegistry()
    registry.register(KpiCollector(app.rt.sessions, windows=("7d",)))
    metrics = generate_latest(registry).decode()
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith("incident_bot_kpi_noise_reduction_ratio{") and 'service=""' in x
    )
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(expected)

    # incident-bot kpi --json and incident-bot noise --json, on the same database
    monkeypatch.setenv("DATABASE_URL", app.rt.settings.database_url)
    assert main(["kpi", "--since", "7d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["funnel"]["noise_reduction"] == pytest.approx(expected)
    assert main(["noise", "--since", "7d", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["noise_reduction"] == pytest.approx(expected, abs=5e-5)  # rounded to 4 places in JSON
    assert (totals["deliveries"], totals["incidents_opened"], totals["orphaned_resolves"]) == (7, 2, 2)
    assert (totals["duplicates"], totals["grouped"], totals["flaps_suppressed"], totals["changes"]) == (
        1,
        1,
        1,
        1,
    )
    assert main(["noise", "--since", "7d"]) == 0
    assert "2 orphaned resolves" in capsys.readouterr().out


def test_resolved_before_opened_comes_from_a_late_firing_delivery(app: App) -> None:
    """The source says the alert ended (endsAt) before the bot first saw it firing: a notification delivered
    late, then its resolve. That incident is resolved before it was opened; a first delivery that is already
    resolved opens nothing (an orphan) and is not counted there."""
    now = utcnow()
    late = {
        "name": "Disk full",
        "service": "inventory",
        "fingerprint": "late",
        "starts_at": (now - timedelta(minutes=40)).isoformat(),
    }
    assert _alert(app, **late)["incidents_created"] == [1]
    _alert(app, **late, status="resolved", ends_at=(now - timedelta(minutes=10)).isoformat())
    _alert(
        app,
        name="Blip",
        service="inventory",
        fingerprint="blip",
        status="resolved",
        ends_at=(now - timedelta(minutes=5)).isoformat(),
    )  # never seen firing: an orphan
    rep, _ = app.rt.service.kpis(period=WEEK)
    assert (rep.incidents, rep.resolved_incidents, rep.resolved_before_opened) == (1, 1, 1)
    assert rep.mttr_from_detection.mean_s == 0  # detection -> resolved, clamped at 0
    assert rep.mttr.mean_s == pytest.approx(30 * 60, abs=5)  # impact start -> the source's end


# A second runbook that names the sample checkout alert, so that re-advice after a 👎 has another runbook to
# offer (since issue 16 only a runbook naming the alert offers actions).
SECOND_RUNBOOK = """\
---
id: checkout-pool-rollback
title: Checkout pool exhausted after a deploy
alert_names: [PostgresConnectionPoolExhausted]
steps:
  - Check the last checkout deploy
actions:
  - id: checkout-rollback
    title: Roll back checkout
    type: webhook
    url: /actions/checkout-rollback
    params: {service: "{{ service }}"}
---
# Checkout pool exhausted after a deploy

Roll back the last deploy if the error rate rose after it.
"""


@pytest.fixture
def app_two_runbooks(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> Iterator[App]:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(SAMPLE_DATA / "runbooks", runbooks)
    (runbooks / "checkout-pool-rollback.md").write_text(SECOND_RUNBOOK, encoding="utf-8")
    with running_app(db_url, fake_encoder, target, runbooks_dir=runbooks) as a:
        yield a


def test_a_thumbs_down_runbook_is_not_auto_triaged_even_when_re_advice_swaps_it(
    app_two_runbooks: App,
) -> None:
    """The 👎 path for real: the click through Bolt records the feedback and re-advises, which puts another
    offerable runbook on the incident; the incident still needed a person, so it is not auto-triaged."""
    from sqlalchemy import select

    from bot.kernel.models import Suggestion

    app = app_two_runbooks
    app.sample("alertmanager", "alertmanager_checkout.json")
    message = app.posts()[0]
    rep, _ = app.rt.service.kpis(period=WEEK)
    assert (rep.auto_triaged.numerator, rep.auto_triaged.denominator) == (1, 1)
    down = next(
        el
        for b in message.params["blocks"]
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["text"]["text"] == "👎" and ":runbook:" in el["value"]
    )
    runbook = down["value"].split(":", 2)[2]
    body = block_action_body(
        user="U0ONCALL1", button=down, channel="C0INCIDENTS", message_ts=message.response["ts"]
    )
    assert app.slack(body).status_code == 200  # signed, through Bolt; re-advice and the update are delivered
    with app.rt.sessions() as s:
        shown = {
            r.target_id: r.features or {}
            for r in s.scalars(select(Suggestion).where(Suggestion.target_kind == "runbook"))
        }
    assert runbook not in shown  # the 👎 runbook was replaced in the message
    assert any(f.get("offerable") == 1.0 for f in shown.values())  # ...by another offerable one (the swap)
    rep, _ = app.rt.service.kpis(period=WEEK)
    assert (rep.auto_triaged.numerator, rep.auto_triaged.denominator) == (0, 1)
    assert rep.runbook_suggested == 1
