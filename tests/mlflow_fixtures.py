"""A real MLflow tracking server for the whole test session (startup takes ~10-15 s, so one per session).

The fixtures are registered once in tests/conftest.py (so the session has one server); mark the tests
``@pytest.mark.mlflow``. Without mlflow installed they skip, saying why.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from incident_bot.demo.mlflow_local import (
    API,
    LocalMlflowServer,
    mlflow_unavailable_reason,
    seed_registered_model,
    seeded_registry,
)

SESSION_MODEL = (
    "fraud-model"  # seeded at session start (v1-v3, champion on v3); read it, never move it: seed your own
)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflowServer]:
    reason = mlflow_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with seeded_registry(SESSION_MODEL, workdir=tmp_path_factory.mktemp("mlflow")) as (server, _):
        pgid = server.pid
        yield server
    # Nothing of the server (nor the workers it forked) outlives the session.
    assert pgid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


class MlflowRest:
    """A few direct REST calls for arranging and checking state independently of the executor."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + API, timeout=30.0)

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self.http.request(method, path, **kw)
        assert resp.is_success, f"{method} {path}: {resp.status_code} {resp.text}"
        return dict(resp.json())

    def alias_version(self, model: str, alias: str = "champion") -> str:
        return str(
            self.call("GET", "/registered-models/alias", params={"name": model, "alias": alias})[
                "model_version"
            ]["version"]
        )

    def set_alias(self, model: str, version: int, alias: str = "champion") -> None:
        self.call(
            "POST", "/registered-models/alias", json={"name": model, "alias": alias, "version": str(version)}
        )

    def seed(
        self, *, versions: int = 3, alias: str | None = "champion", alias_version: int | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        name = f"fraud-model-{uuid.uuid4().hex[:8]}"
        runs = [uuid.uuid4().hex for _ in range(versions)]
        return name, seed_registered_model(
            self.url, name, versions=versions, alias=alias, alias_version=alias_version, run_ids=runs
        )


@pytest.fixture
def mlflow_rest(mlflow_server: LocalMlflowServer) -> Iterator[MlflowRest]:
    rest = MlflowRest(mlflow_server.url)
    yield rest
    rest.http.close()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A listening TCP socket on 127.0.0.1 that accepts connections (backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
