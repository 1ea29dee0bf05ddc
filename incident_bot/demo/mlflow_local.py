"""A real, local MLflow tracking server for the tests and the demo, and a seeded registered model.

``mlflow server --backend-store-uri sqlite:///… --host 127.0.0.1 --port <free>`` in a subprocess of this
interpreter, waited for until ``/health`` answers, stopped with SIGTERM (then SIGKILL). Seeding goes through
the same REST API the executor uses (``registered-models/create``, ``model-versions/create``,
``registered-models/alias``), so no model artifacts are needed: a version's ``source`` is only a path string.

When mlflow is not installed, :func:`mlflow_unavailable_reason` says so in one sentence (the demo prints it,
the test fixture skips with it).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess  # noqa: S404 - we start our own mlflow server, with a fixed argument list
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

API = "/api/2.0/mlflow"


def mlflow_unavailable_reason() -> str | None:
    """``None`` when a local MLflow server can be started from this interpreter, else why not."""
    if importlib.util.find_spec("mlflow") is None:
        return (
            "mlflow is not installed in this Python environment "
            f"({sys.executable}); `pip install mlflow` to run the real MLflow rollback"
        )
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalMlflowServer:
    """One ``mlflow server`` subprocess. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    workdir: Path | None = None
    port: int = 0
    startup_timeout: float = 90.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _log_path: Path | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        """The server's process id, which is also its process group id (stop() ends the whole group)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalMlflowServer:
        reason = mlflow_unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="incident-bot-mlflow-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._log_path = self.workdir / "mlflow-server.log"
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--default-artifact-root",
            str(self.workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        # No background job runner: it forks seven huey consumers that a model registry does not need.
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": "",
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        with open(self._log_path, "wb") as log:
            # Own process group: stop() ends the server and the uvicorn/gunicorn workers it starts.
            self._proc = subprocess.Popen(  # noqa: S603 - our own command line: the mlflow executable beside this Python
                cmd,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"mlflow server exited with {self._proc.returncode}: {self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)  # readiness poll of a subprocess, not a test waiting for itself
        self.stop()
        raise RuntimeError(
            f"mlflow server did not answer /health within {self.startup_timeout:g}s: {self.log_tail()}"
        )

    def log_tail(self, chars: int = 2000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            # The server's workers are in its process group; wait until the whole group is gone.
            if not _group_gone(proc.pid, timeout=10):
                _signal_group(proc.pid, signal.SIGKILL)
                _group_gone(proc.pid, timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_gone(pgid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)  # orphaned workers are reaped by init, not by us
    return False


def _call(client: httpx.Client, method: str, path: str, **kw: Any) -> dict[str, Any]:
    resp = client.request(method, API + path, **kw)
    if not resp.is_success:
        raise RuntimeError(f"{method} {API}{path}: HTTP {resp.status_code} {resp.text[:300]}")
    return dict(resp.json()) if resp.content else {}


def seed_registered_model(
    base_url: str,
    name: str,
    *,
    versions: int = 3,
    alias: str | None = "champion",
    alias_version: int | None = None,
    run_ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Register ``name`` with ``versions`` model versions and point ``alias`` at ``alias_version`` (default: the
    newest). Returns the created model versions as MLflow returned them (``version``, ``creation_timestamp``...).
    ``run_ids`` (one per version) is recorded as each version's ``run_id``; the runs need not exist."""
    created: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        _call(client, "POST", "/registered-models/create", json={"name": name})
        for i in range(1, versions + 1):
            body: dict[str, Any] = {"name": name, "source": f"s3://incident-bot-demo/{name}/v{i}"}
            if run_ids:
                body["run_id"] = run_ids[i - 1]
            created.append(_call(client, "POST", "/model-versions/create", json=body)["model_version"])
        if alias and created:
            version = str(alias_version if alias_version is not None else created[-1]["version"])
            _call(
                client,
                "POST",
                "/registered-models/alias",
                json={"name": name, "alias": alias, "version": version},
            )
    return created


@contextmanager
def seeded_registry(
    model: str = "fraud-model", *, versions: int = 3, alias: str = "champion", workdir: Path | None = None
) -> Iterator[tuple[LocalMlflowServer, list[dict[str, Any]]]]:
    """A started local server with ``model`` registered in ``versions`` versions and ``alias`` on the newest
    (the demo's and the tests' starting point). Check :func:`mlflow_unavailable_reason` first."""
    with LocalMlflowServer(workdir=workdir) as server:
        runs = [uuid.uuid4().hex for _ in range(versions)]
        yield server, seed_registered_model(server.url, model, versions=versions, alias=alias, run_ids=runs)


ROLLBACK_RUNBOOK = "model-drift-rollback.md"


def runbooks_with_mlflow_rollback(source: Path, dest: Path, *, models: list[str] | None = None) -> Path:
    """Copy the runbook folder ``source`` to ``dest``, with ``models`` added to the model-drift runbook's
    ``models`` rule (its rollback is an ``mlflow_rollback`` bound to the incident's model). Returns ``dest``."""
    import yaml

    from retrieval.runbooks import _FRONT

    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if path.name == ROLLBACK_RUNBOOK and models:
            found = _FRONT.match(text)
            if found is None:
                raise ValueError(f"{path}: no YAML front matter")
            front = yaml.safe_load(found.group(1))
            front["models"] = list(dict.fromkeys([*front.get("models", []), *models]))
            text = f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{found.group(2)}"
        (dest / path.name).write_text(text, encoding="utf-8")
    return dest


def runbooks_with_webhook_rollback(source: Path, dest: Path) -> Path:
    """Copy the runbook folder with the model rollback turned into a signed webhook (``/actions/mlflow-rollback``),
    for a demo without mlflow installed: the bundled ``mlflow_rollback`` is not offered without MLflow."""
    import yaml

    from retrieval.runbooks import _FRONT

    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        found = _FRONT.match(text)
        if path.name == ROLLBACK_RUNBOOK and found is not None:
            front = yaml.safe_load(found.group(1))
            for action in front.get("actions", []):
                if action.get("type") == "mlflow_rollback":
                    action.update(type="webhook", url="/actions/mlflow-rollback")
            text = f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{found.group(2)}"
        (dest / path.name).write_text(text, encoding="utf-8")
    return dest
