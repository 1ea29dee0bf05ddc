"""Real Prometheus and real Alertmanager (the Debian packages) pointed at `incident-bot serve`.

Prometheus evaluates alerting rules on ``vector(1)`` every second; Alertmanager groups them by
``team`` and posts each group to ``/alerts/alertmanager`` with a bearer token, re-sending every
``repeat_interval``. Then the rules are removed (``/-/reload``) and the resolves arrive. Asserted:
one incident per group, one Slack post per incident, repeat deliveries deduplicated (repeat counts
grow, no new incident, no new post), resolve in place (``chat.update`` of the same message), and no
dead letters. Nothing is installed here: the test skips when the binaries are absent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.models import AlertPayload, AlertRecord, DeadLetter, Incident
from incident_bot.demo.slack_stub import SlackStub

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
TOKEN = "am-e2e-token"  # noqa: S105

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (PROMETHEUS.exists() and ALERTMANAGER.exists()),
        reason=f"needs {PROMETHEUS} and {ALERTMANAGER} (Debian packages prometheus and "
        "prometheus-alertmanager; `make setup` installs them with apt-get when run as root)",
    ),
]

RULES_FIRING = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: CheckoutErrorsHigh
        expr: vector(1)
        labels: {team: storefront, service: checkout, severity: critical}
        annotations: {summary: "checkout 5xx above 5%"}
      - alert: CheckoutLatencyHigh
        expr: vector(1)
        labels: {team: storefront, service: checkout, severity: warning}
        annotations: {summary: "checkout p99 above 800ms"}
      - alert: PaymentsQueueBacklog
        expr: vector(1)
        labels: {team: payments, service: payments-worker, severity: warning}
        annotations: {summary: "payments queue backlog growing"}
"""
RULES_QUIET = "groups: []\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(
    what: str, predicate: Callable[[], bool], timeout: float, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Wait for a real external process to reach a state (there is nothing to block on but time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{proc.args[0]} exited early with {proc.returncode} while waiting for {what}"
                )
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    def __init__(self, tmp: Path, stub: SlackStub) -> None:
        self.tmp, self.stub = tmp, stub
        self.bot_port, self.am_port, self.prom_port = _free_port(), _free_port(), _free_port()
        self.db = tmp / "bot.db"
        self.rules = tmp / "rules.yml"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.engine: Engine = create_engine(f"sqlite:///{self.db}")

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.db}",
            "SLACK_BOT_TOKEN": "xoxb-e2e",
            "SLACK_SIGNING_SECRET": "sig",
            "SLACK_API_URL": self.stub.base_url,
            "ALERT_WEBHOOK_TOKEN": TOKEN,
            "RUNBOOKS_DIR": str(SAMPLE_DATA / "runbooks"),
            "HF_HUB_OFFLINE": "1",
            "LOG_LEVEL": "WARNING",
        }
        self._spawn(
            "bot", [sys.executable, "-m", "incident_bot", "serve", "--port", str(self.bot_port)], env=env
        )
        (self.tmp / "alertmanager.yml").write_text(
            json.dumps(
                {
                    "route": {
                        "receiver": "incident-bot",
                        "group_by": ["team"],
                        "group_wait": "1s",
                        "group_interval": "2s",
                        "repeat_interval": "4s",
                    },
                    "receivers": [
                        {
                            "name": "incident-bot",
                            "webhook_configs": [
                                {
                                    "url": f"http://127.0.0.1:{self.bot_port}/alerts/alertmanager",
                                    "send_resolved": True,
                                    "http_config": {"authorization": {"credentials": TOKEN}},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        self._spawn(
            "alertmanager",
            [
                str(ALERTMANAGER),
                f"--config.file={self.tmp / 'alertmanager.yml'}",
                f"--storage.path={self.tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.am_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
        )
        self.rules.write_text(RULES_FIRING)
        (self.tmp / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"evaluation_interval": "1s", "scrape_interval": "15s"},
                    "rule_files": [str(self.rules)],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]
                    },
                }
            )
        )
        self._spawn(
            "prometheus",
            [
                str(PROMETHEUS),
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
                "--web.enable-lifecycle",
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
        )

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with (self.tmp / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the descriptor
            self.procs.append(
                subprocess.Popen(args, env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp.glob("*.log")
        )

    def count(self, model: type, *where: Any) -> int:
        if not self.db.exists():
            return 0
        with self.engine.connect() as conn:
            try:
                return int(conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)
            except Exception:  # noqa: BLE001 - the schema is still being migrated by serve
                return 0

    def rows(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float = 45) -> None:
        try:
            _wait(what, predicate, timeout, self.procs)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with SlackStub() as stub:
        s = Stack(tmp_path, stub)
        try:
            s.start()
            yield s
        finally:
            s.stop()


def test_real_prometheus_and_alertmanager_end_to_end(stack: Stack) -> None:
    started = time.monotonic()
    # 1. Both groups arrive: one incident per Alertmanager group, one Slack post each.
    stack.wait(
        "two incidents from two Alertmanager groups",
        lambda: stack.count(Incident) == 2 and stack.count(AlertRecord) == 3,
        timeout=60,
    )
    stack.stub.wait_for(lambda calls: sum(c.method == "chat.postMessage" for c in calls) >= 2, timeout=45)
    incidents = {
        r.group_key: r for r in stack.rows(select(Incident.id, Incident.group_key, Incident.slack_ts))
    }
    assert len(incidents) == 2 and all('team="' in key for key in incidents)
    per_incident = {
        r.incident_id: r.n
        for r in stack.rows(
            select(AlertRecord.incident_id, func.count().label("n")).group_by(AlertRecord.incident_id)
        )
    }
    assert sorted(per_incident.values()) == [1, 2]  # storefront: 2 alerts in one incident; payments: 1

    # 2. repeat_interval resends are deduplicated: deliveries grow, incidents and posts do not.
    first_payloads = stack.count(AlertPayload)
    stack.wait(
        "repeat deliveries of both groups",
        lambda: (
            stack.count(AlertPayload) >= first_payloads + 2
            and stack.count(AlertRecord, AlertRecord.repeat_count >= 1) == 3
        ),
        timeout=30,
    )
    assert stack.count(Incident) == 2 and stack.count(AlertRecord) == 3
    assert len(stack.stub.of("chat.postMessage")) == 2

    # 3. The rules stop firing: Prometheus sends resolves, Alertmanager delivers them, the bot
    #    resolves each incident and updates its message in place.
    stack.rules.write_text(RULES_QUIET)
    reload = httpx.post(f"http://127.0.0.1:{stack.prom_port}/-/reload", timeout=10)
    assert reload.status_code == 200
    stack.wait(
        "both incidents resolved",
        lambda: stack.count(Incident, Incident.status == "resolved") == 2,
        timeout=45,
    )
    stack.wait(
        "resolve updates in Slack",
        lambda: _resolved_updates(stack) == {r.slack_ts for r in stack.rows(select(Incident.slack_ts))},
        timeout=30,
    )
    assert stack.count(AlertRecord, AlertRecord.status == "resolved") == 3
    assert len(stack.stub.of("chat.postMessage")) == 2  # resolved in place, never re-posted
    assert stack.count(DeadLetter) == 0, stack.rows(select(DeadLetter.reason))
    print(
        f"\nreal Alertmanager e2e: {time.monotonic() - started:.1f}s after start of the stack, "
        f"{stack.count(AlertPayload)} deliveries"
    )


def _resolved_updates(stack: Stack) -> set[str]:
    return {
        c.params["ts"]
        for c in stack.stub.of("chat.update")
        if "Resolved" in json.dumps(c.params.get("blocks"))
    }
