"""The executor contract: what every remediation executor implements, and what it is given.

An executor is keyed by an action type (``webhook``, ``mlflow_rollback``, ``k8s_restart``, ``k8s_scale``).
It declares a pydantic ``Params`` model (validated when a runbook is imported, so a bad runbook fails
then, naming the file and field, not at 3 a.m.), can ``preview`` exactly what it would do (shown to
approvers before they approve: target, method, path, parameters with secrets masked, and for MLflow the
current and target versions), and ``run``s it once. Executors never retry a non-idempotent call.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel


@dataclass(frozen=True)
class ActionContext:
    """Everything an executor may know about why it runs. Built from database rows, never from a click."""

    request_id: int
    incident_id: int
    incident_title: str
    service: str | None
    model: str | None
    requested_by: str
    approved_by: tuple[str, ...]
    idempotency_key: str  # the request's random UUID (unique across deployments), sent to every target
    action_id: str = ""  # the runbook action's id (added for the webhook body; keyword with a default)


@dataclass
class ExecutionResult:
    ok: bool
    status_code: int | None
    duration_ms: float
    error: str | None = None
    response_excerpt: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. {"from_version": "3", "to_version": "2"}
    # The executor declined before changing anything (e.g. the MLflow alias moved since the preview): the
    # request ends "refused", not "failed", and the error says why.
    refused: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Preview:
    """What will happen, stated for a human before they approve."""

    executor: str  # e.g. "MLflow alias rollback"
    target: str  # e.g. "fraud-model@champion" or "POST https://hooks.example.com/actions/restart"
    method: str | None = None
    path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # secrets masked
    details: list[tuple[str, str]] = field(default_factory=list)  # ("current", "v3 (created …, run …)")
    error: str | None = None  # the dry run could not read something; shown, and the action is not offered
    # The parameters to run with, resolved by the dry run (e.g. MLflow's target and expected current version),
    # or None when the executor resolves nothing. Stored on the request when its prompt is posted, so what
    # runs is what the approvers were shown (never masked: not for display).
    pin: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Executor(Protocol):
    """One per action type; instances are built once in the composition root and kept in a registry."""

    type: ClassVar[str]
    Params: ClassVar[builtins.type[BaseModel]]  # builtins: `type` in this class is the action type
    needs_model: ClassVar[bool]  # an action that needs a model is never offered for an incident without one

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview: ...

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult: ...
