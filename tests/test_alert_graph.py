"""The alert's own graph (issue 18, 4), without a Prometheus binary: the expression and threshold taken from a
generatorURL, the step, the PNG as drawn (threshold line, change markers), and through the whole app (real
HTTP, outbox, recording Slack stub; SQLite and PostgreSQL) a Prometheus that is down or answers an error: one
line in the thread, the post unaffected, nothing retried. tests/test_alert_graph_real.py runs the real one."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import matplotlib.image
import numpy as np
import pytest
from sqlalchemy import select

from bot.kernel.models import AuditEvent
from bot.kernel.outbox import Kind, OutboxMessage
from bot.reports.alert_graph import GraphSpec, Marker, render_png
from bot.reports.promql import (
    Prometheus,
    PrometheusError,
    Series,
    Threshold,
    expr_from_generator_url,
    split_threshold,
    step_for,
)
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERTS, App, running_app

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def test_expression_from_a_generator_url() -> None:
    body = json.loads((ALERTS / "alertmanager_checkout.json").read_text())
    urls = [a["generatorURL"] for a in body["alerts"]]
    assert (
        expr_from_generator_url(urls[0])
        == 'pgbouncer_pools_client_waiting_connections{database="checkout"} > 0'
    )
    assert expr_from_generator_url("https://grafana.example.com/alerting/1/view") is None
    assert expr_from_generator_url(None) is None


@pytest.mark.parametrize(
    ("expr", "plotted", "threshold"),
    [
        ("rate(errors[5m]) > 0.05", "rate(errors[5m])", Threshold(">", 0.05)),
        (
            'sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m])) >= 1e-3',
            'sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m]))',
            Threshold(">=", 0.001),
        ),
        ("0.9 > avail", "avail", Threshold("<", 0.9)),
        ('up{job="a>b"} < 1', 'up{job="a>b"}', Threshold("<", 1.0)),  # a '>' inside a string is not one
        ("(a > 1) and b", "(a > 1) and b", None),  # not at the top level
        ("a > b", "a > b", None),  # two series: no threshold to draw
        ("a > 1 and b < 2", "a > 1 and b < 2", None),  # several comparisons
        ("a > bool 1", "a > bool 1", None),
        ("a == 1", "a == 1", None),
        ("vector(1)", "vector(1)", None),
    ],
)
def test_threshold_only_at_the_top_level(expr: str, plotted: str, threshold: Threshold | None) -> None:
    assert split_threshold(expr) == (plotted, threshold)


def test_step_keeps_about_300_points() -> None:
    assert step_for(T0, T0 + timedelta(minutes=35)) == timedelta(seconds=7)
    assert step_for(T0, T0 + timedelta(seconds=10)) == timedelta(seconds=1)
    assert step_for(T0, T0 + timedelta(days=2)).total_seconds() == 576


def _colour_pixels(png: bytes, hex_colour: str) -> int:
    img = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(img - rgb).max(axis=-1) < 0.06).sum())


def test_render_draws_series_threshold_and_markers() -> None:
    points = [(T0 + timedelta(minutes=i), float(i % 7)) for i in range(60)]
    spec = GraphSpec(
        incident_id=7,
        alert_name="ErrorsHigh",
        expr="errors > 5",
        plotted="errors",
        threshold=Threshold(">", 5.0),
        start=T0,
        end=T0 + timedelta(minutes=60),
        incident_start=T0 + timedelta(minutes=30),
        resolved_at=None,
        markers=[Marker(T0 + timedelta(minutes=25), "deploy $checkout v1.42")],  # '$' is not mathtext
    )
    png = render_png(spec, [Series({"instance": "a"}, points), Series({"instance": "b"}, [])])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(io.BytesIO(png))
    assert img.shape[:2] == (400, 1000)
    assert _colour_pixels(png, "#d62728") > 200  # the dashed threshold line across the plot
    assert _colour_pixels(png, "#9467bd") > 50  # the deploy marker
    assert _colour_pixels(png, "#1f77b4") > 200  # the series
    no_threshold = render_png(
        GraphSpec(**{**spec.__dict__, "threshold": None, "markers": []}), [Series({}, points)]
    )
    assert _colour_pixels(no_threshold, "#d62728") == 0 and _colour_pixels(no_threshold, "#9467bd") == 0


class FakePrometheusAnswers:
    """An HTTP server answering every request with one fixed reply (for error shapes Prometheus produces)."""

    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        raw = body if isinstance(body, str) else json.dumps(body)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = raw.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_client_errors_say_why_without_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with httpx.Client() as client:
        down = Prometheus(client=client, url=f"http://admin:hunter2@127.0.0.1:{port}", timeout=2)
        with pytest.raises(PrometheusError) as err:
            down.query_range("up", start=T0, end=T0 + timedelta(minutes=1), step=timedelta(seconds=1))
        assert f"127.0.0.1:{port} is unreachable" in str(err.value) and "hunter2" not in str(err.value)
        bad = FakePrometheusAnswers(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
        try:
            with pytest.raises(PrometheusError, match="query failed: HTTP 400 bad_data: parse error"):
                Prometheus(client=client, url=bad.url).query_range(
                    "up(", start=T0, end=T0, step=timedelta(seconds=1)
                )
        finally:
            bad.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def _thread_texts(app: App, ts: str) -> list[str]:
    return [c.params["text"] for c in app.stub.of("chat.postMessage") if c.params.get("thread_ts") == ts]


def test_prometheus_down_is_one_line_and_the_post_goes_out(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, closed_port: int
) -> None:
    with running_app(db_url, fake_encoder, target, prometheus_url=f"http://127.0.0.1:{closed_port}") as app:
        assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
        (post,) = [c for c in app.posts() if "thread_ts" not in c.params]
        (line,) = _thread_texts(app, post.response["ts"])
        assert line.startswith("📉 No graph for ") and f"127.0.0.1:{closed_port} is unreachable" in line
        assert app.stub.of("files.completeUploadExternal") == []
        with app.rt.sessions() as s:
            rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == Kind.ALERT_GRAPH)))
            events = list(s.scalars(select(AuditEvent).where(AuditEvent.event == "incident.graph_posted")))
        assert [r.status for r in rows] == ["done"] and rows[0].attempts <= 1  # said once, not retried
        assert events[0].detail["outcome"] == "error"
        # the same group again: no second graph (once per incident)
        assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
        assert len(_thread_texts(app, post.response["ts"])) == 1


@pytest.mark.parametrize(
    ("status", "answer", "said"),
    [
        (
            422,
            {
                "status": "error",
                "errorType": "execution",
                "error": "query processing would load too many samples",
            },
            "query failed: HTTP 422 execution: query processing would load too many samples",
        ),
        (
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "Prometheus has no samples of `pgbouncer_pools_client_waiting_connections",
        ),
        (502, "<html>bad gateway</html>", "answered HTTP 502, not JSON"),
    ],
)
def test_query_error_and_no_data_say_so(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, status: int, answer: Any, said: str
) -> None:
    prometheus = FakePrometheusAnswers(status, answer)
    try:
        with running_app(db_url, fake_encoder, target, prometheus_url=prometheus.url) as app:
            app.sample("alertmanager", "alertmanager_checkout.json")
            post = app.posts()[0]
            assert "thread_ts" not in post.params  # the incident itself went out first
            (line,) = _thread_texts(app, post.response["ts"])
            assert said in line and app.stub.of("files.completeUploadExternal") == []
    finally:
        prometheus.close()


def test_no_prometheus_url_no_graph_rows(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    with app.rt.sessions() as s:
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.kind == Kind.ALERT_GRAPH)).first() is None


def test_doctor_checks_the_graphs_prometheus(closed_port: int) -> None:
    from bot.kernel.config import Settings
    from incident_bot.doctor import check_prometheus

    assert check_prometheus(Settings(_env_file=None)) == []  # not set: nothing to check
    (down,) = check_prometheus(
        Settings(_env_file=None, prometheus_url=f"http://u:secret@127.0.0.1:{closed_port}")
    )
    assert down.status == "warn" and down.setting == "PROMETHEUS_URL" and "secret" not in down.detail
    assert f"127.0.0.1:{closed_port} is unreachable" in down.detail and "No graph" in down.detail
    up = FakePrometheusAnswers(200, {"status": "success", "data": {"version": "2.42.0"}})
    try:
        (ok,) = check_prometheus(Settings(_env_file=None, prometheus_url=up.url))
    finally:
        up.close()
    assert ok.status == "ok" and ok.detail == f"Prometheus 2.42.0 at {up.url}"
