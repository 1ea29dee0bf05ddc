"""The executor registry: action type → executor instance, built once in the composition root.

The same pattern as the alert-parser table (handlers/parsers/__init__.py): adding an executor is one
module under ``bot/remediation/executors/`` plus one ``registry.add(...)`` line in ``incident_bot/runtime.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bot.remediation.base import Executor


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
