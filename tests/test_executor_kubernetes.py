"""Kubernetes restart/scale through the official client against a local stand-in of the API server.

The stand-in is a real ``http.server`` on 127.0.0.1 that records every request (method, path, headers,
body) and answers with Kubernetes-shaped JSON (a Deployment, a Scale, or a ``Status`` on errors), so the
tests check the exact requests the ``kubernetes`` client sends. A real cluster is an edge we cannot run here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from pydantic import SecretStr, ValidationError

from bot.remediation.base import ActionContext, Executor
from bot.remediation.executors.kubernetes import (
    MERGE,
    RESTARTED_AT,
    STRATEGIC,
    K8sRestartExecutor,
    K8sRestartParams,
    K8sScaleExecutor,
    K8sScaleParams,
)
from tests.mlflow_fixtures import closed_port_url

TOKEN = "k8s-token-never-logged"  # noqa: S105
DEP_PATH = "/apis/apps/v1/namespaces/shop/deployments/checkout"


def deployment(
    replicas: int = 3, ready: int = 2, restarted: str | None = "2026-11-01T10:00:00Z"
) -> dict[str, Any]:
    annotations = {RESTARTED_AT: restarted} if restarted else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": 7},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "registry.local/checkout:1.4.2"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def scale(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas},
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ApiServerStandIn:
    """Answers (method, path) from ``routes``; anything else is a Kubernetes 404 Status."""

    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    drop: set[tuple[str, str]] = field(default_factory=set)  # close the connection without answering
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                stand_in.requests.append(
                    Recorded(
                        self.command,
                        path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                    )
                )
                if (self.command, path) in stand_in.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                code, body = stand_in.routes.get(
                    (self.command, path),
                    (404, status(404, "NotFound", f'deployments.apps "{path.rsplit("/", 1)[-1]}" not found')),
                )
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[ApiServerStandIn]:
    stand_in = ApiServerStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stand_in.handler())
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()
    thread.join()


def ctx(service: str | None = "checkout") -> ActionContext:
    return ActionContext(
        request_id=11,
        incident_id=5,
        incident_title="checkout 5xx",
        service=service,
        model=None,
        requested_by="U0REQ",
        approved_by=("U0SRE",),
        idempotency_key="k-11",
    )


def conf(url: str, **kw: Any) -> dict[str, Any]:
    return {"api_url": url, "token": SecretStr(TOKEN), "namespaces": ["shop", "ml"], "timeout": 5.0, **kw}


def test_contract_and_params() -> None:
    for cls in (K8sRestartExecutor, K8sScaleExecutor):
        ex = cls(**conf("http://127.0.0.1:1"))
        assert isinstance(ex, Executor) and not cls.needs_model
        ex.close()
    assert (K8sRestartExecutor.type, K8sScaleExecutor.type) == ("k8s_restart", "k8s_scale")
    with pytest.raises(ValidationError, match="namespace"):
        K8sRestartParams.model_validate({"namespace": "Shop/../kube-system"})
    with pytest.raises(ValidationError, match="deployment"):
        K8sRestartParams.model_validate({"namespace": "shop", "deployment": "checkout/scale"})
    with pytest.raises(ValidationError, match="replicas"):
        K8sScaleParams.model_validate({"namespace": "shop", "replicas": 101})
    with pytest.raises(ValidationError, match="allow_zero"):
        K8sScaleParams.model_validate({"namespace": "shop", "replicas": 0})
    assert (
        K8sScaleParams.model_validate({"namespace": "shop", "replicas": 0, "allow_zero": True}).replicas == 0
    )


def test_restart_preview_reads_the_deployment_and_states_the_request(api: ApiServerStandIn) -> None:
    api.routes[("GET", DEP_PATH)] = (200, deployment())
    preview = K8sRestartExecutor(**conf(api.url)).preview(K8sRestartParams(namespace="shop"), ctx())
    assert preview.error is None
    assert (preview.method, preview.path) == ("PATCH", DEP_PATH)
    assert preview.params == {"namespace": "shop", "deployment": "checkout"}  # defaulted from the incident
    details = dict(preview.details)
    assert details["deployment"] == "shop/checkout" and details["server"] == api.url
    assert details["replicas"] == "3 desired, 2 ready"
    assert details["image"] == "registry.local/checkout:1.4.2"
    assert details["last restart"] == "2026-11-01T10:00:00Z"
    assert details["patch"].startswith(STRATEGIC) and RESTARTED_AT in details["patch"]
    assert [(r.method, r.path) for r in api.requests] == [("GET", DEP_PATH)]  # a dry run only reads
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_restart_run_sends_kubectls_strategic_merge_patch(api: ApiServerStandIn) -> None:
    api.routes[("PATCH", DEP_PATH)] = (200, deployment())
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = K8sRestartExecutor(**conf(api.url)).run(
        K8sRestartParams(namespace="shop", deployment="checkout"), ctx()
    )
    after = dt.datetime.now(dt.UTC)
    assert result.ok and result.status_code == 200, result.error
    [req] = api.requests
    assert (req.method, req.path) == ("PATCH", DEP_PATH)
    assert req.headers["content-type"] == STRATEGIC
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    stamp = req.body["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert req.body == {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    assert stamp.endswith("Z") and before <= dt.datetime.fromisoformat(stamp) <= after
    assert result.detail == {
        "namespace": "shop",
        "deployment": "checkout",
        "restarted_at": stamp,
        "generation": 7,
    }


def test_scale_preview_and_run(api: ApiServerStandIn) -> None:
    api.routes[("GET", DEP_PATH)] = (200, deployment(replicas=3))
    api.routes[("GET", DEP_PATH + "/scale")] = (200, scale(3))
    api.routes[("PATCH", DEP_PATH + "/scale")] = (200, scale(5))
    ex = K8sScaleExecutor(**conf(api.url))
    params = K8sScaleParams(namespace="shop", deployment="checkout", replicas=5)
    preview = ex.preview(params, ctx())
    assert preview.error is None and (preview.method, preview.path) == ("PATCH", DEP_PATH + "/scale")
    assert dict(preview.details)["change"] == "replicas 3 → 5"
    assert dict(preview.details)["patch"] == f'{MERGE} {{"spec": {{"replicas": 5}}}}'
    api.requests.clear()
    result = ex.run(params, ctx())
    assert result.ok, result.error
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", DEP_PATH + "/scale"),
        ("PATCH", DEP_PATH + "/scale"),
    ]
    patch = api.requests[1]
    assert patch.headers["content-type"] == MERGE and patch.body == {"spec": {"replicas": 5}}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)
    assert (
        result.detail["from_replicas"] == 3
        and result.detail["to_replicas"] == 5
        and result.status_code == 200
    )


def test_namespace_outside_the_allow_list_is_refused_before_any_call(api: ApiServerStandIn) -> None:
    for ex, params in (
        (K8sRestartExecutor(**conf(api.url)), K8sRestartParams(namespace="kube-system")),
        (K8sScaleExecutor(**conf(api.url)), K8sScaleParams(namespace="kube-system", replicas=2)),
    ):
        preview = ex.preview(params, ctx())
        assert preview.error == "namespace 'kube-system' is not in the allow-list (ml, shop)"
        result = ex.run(params, ctx())
        assert not result.ok and result.error == preview.error
    empty = K8sRestartExecutor(**conf(api.url, namespaces=[])).run(K8sRestartParams(namespace="shop"), ctx())
    assert empty.error == "namespace 'shop' is not in the allow-list (none (K8S_NAMESPACES is empty))"
    assert api.requests == []


def test_no_deployment_and_no_service() -> None:
    ex = K8sRestartExecutor(**conf("http://127.0.0.1:1"))
    assert ex.preview(K8sRestartParams(namespace="shop"), ctx(service=None)).error == (
        "no deployment: the action names none and the incident has no service"
    )


def test_missing_deployment_and_forbidden(api: ApiServerStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ex = K8sRestartExecutor(**conf(api.url))
    missing = ex.preview(K8sRestartParams(namespace="shop", deployment="nope"), ctx())
    assert (
        missing.error
        == 'GET /apis/apps/v1/namespaces/shop/deployments/nope: HTTP 404 deployments.apps "nope" not found'
    )
    api.routes[("PATCH", DEP_PATH)] = (
        403,
        status(
            403,
            "Forbidden",
            'deployments.apps "checkout" is forbidden: '
            'User "system:serviceaccount:ops:incident-bot" cannot patch',
        ),
    )
    result = ex.run(K8sRestartParams(namespace="shop", deployment="checkout"), ctx())
    assert not result.ok and result.status_code == 403
    assert result.error == (
        f'PATCH {DEP_PATH}: HTTP 403 deployments.apps "checkout" is forbidden: '
        'User "system:serviceaccount:ops:incident-bot" cannot patch'
    )
    assert TOKEN not in caplog.text + str(result) + str(missing)


def test_timeout_unreachable_and_never_retried(api: ApiServerStandIn, silent_socket: str) -> None:
    slow = K8sRestartExecutor(**conf(silent_socket, timeout=0.3))
    result = slow.run(K8sRestartParams(namespace="shop", deployment="checkout"), ctx())
    assert not result.ok and result.error == f"PATCH {DEP_PATH}: timed out after 0.3s"
    url = closed_port_url()
    down = K8sScaleExecutor(**conf(url)).preview(K8sScaleParams(namespace="shop", replicas=2), ctx())
    assert down.error == f"GET {DEP_PATH}: Kubernetes API at {url} unreachable (NewConnectionError)"
    # The API server drops the connection after reading the PATCH: reported as unknown, and sent once only.
    api.drop.add(("PATCH", DEP_PATH))
    dropped = K8sRestartExecutor(**conf(api.url)).run(
        K8sRestartParams(namespace="shop", deployment="checkout"), ctx()
    )
    assert not dropped.ok and "the outcome is unknown" in (dropped.error or "")
    assert [(r.method, r.path) for r in api.requests] == [("PATCH", DEP_PATH)]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-stand-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "ca.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_with_the_configured_ca_and_verification(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)
    stand_in = ApiServerStandIn()
    stand_in.routes[("GET", DEP_PATH)] = (200, deployment())
    server = ThreadingHTTPServer(("127.0.0.1", 0), stand_in.handler())
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        params = K8sRestartParams(namespace="shop", deployment="checkout")
        trusted = K8sRestartExecutor(**conf(url, ca_cert=cert)).preview(params, ctx())
        assert trusted.error is None and dict(trusted.details)["image"] == "registry.local/checkout:1.4.2"
        untrusted = K8sRestartExecutor(**conf(url)).preview(params, ctx())
        assert untrusted.error == f"GET {DEP_PATH}: Kubernetes API at {url} unreachable (SSLError)"
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            unverified = K8sRestartExecutor(**conf(url, verify_tls=False)).preview(params, ctx())
        assert unverified.error is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_incident_service_that_is_not_a_deployment_name(api: ApiServerStandIn) -> None:
    preview = K8sRestartExecutor(**conf(api.url)).preview(
        K8sRestartParams(namespace="shop"), ctx("Checkout API")
    )
    assert preview.error == "the incident's service 'Checkout API' is not a Deployment name; set `deployment`"
    assert api.requests == []


def test_build_executors_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from bot.kernel.config import Settings
    from incident_bot.runtime import build_executors

    for key in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_TOKEN",
        "K8S_API_URL",
        "K8S_TOKEN",
        "K8S_CA_CERT",
        "K8S_NAMESPACES",
        "K8S_VERIFY_TLS",
    ):
        monkeypatch.delenv(key, raising=False)
    with httpx.Client() as http:
        assert sorted(build_executors(Settings(_env_file=None), http)) == ["webhook"]
        settings = Settings(
            _env_file=None,
            mlflow_tracking_uri="http://mlflow:5000",
            k8s_api_url="https://k8s:6443",
            k8s_token=SecretStr(TOKEN),
            k8s_namespaces="shop, ml",
            k8s_verify_tls=False,
        )
        built = build_executors(settings, http)
    assert sorted(built) == ["k8s_restart", "k8s_scale", "mlflow_rollback", "webhook"]
    assert settings.k8s_namespaces == ["shop", "ml"]
    assert Settings(_env_file=None, k8s_namespaces='["a", "b"]').k8s_namespaces == ["a", "b"]
    assert TOKEN not in repr(settings)
    monkeypatch.setenv("K8S_NAMESPACES", "shop,ml")
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    from_env = Settings(_env_file=None)
    assert from_env.k8s_namespaces == ["shop", "ml"] and from_env.k8s_token is not None
    monkeypatch.setenv("K8S_NAMESPACES", '["shop"]')
    assert Settings(_env_file=None).k8s_namespaces == ["shop"]


def test_an_answer_that_is_not_a_deployment(api: ApiServerStandIn) -> None:
    api.routes[("GET", DEP_PATH)] = (
        200,
        {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "checkout"}},
    )
    preview = K8sRestartExecutor(**conf(api.url)).preview(
        K8sRestartParams(namespace="shop", deployment="checkout"), ctx()
    )
    assert (
        preview.error
        == f"GET {DEP_PATH}: unexpected answer (ValidationError: 1 validation error for V1Deployment)"
    )
