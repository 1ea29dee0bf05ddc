"""Kubernetes Deployment actions through the official ``kubernetes`` client: rollout restart and scale.

- ``k8s_restart`` does what ``kubectl rollout restart`` does: a strategic-merge PATCH of the Deployment
  setting ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`` to now (RFC 3339),
  so the controller rolls new pods with the same spec.
- ``k8s_scale`` does what ``kubectl scale`` does: a merge PATCH of the ``scale`` subresource
  (``{"spec": {"replicas": N}}``).

The client is configured explicitly (API URL, bearer token, CA file / verify flag); kubeconfig and the
in-cluster service account are never loaded implicitly. Namespaces outside the allow-list are refused
before any call, in ``preview`` too. Each call has a connect and read timeout and is never retried
(urllib3 ``retries=0``); errors carry the HTTP status and the API server's message, never the token.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bot.kernel.config import Settings
from bot.kernel.errors import OperationalError
from bot.remediation.base import ActionContext, ExecutionResult, Executor, Preview

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
MAX_REPLICAS = 100
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class DeploymentTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(pattern=_DNS_LABEL)
    deployment: str | None = Field(
        default=None, pattern=_DNS_SUBDOMAIN, max_length=253, description="default: the incident's service"
    )


class K8sRestartParams(DeploymentTarget):
    pass


class K8sScaleParams(DeploymentTarget):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)
    allow_zero: bool = Field(default=False, description="scaling to 0 stops the service; say so explicitly")

    @model_validator(mode="after")
    def _zero_needs_consent(self) -> K8sScaleParams:
        if self.replicas == 0 and not self.allow_zero:
            raise ValueError("replicas: 0 stops every pod; set allow_zero: true if that is intended")
        return self


class K8sError(OperationalError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class _DeploymentExecutor:
    """Shared configuration, allow-list and error handling of the two Deployment executors."""

    needs_model: ClassVar[bool] = False
    label: ClassVar[str]

    def __init__(
        self,
        *,
        api_url: str,
        token: SecretStr | None,
        namespaces: Iterable[str],
        ca_cert: Path | None = None,
        verify_tls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        conf = k8s.Configuration(host=api_url.rstrip("/"))
        if token is not None:
            conf.api_key = {"BearerToken": token.get_secret_value()}
            conf.api_key_prefix = {"BearerToken": "Bearer"}
        conf.verify_ssl = verify_tls
        conf.ssl_ca_cert = str(ca_cert) if ca_cert else None
        conf.retries = 0  # a PATCH is not retried behind our back; urllib3 would retry connects by default
        self._host = conf.host
        self._api = k8s.AppsV1Api(k8s.ApiClient(conf))
        self._namespaces = frozenset(namespaces)
        self._timeout = (timeout, timeout)

    def close(self) -> None:
        self._api.api_client.close()

    def _target(self, p: DeploymentTarget, ctx: ActionContext) -> tuple[str, str]:
        if p.namespace not in self._namespaces:
            allowed = ", ".join(sorted(self._namespaces)) or "none (K8S_NAMESPACES is empty)"
            raise K8sError(f"namespace {p.namespace!r} is not in the allow-list ({allowed})")
        name = p.deployment or ctx.service
        if not name:
            raise K8sError("no deployment: the action names none and the incident has no service")
        if p.deployment is None and not re.fullmatch(_DNS_SUBDOMAIN, name):
            raise K8sError(f"the incident's service {name!r} is not a Deployment name; set `deployment`")
        return p.namespace, name

    def _path(self, ns: str, name: str) -> str:
        return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            raise K8sError(f"{what}: HTTP {exc.status} {_status_message(exc)}", exc.status) from None
        except ValueError as exc:  # the client's models reject an answer that is not what was asked for
            first = str(exc).splitlines()[0][:200]
            raise K8sError(f"{what}: unexpected answer ({type(exc).__name__}: {first})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = getattr(exc, "reason", None) or exc
            # NewConnectionError subclasses ConnectTimeoutError in urllib3, so it is checked first.
            if isinstance(cause, urllib3.exceptions.NewConnectionError | urllib3.exceptions.SSLError):
                raise K8sError(
                    f"{what}: Kubernetes API at {self._host} unreachable ({type(cause).__name__})"
                ) from None
            if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
                raise K8sError(f"{what}: timed out after {self._timeout[1]:g}s") from None
            # The request may have reached the API server: say so rather than guess (and never retry).
            raise K8sError(
                f"{what}: connection lost without an answer ({type(cause).__name__}); the outcome is unknown"
            ) from None

    def _describe(self, ns: str, name: str) -> tuple[Any, list[tuple[str, str]]]:
        dep = self._call(f"GET {self._path(ns, name)}", self._api.read_namespaced_deployment, name, ns)
        spec, status = dep.spec, dep.status  # the client's models guarantee spec, template and containers
        annotations = (spec.template.metadata.annotations if spec.template.metadata else None) or {}
        images = ", ".join(c.image or "?" for c in spec.template.spec.containers)
        details = [
            ("server", self._host),
            ("deployment", f"{ns}/{name}"),
            ("replicas", f"{spec.replicas} desired, {(status and status.ready_replicas) or 0} ready"),
            ("image", images),
            ("last restart", annotations.get(RESTARTED_AT, "never (no restartedAt)")),
        ]
        return dep, details

    def _failed(
        self, started: float, exc: K8sError, detail: dict[str, Any], ctx: ActionContext
    ) -> ExecutionResult:
        log.warning("%s (request %s) failed: %s", self.label, ctx.request_id, exc)
        return ExecutionResult(False, exc.status_code, _ms(started), error=str(exc), detail=detail)


class K8sRestartExecutor(_DeploymentExecutor):
    type: ClassVar[str] = "k8s_restart"
    Params: ClassVar[builtins.type[BaseModel]] = (
        K8sRestartParams  # builtins: `type` in this class is the action type
    )
    label: ClassVar[str] = "Kubernetes rollout restart"

    @staticmethod
    def body(restarted_at: str) -> dict[str, Any]:
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        p = K8sRestartParams.model_validate(params.model_dump())
        out = Preview(
            executor=self.label,
            target=f"deployment {p.namespace}/{p.deployment or ctx.service}",
            method="PATCH",
            params=p.model_dump(),
        )
        try:
            ns, name = self._target(p, ctx)
            out.path, out.params = self._path(ns, name), {**p.model_dump(), "deployment": name}
            _, out.details = self._describe(ns, name)
        except K8sError as exc:
            out.error = str(exc)
            return out
        out.details.append(("patch", f"{STRATEGIC} {json.dumps(self.body('<time of run>'))}"))
        return out

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        started = time.perf_counter()
        p = K8sRestartParams.model_validate(params.model_dump())
        detail: dict[str, Any] = {"namespace": p.namespace, "deployment": p.deployment or ctx.service}
        try:
            ns, name = self._target(p, ctx)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            # *_with_http_info answers (data, HTTP status, headers)
            dep, code, _ = self._call(
                f"PATCH {self._path(ns, name)}",
                self._api.patch_namespaced_deployment_with_http_info,
                name,
                ns,
                self.body(now),
                _content_type=STRATEGIC,
            )
        except K8sError as exc:
            return self._failed(started, exc, detail, ctx)
        detail.update(restarted_at=now, generation=dep.metadata.generation if dep.metadata else None)
        return ExecutionResult(
            True,
            code,
            _ms(started),
            detail=detail,
            response_excerpt=f"deployment {ns}/{name} restarted at {now}",
        )


class K8sScaleExecutor(_DeploymentExecutor):
    type: ClassVar[str] = "k8s_scale"
    Params: ClassVar[builtins.type[BaseModel]] = (
        K8sScaleParams  # builtins: `type` in this class is the action type
    )
    label: ClassVar[str] = "Kubernetes scale"

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        p = K8sScaleParams.model_validate(params.model_dump())
        out = Preview(
            executor=self.label,
            target=f"deployment {p.namespace}/{p.deployment or ctx.service}",
            method="PATCH",
            params=p.model_dump(),
        )
        try:
            ns, name = self._target(p, ctx)
            out.path, out.params = self._path(ns, name) + "/scale", {**p.model_dump(), "deployment": name}
            dep, out.details = self._describe(ns, name)
        except K8sError as exc:
            out.error = str(exc)
            return out
        out.details.append(("change", f"replicas {dep.spec.replicas} → {p.replicas}"))
        out.details.append(("patch", f"{MERGE} {json.dumps({'spec': {'replicas': p.replicas}})}"))
        return out

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        started = time.perf_counter()
        p = K8sScaleParams.model_validate(params.model_dump())
        detail: dict[str, Any] = {
            "namespace": p.namespace,
            "deployment": p.deployment or ctx.service,
            "to_replicas": p.replicas,
        }
        try:
            ns, name = self._target(p, ctx)
            path = self._path(ns, name) + "/scale"
            before = self._call(f"GET {path}", self._api.read_namespaced_deployment_scale, name, ns)
            detail["from_replicas"] = before.spec.replicas if before.spec else None
            _, code, _ = self._call(
                f"PATCH {path}",
                self._api.patch_namespaced_deployment_scale_with_http_info,
                name,
                ns,
                {"spec": {"replicas": p.replicas}},
                _content_type=MERGE,
            )
        except K8sError as exc:
            return self._failed(started, exc, detail, ctx)
        return ExecutionResult(
            True,
            code,
            _ms(started),
            detail=detail,
            response_excerpt=(f"deployment {ns}/{name} scaled {detail['from_replicas']} → {p.replicas}"),
        )


def _status_message(exc: ApiException) -> str:
    """The API server's ``Status.message`` (e.g. 'deployments.apps "x" not found'), else its reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    return str(exc.reason or "")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class K8sSettings(BaseModel):
    """The settings these executors read: Settings fields by name (declared in bot/kernel/config.py)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)
    k8s_api_url: str | None
    k8s_token: SecretStr | None
    k8s_namespaces: list[str]
    k8s_ca_cert: Path | None
    k8s_verify_tls: bool
    executor_timeout_seconds: float


def from_settings(settings: Settings, http_client: httpx.Client) -> list[Executor]:
    """Restart and scale, registered only when K8S_API_URL is set (they use the kubernetes client, not httpx)."""
    s = K8sSettings.model_validate(settings)
    if not s.k8s_api_url:
        return []
    kinds: tuple[type[K8sRestartExecutor | K8sScaleExecutor], ...] = (K8sRestartExecutor, K8sScaleExecutor)
    return [
        kind(
            api_url=s.k8s_api_url,
            token=s.k8s_token,
            namespaces=s.k8s_namespaces,
            ca_cert=s.k8s_ca_cert,
            verify_tls=s.k8s_verify_tls,
            timeout=s.executor_timeout_seconds,
        )
        for kind in kinds
    ]
