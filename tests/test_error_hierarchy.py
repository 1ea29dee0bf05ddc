"""One exception hierarchy: every error class bot/, handlers/ and incident_bot/ define derives from
IncidentBotError (user-facing DomainError or OperationalError); retrieval/'s derive from its own RetrievalError.

Classes are found by importing every module of each package, so a new exception class cannot slip past.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from bot.kernel.errors import ConfigError, DomainError, IncidentBotError, OperationalError
from retrieval.errors import RetrievalError


def _exception_classes(package: str) -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if info.name.endswith(".__main__"):  # runs the CLI when imported
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_bot_and_handlers_error_derives_from_incident_bot_error() -> None:
    classes = {
        **_exception_classes("bot"),
        **_exception_classes("handlers"),
        **_exception_classes("incident_bot"),
    }
    assert len(classes) >= 13
    outside = {name for name, cls in classes.items() if not issubclass(cls, IncidentBotError)}
    assert outside == set(), "derive these from DomainError or OperationalError (bot/kernel/errors.py)"


def test_each_error_sits_on_its_branch_and_keeps_value_error_where_callers_catch_it() -> None:
    classes = {**_exception_classes("bot"), **_exception_classes("handlers")}
    branch = {
        "bot.kernel.errors.NotFound": DomainError,
        "bot.kernel.errors.NotAuthorised": DomainError,
        "bot.kernel.errors.InvalidState": DomainError,
        "handlers.parsers.errors.PayloadError": DomainError,
        "handlers.blocks.ids.InvalidValue": DomainError,
        "handlers.http.edge.Rejected": DomainError,
        "bot.remediation.executors.kubernetes.K8sError": OperationalError,
        "bot.remediation.executors.mlflow.MlflowError": OperationalError,
        "bot.remediation.policy.PolicyError": ConfigError,
        "bot.remediation.actions.ActionError": ConfigError,
        "bot.kernel.outbox.ChatError": OperationalError,
        "bot.kernel.outbox.LeaseLost": OperationalError,
        "bot.kernel.errors.ConfigError": OperationalError,
    }
    for name, base in branch.items():
        assert issubclass(classes[name], base), name
    assert not issubclass(OperationalError, DomainError) and not issubclass(DomainError, OperationalError)
    for name in (
        "handlers.parsers.errors.PayloadError",
        "handlers.blocks.ids.InvalidValue",
        "bot.remediation.policy.PolicyError",
        "bot.remediation.actions.ActionError",
    ):
        assert issubclass(classes[name], ValueError), name


def test_retrieval_errors_derive_from_their_own_base() -> None:
    classes = _exception_classes("retrieval")
    assert {
        "retrieval.importers.records.RecordError",
        "retrieval.importers.sources.SourceError",
        "retrieval.runbooks.RunbookError",
    } <= set(classes)
    for name, cls in classes.items():
        assert issubclass(cls, RetrievalError), name
    assert issubclass(RetrievalError, ValueError)
