"""What a log line is about, carried by a context variable so it reaches every line logged while the work
runs: ``request_id`` (set by the HTTP middleware), ``incident_id`` and ``source`` (what started the work:
``alerts/<source>``, ``slack``, ``job:<name>``, ``outbox:<kind>``). incident_bot/logging_setup.py writes
them as fields; a record's own ``extra={"incident_id": ...}`` wins over the context.

Threads: a worker thread starts with an empty context; ``bind`` in a long-lived loop replaces the fields
of the previous iteration, ``bound`` restores them on exit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

FIELDS = ("request_id", "incident_id", "source")
_context: ContextVar[Mapping[str, Any]] = ContextVar("incident_bot_log_context", default={})  # noqa: B039


def current() -> Mapping[str, Any]:
    return _context.get()


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current context for the rest of it (a request, a job, a loop iteration)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def replace(**fields: Any) -> None:
    """Start a fresh context with only ``fields`` (a worker thread's next unit of work)."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def isolated(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` in a copy of the caller's context: what it binds or replaces stays inside (a delivery
    or a job called from a test's or the demo's thread leaves that thread's context as it was)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return copy_context().run(fn, *args, **kwargs)

    return run


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``fields`` for the duration of the block, then the previous context again."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextThreadPool(ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitter's log context (Bolt's lazy listeners: a click's
    request id and incident reach the lines its slow work logs)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(copy_context().run, fn, *args, **kwargs)
