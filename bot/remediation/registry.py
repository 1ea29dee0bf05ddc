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

from bot.kernel.config import Settings
from bot.remediation.base import Executor
from bot.remediation.executors import kubernetes, mlflow, webhook

ExecutorFactory = Callable[[Settings, httpx.Client], list[Executor]]

EXECUTOR_FACTORIES: tuple[ExecutorFactory, ...] = (
    webhook.from_settings,  # always
    mlflow.from_settings,  # when MLFLOW_TRACKING_URI is set
    kubernetes.from_settings,  # when K8S_API_URL is set
)


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
