"""/metrics as Prometheus reads it: `promtool check metrics` on real output, refusals counted by reason,
bounded service labels, whole-database gauges exported by one replica."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db_types import utcnow
from bot.kernel.scheduler import hold_lease
from bot.reports import catalogue
from bot.reports.catalogue import Unit
from bot.reports.collector import KpiCollector
from incident_bot.demo.slack_stub import SlackStub
from tests.apphelpers import ALERT_TOKEN, ALERTS, App

AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
PROMTOOL = shutil.which("promtool")


def _generic(service: str, n: int) -> dict[str, Any]:
    return {
        "name": f"Latency{n}",
        "status": "firing",
        "severity": "warning",
        "service": service,
        "summary": f"p99 latency high on {service}",
        "fingerprint": f"fp-{service}-{n}",
    }


def _rejected(source: str, reason: str) -> float:
    return (
        REGISTRY.get_sample_value("incident_bot_alerts_rejected_total", {"source": source, "reason": reason})
        or 0.0
    )


@pytest.fixture
def kpi_gauges(app: App) -> Iterator[KpiCollector]:
    """The KPI collector registered as `serve` registers it (Runtime.start), for this app's database."""
    collector = KpiCollector(app.rt.sessions)
    REGISTRY.register(collector)
    try:
        yield collector
    finally:
        REGISTRY.unregister(collector)


