"""Executors beyond the webhook: one module each, built from settings by the composition root.

``build_executors(settings, http=...)`` returns the executors whose settings are present (MLflow when
``MLFLOW_TRACKING_URI`` is set, the two Kubernetes ones when ``K8S_API_URL`` is set); the composition root
adds them to the registry keyed by ``Executor.type``. Executors never read settings themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from bot.remediation.executors.kubernetes import K8sRestartExecutor, K8sScaleExecutor
from bot.remediation.executors.mlflow import MlflowRollbackExecutor

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.remediation.base import Executor

__all__ = ["K8sRestartExecutor", "K8sScaleExecutor", "MlflowRollbackExecutor", "build_executors"]


def build_executors(settings: Settings, *, http: httpx.Client) -> list[Executor]:
    out: list[Executor] = []
    timeout = settings.executor_timeout_seconds
    if settings.mlflow_tracking_uri:
        out.append(MlflowRollbackExecutor(client=http, tracking_uri=settings.mlflow_tracking_uri,
                                          token=settings.mlflow_tracking_token, timeout=timeout))
    if settings.k8s_api_url:
        k8s_conf = {"api_url": settings.k8s_api_url, "token": settings.k8s_token,
                    "namespaces": settings.k8s_namespaces, "ca_cert": settings.k8s_ca_cert,
                    "verify_tls": settings.k8s_verify_tls, "timeout": timeout}
        out += [K8sRestartExecutor(**k8s_conf), K8sScaleExecutor(**k8s_conf)]  # type: ignore[arg-type]
    return out
