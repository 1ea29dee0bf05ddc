"""The executor registry: action type → executor instance, built once in the composition root.

``EXECUTOR_FACTORIES`` is the table, one line per module under ``bot/remediation/executors/``: each module
declares a small settings model (the ``Settings`` fields it reads, by name) and a factory
``from_settings(settings, http_client) -> list[Executor]`` that returns nothing when it is not configured.
``incident_bot/runtime.py::build_executors`` runs the table. Adding an executor touches its module, one
line here, and its settings in ``bot/kernel/config.py`` (and the README's settings table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import httpx
from pydantic import BaseModel

from bot.kernel.config import Settings
from bot.remediation.base import Executor
from bot.remediation.executors import kubernetes, mlflow, webhook

ExecutorFactory = Callable[[Settings, httpx.Client], list[Executor]]

EXECUTOR_FACTORIES: tuple[ExecutorFactory, ...] = (
    webhook.from_settings,  # always
    mlflow.from_settings,  # when MLFLOW_TRACKING_URI is set
    kubernetes.from_settings,  # when K8S_API_URL is set
)

# Every action type a runbook may name: its parameters' model (so a runbook is validated on import even when
# the executor is not configured here) and the setting that enables it (None: always available).
ACTION_TYPES: dict[str, tuple[type[BaseModel], str | None]] = {
    "webhook": (webhook.WebhookParams, None),
    "mlflow_rollback": (mlflow.MlflowRollbackParams, "MLFLOW_TRACKING_URI"),
    "k8s_restart": (kubernetes.K8sRestartParams, "K8S_API_URL"),
    "k8s_scale": (kubernetes.K8sScaleParams, "K8S_API_URL"),
}


def not_configured(action_type: str) -> str:
    """Why an action of ``action_type`` cannot run here, naming the setting that enables it."""
    setting = ACTION_TYPES.get(action_type, (None, None))[1]
    if setting:
        return f"action type '{action_type}' needs {setting}"
    return f"no executor for action type '{action_type}' is configured"


class ExecutorRegistry(Mapping[str, Executor]):
    def __init__(self, executors: list[Executor] | None = None) -> None:
        self._by_type: dict[str, Executor] = {}
        for e in executors or []:
            self.add(e)

    def add(self, executor: Executor) -> ExecutorRegistry:
        if not isinstance(executor, Executor):
            raise TypeError(f"{type(executor).__name__} does not implement the Executor protocol")
        if executor.type in self._by_type:
            raise ValueError(f"two executors for action type '{executor.type}'")
        self._by_type[executor.type] = executor
        return self

    def __getitem__(self, action_type: str) -> Executor:
        return self._by_type[action_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)
