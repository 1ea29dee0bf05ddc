"""A local Prometheus for the demo (the Debian package `make setup` installs), holding 45 minutes of history of
the metric the sample checkout alert's rule watches, so the incident's thread gets the alert's own graph.

The history is synthetic (no pgbouncer runs here), written as OpenMetrics and backfilled with ``promtool tsdb
create-blocks-from openmetrics`` before Prometheus starts: waiting clients at 0 until the checkout deploy,
then climbing to 140 (the sample knowledge base's story). The demo says so when it starts it.
"""

from __future__ import annotations

import math
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
METRIC = 'pgbouncer_pools_client_waiting_connections{database="checkout"}'


def prometheus_unavailable_reason() -> str | None:
    for binary in (PROMETHEUS, PROMTOOL):
        if not binary.exists():
            return f"{binary} is not installed (Debian package prometheus; `make setup` installs it as root)"
    return None


def checkout_history(*, now: datetime, deploy_at: datetime, minutes: int = 45, step_s: int = 15) -> str:
    """OpenMetrics text: the waiting clients every ``step_s`` seconds over the last ``minutes``."""
    lines = ["# TYPE pgbouncer_pools_client_waiting_connections gauge"]
    start = int((now - timedelta(minutes=minutes)).timestamp())
    deploy = deploy_at.timestamp()
    for t in range(start, int(now.timestamp()), step_s):
        after = t - deploy
        value = 0.0 if after < 0 else min(140.0, after / 360 * 140) + 4 * math.sin(t / 40) ** 2
        lines.append(f"{METRIC} {value:.1f} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_prometheus(workdir: Path, history: str, *, timeout: float = 30.0) -> Iterator[str]:
    """Backfill ``history`` and serve it on a local port; yields the base URL; stops it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    (workdir / "history.om").write_text(history, encoding="utf-8")
    subprocess.run(  # noqa: S603 - our own command line: the packaged promtool, paths we made
        [str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(workdir / "history.om"), str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (workdir / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n", encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own command line: the packaged prometheus
            [
                str(PROMETHEUS),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:  # a real external process: nothing to block on but its readiness endpoint
            if proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {proc.returncode}; see {workdir / 'prometheus.log'}"
                )
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {timeout:g}s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