def _traffic(app: App) -> None:
    """Something in every family: accepted, duplicate, partial and refused deliveries, a change."""
    assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
    assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202  # duplicates
    batch = json.loads((ALERTS / "alertmanager_checkout.json").read_text())
    bad = copy.deepcopy(batch["alerts"][0])
    del bad["labels"]["alertname"]
    batch["alerts"].append(bad)
    assert app.alert("alertmanager", batch).status_code == 202
    assert app.alert("generic", b"{not json").status_code == 400
    assert app.alert("nosuchsource", _generic("x", 1)).status_code == 404
    assert app.client.post("/alerts/generic", content=b"{}").status_code == 401
    assert app.sample("generic", "generic.json").status_code == 202


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)")
def test_promtool_check_metrics_is_clean_on_real_output(app: App, kpi_gauges: KpiCollector) -> None:
    _traffic(app)
    text = app.client.get("/metrics").text
    assert "incident_bot_kpi_incidents" in text and "incident_bot_alerts_rejected_total" in text
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_refusals_are_counted_by_source_and_reason(app: App) -> None:
    before = {
        k: _rejected(*k)
        for k in [
            ("generic", "unauthorized"),
            ("unknown", "unknown_source"),
            ("generic", "invalid_payload"),
            ("generic", "unsupported_content_type"),
            ("generic", "too_large"),
            ("changes", "invalid_payload"),
            ("alertmanager", "invalid_alert"),
        ]
    }
    assert app.client.post("/alerts/generic", content=b"{}").status_code == 401
    assert app.alert("no-such-source", _generic("x", 1)).status_code == 404
    assert app.alert("generic", b"[1, 2").status_code == 400
    xml = {**AUTH, "Content-Type": "application/xml"}
    assert app.client.post("/alerts/generic", content=b"<a/>", headers=xml).status_code == 415
    assert app.alert("generic", b"x" * 1_100_000).status_code == 413
    assert app.client.post("/changes", content=b"{oops", headers=AUTH).status_code == 400
    batch = json.loads((ALERTS / "alertmanager_checkout.json").read_text())
    batch["alerts"].append({"status": "firing"})
    assert app.alert("alertmanager", batch).status_code == 202  # the valid alerts are kept
    assert app.alert("generic", _generic("ok", 1)).status_code == 202  # not a refusal
    after = {k: _rejected(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {k: 1.0 for k in before}
    # the label values are bounded: an unknown path segment never becomes a label
    assert (
        REGISTRY.get_sample_value(
            "incident_bot_alerts_rejected_total", {"source": "no-such-source", "reason": "unknown_source"}
        )
        is None
    )


def _families(collector: KpiCollector) -> dict[str, Any]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


def _by(fams: dict[str, Any], name: str, **labels: str) -> dict[str, float]:
    """service -> value of the samples of ``name`` matching ``labels``."""
    return {
        s.labels["service"]: s.value
        for s in fams[name].samples
        if all(s.labels.get(k) == v for k, v in labels.items())
    }


def test_service_label_is_capped_and_the_rest_is_other(app: App) -> None:
    services = ["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"]
    for i, svc in enumerate(services):
        for n in range(i + 1):  # svc-a 1 incident ... svc-e 5
            assert app.alert("generic", _generic(svc, n)).status_code == 202
    fams = _families(KpiCollector(app.rt.sessions, windows=("7d",), max_services=2))
    incidents = _by(fams, "incident_bot_kpi_incidents", window="7d")
    assert incidents == {"": 15.0, "svc-a": 1.0, "svc-b": 2.0, "other": 12.0}  # the first two seen, the rest
    every_service = {s.labels["service"] for f in fams.values() for s in f.samples if "service" in s.labels}
    assert every_service == {"", "svc-a", "svc-b", "other"}
    for k in catalogue.KPIS:  # what adds up adds up: named services + other = the whole
        if not k.metric:
            continue
        if k.unit is Unit.COUNT:
            v = _by(fams, f"incident_bot_kpi_{k.name}", window="7d")
            assert v[""] == v["svc-a"] + v["svc-b"] + v["other"], k.name
        elif k.unit is Unit.RATE:
            for part in ("numerator", "denominator"):
                v = _by(fams, f"incident_bot_kpi_rate_{part}", kpi=k.name)
                assert v[""] == v["svc-a"] + v["svc-b"] + v["other"], (k.name, part)
        elif k.unit is Unit.SECONDS:
            v = _by(fams, "incident_bot_kpi_duration_samples", kpi=k.name)
            assert v[""] == v["svc-a"] + v["svc-b"] + v["other"], k.name
    # a median cannot be made from parts: "other" has none rather than a wrong one
    assert not [
        s
        for s in fams["incident_bot_kpi_duration_seconds"].samples
        if s.labels["service"] == "other" and s.labels["stat"] != "mean"
    ]


def test_kpi_gauges_are_exported_by_the_lease_holder_only(sessions: sessionmaker[Session]) -> None:
    t0, ttl = utcnow(), timedelta(minutes=5)
    assert hold_lease(sessions, "kpi-gauges", holder="a", ttl=ttl, now=t0)
    assert not hold_lease(sessions, "kpi-gauges", holder="b", ttl=ttl, now=t0 + timedelta(seconds=1))
    assert hold_lease(sessions, "kpi-gauges", holder="a", ttl=ttl, now=t0 + timedelta(minutes=4))  # renewed
    assert not hold_lease(sessions, "kpi-gauges", holder="b", ttl=ttl, now=t0 + timedelta(minutes=8))
    # a stops renewing (gone): once its lease lapses b takes over, and a no longer holds it
    assert hold_lease(sessions, "kpi-gauges", holder="b", ttl=ttl, now=t0 + timedelta(minutes=9, seconds=1))
    assert not hold_lease(sessions, "kpi-gauges", holder="a", ttl=ttl, now=t0 + timedelta(minutes=10))

    def replica(name: str) -> KpiCollector:
        return KpiCollector(
            sessions,
            windows=("7d",),
            exporter=lambda: hold_lease(sessions, "kpi-lease-test", holder=name, ttl=ttl),
        )

    first, second = _families(replica("r1")), _families(replica("r2"))
    assert first["incident_bot_kpi_exporter"].samples[0].value == 1.0
    assert second["incident_bot_kpi_exporter"].samples[0].value == 0.0
    assert "incident_bot_kpi_incidents" in first and "incident_bot_kpi_incidents" not in second
    assert set(second) == {"incident_bot_kpi_exporter"}  # so sum() over replicas counts each incident once


def test_kpi_gauges_step_aside_while_the_database_is_away(tmp_path: Any) -> None:
    from bot.kernel.db import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")  # cannot be opened
    try:
        fams = _families(KpiCollector(make_sessionmaker(engine), windows=("7d",)))
    finally:
        engine.dispose()
    assert set(fams) == {"incident_bot_kpi_exporter"}  # no exception: /metrics keeps serving counters
    assert fams["incident_bot_kpi_exporter"].samples[0].value == 0.0


# ---- the Socket Mode connection ------------------------------------------------------------------------
class SocketModeSlack(SlackStub):
    """The Slack stand-in plus what Socket Mode asks of Slack: ``apps.connections.open`` answers the URL
    of a local websocket server (``websockets``), which says hello as Slack does and can drop the link."""

    def __init__(self) -> None:
        super().__init__()
        from websockets.sync.server import serve

        self.connections: list[Any] = []
        self.connected = threading.Event()
        self._ws = serve(self._session, "127.0.0.1", 0)
        self.ws_url = f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/link"
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)
        self._ws_thread.start()

    def _session(self, conn: Any) -> None:
        self.connections.append(conn)
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"}}))
        self.connected.set()
        for _ in conn:  # until either side closes
            pass

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": self.ws_url}
        return super()._answer(method, params, token)

    def drop(self) -> None:
        for conn in self.connections:
            conn.close()

    def stop(self) -> None:
        self._ws.shutdown()
        super().stop()


def _socket_gauge(app_text: str) -> float:
    for family in text_string_to_metric_families(app_text):
        for s in family.samples:
            if s.name == "incident_bot_slack_connected" and s.labels == {"mode": "socket"}:
                return float(s.value)
    raise AssertionError("incident_bot_slack_connected{mode='socket'} not on /metrics")


def test_socket_mode_connection_is_a_gauge_and_in_readyz(sqlite_url: str, fake_encoder: Any) -> None:
    pytest.importorskip("websockets")
    from fastapi.testclient import TestClient

    from bot.kernel.config import SAMPLE_DATA, Settings
    from incident_bot.runtime import build_runtime

    with SocketModeSlack() as slack:
        settings = Settings(
            _env_file=None,
            database_url=sqlite_url,
            slack_bot_token="xoxb-test",
            slack_signing_secret="s",
            slack_app_token="xapp-test",
            slack_api_url=slack.base_url,
            alert_webhook_token=ALERT_TOKEN,
            runbooks_dir=SAMPLE_DATA / "runbooks",
        )
        rt = build_runtime(settings, encoder=fake_encoder)
        try:
            assert rt.socket_mode is not None
            with TestClient(rt.http) as client:
                assert client.get("/readyz").json()["slack"] == {
                    "mode": "socket",
                    "connection": "not started",
                }
                rt.socket_mode.connect()
                assert slack.connected.wait(10)
                ready = client.get("/readyz")
                assert ready.json()["slack"] == {"mode": "socket", "connection": "connected"}
                assert _socket_gauge(client.get("/metrics").text) == 1.0
                # Slack drops the link and cannot give a new one: slack_sdk notices (its monitor), tries to
                # reconnect, fails; the replica shows it, and stays ready for alerts
                slack.fail("apps.connections.open", status=500)
                slack.drop()
                slack.wait_for_failures(1, timeout=30)
                ready = client.get("/readyz")
                assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
                assert ready.json()["slack"] == {"mode": "socket", "connection": "disconnected"}
                assert _socket_gauge(client.get("/metrics").text) == 0.0
        finally:
            rt.close()


def test_http_mode_has_no_socket_mode_check(app: App) -> None:
    assert "slack" not in app.client.get("/readyz").json()
