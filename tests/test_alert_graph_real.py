"""The alert's own graph against the real Prometheus and Alertmanager (the Debian packages `make setup`
installs; skipped, saying why, when absent). Prometheus scrapes itself every second and a real rule fires on
its own ``up`` series; Alertmanager posts the group to the app over real HTTP (uvicorn on a local port); the
graph queries ``/api/v1/query_range`` on that Prometheus and the PNG is uploaded into the incident's thread
on the recording Slack stub (getUploadURLExternal → upload → completeUploadExternal). A deploy recorded on the
service is drawn as a marker; resolving the incident uploads the whole incident's graph once more."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import matplotlib.image
import pytest
import uvicorn
from sqlalchemy import select

from bot.kernel.models import AuditEvent, Incident
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, App, running_app
from tests.test_alert_graph import _colour_pixels
from tests.test_changes_http import post_change

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (PROMETHEUS.exists() and ALERTMANAGER.exists()),
        reason=f"needs {PROMETHEUS} and {ALERTMANAGER} (Debian packages prometheus and "
        "prometheus-alertmanager; `make setup` installs them with apt-get when run as root)",
    ),
]

RULES = """
groups:
  - name: graph
    interval: 1s
    rules:
      - alert: SelfScrapeUp
        expr: up{job="self"} > 0.5
        for: 5s
        labels: {service: prom-self, severity: warning}
        annotations: {summary: "Prometheus scrapes itself"}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(
    what: str, predicate: Callable[[], bool], procs: list[subprocess.Popen[bytes]], timeout: float
) -> None:
    """Wait for real external processes to reach a state (there is nothing to block on but time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}")
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def served(
    sqlite_url: str, fake_encoder: HashingEncoder, target: WebhookTarget, tmp_path: Path
) -> Iterator[tuple[App, int, list[subprocess.Popen[bytes]]]]:
    """The app with PROMETHEUS_URL set, served on a real port, plus Prometheus and Alertmanager pointed at it."""
    prom_port, am_port = _free_port(), _free_port()
    with running_app(sqlite_url, fake_encoder, target, prometheus_url=f"http://127.0.0.1:{prom_port}") as app:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        server = uvicorn.Server(uvicorn.Config(app.rt.http, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        bot_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        (tmp_path / "rules.yml").write_text(RULES)
        (tmp_path / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"evaluation_interval": "1s", "scrape_interval": "1s"},
                    "rule_files": [str(tmp_path / "rules.yml")],
                    "scrape_configs": [
                        {"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}]}
                    ],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                    },
                }
            )
        )
        (tmp_path / "alertmanager.yml").write_text(
            json.dumps(
                {
                    "route": {"receiver": "bot", "group_by": ["alertname"], "group_wait": "1s"},
                    "receivers": [
                        {
                            "name": "bot",
                            "webhook_configs": [
                                {
                                    "url": f"{bot_url}/alerts/alertmanager",
                                    "http_config": {"authorization": {"credentials": ALERT_TOKEN}},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        procs: list[subprocess.Popen[bytes]] = []
        for name, args in (
            (
                "alertmanager",
                [
                    str(ALERTMANAGER),
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
            ),
            (
                "prometheus",
                [
                    str(PROMETHEUS),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",
                    "--log.level=warn",
                ],
            ),
        ):
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs.append(subprocess.Popen(args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))
        try:
            yield app, prom_port, procs
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            server.should_exit = True
            thread.join(10)
            sock.close()


def _incident_ids(app: App) -> list[int]:
    with app.rt.sessions() as s:
        return list(s.scalars(select(Incident.id)))


def test_real_rule_fires_and_its_graph_lands_in_the_thread(
    served: tuple[App, int, list[subprocess.Popen[bytes]]],
) -> None:
    app, prom_port, procs = served
    from incident_bot.doctor import check_prometheus

    _until("Prometheus ready", lambda: check_prometheus(app.rt.settings)[0].status == "ok", procs, 30)
    assert check_prometheus(app.rt.settings)[0].detail.startswith("Prometheus 2.")
    # a deploy on the service a minute ago: drawn as a marker on the graph
    deployed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    assert (
        post_change(
            app, {"kind": "deploy", "service": "prom-self", "version": "v9", "when": deployed}
        ).status_code
        == 202
    )
    _until(
        "the rule's alert delivered by Alertmanager as an incident",
        lambda: len(_incident_ids(app)) == 1,
        procs,
        90,
    )

    def samples() -> int:
        resp = httpx.get(
            f"http://127.0.0.1:{prom_port}/api/v1/query",
            params={"query": 'count_over_time(up{job="self"}[5m])'},
            timeout=5,
        )
        result = resp.json()["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    # the graph's step over a 30+ min window is ~7 s: let a few steps of real samples exist
    _until("20 s of scraped samples", lambda: samples() >= 20, procs, 60)
    app.drain()  # advice, the post, then the graph (in order, one incident)

    (post,) = [c for c in app.posts() if "thread_ts" not in c.params]
    blocks = json.dumps(post.params["blocks"])
    assert "SelfScrapeUp" in blocks or "Prometheus scrapes itself" in blocks
    (done,) = app.stub.of("files.completeUploadExternal")
    assert (
        done.params["thread_ts"] == post.response["ts"]
        and done.params["channel_id"] == post.response["channel"]
    )
    (uploaded,) = done.params["files"]
    assert uploaded["title"].startswith(f'#{_incident_ids(app)[0]} SelfScrapeUp: up{{job="self"}} > 0.5')
    png = app.stub.uploads[uploaded["id"]]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and matplotlib.image.imread(io.BytesIO(png)).shape[:2] == (
        400,
        1000,
    )
    (url_call,) = app.stub.of("files.getUploadURLExternal")
    assert int(url_call.params["length"]) == len(png)
    with app.rt.sessions() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.event == "incident.graph_posted"))
    assert event.detail["outcome"] == "uploaded" and event.detail["series"] == 1
    alt = url_call.params["alt_txt"]
    assert (
        alt.startswith('up{job="self"} from ')
        and "threshold > 0.5" in alt
        and "deploy prom-self v9 at" in alt
    )
    assert _colour_pixels(png, "#d62728") > 200 and _colour_pixels(png, "#9467bd") > 50  # threshold, deploy

    # resolved by a person: the whole incident's graph once more (and only once)
    app.rt.service.resolve(incident_id=_incident_ids(app)[0], user_id="U0ONCALL1")
    app.drain()
    uploads = app.stub.of("files.completeUploadExternal")
    assert len(uploads) == 2 and uploads[1].params["files"][0]["title"].endswith("(whole incident)")
    assert uploads[1].params["thread_ts"] == post.response["ts"]
    app.rt.service.add_rca_note(incident_id=_incident_ids(app)[0], user_id="U0ONCALL1", note="it was fine")
    app.drain()
    assert len(app.stub.of("files.completeUploadExternal")) == 2
