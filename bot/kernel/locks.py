"""Locks decided in the database, so any number of replicas on one PostgreSQL agree.

PostgreSQL: transaction-scoped advisory locks (``pg_advisory_xact_lock``) on stable 64-bit hashes of the
names given, taken in sorted order (two batches touching the same names can never deadlock) and released
by the commit or rollback itself, so a crashed replica never leaves a lock behind. SQLite is one process
by design (one writer at a time anyway): a process lock gives the same guarantee there, and batches that
queue for it share one commit (``GroupCommit``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.db import SQLITE_BEGIN_IMMEDIATE, transaction

log = logging.getLogger(__name__)
_PROCESS_LOCK = threading.RLock()
_LOCK_ALL = text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) WITH ORDINALITY AS t(k, n) "
    "ORDER BY n"
)
T = TypeVar("T")


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for ``name`` (the same in every process and Python version)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def xact_lock(session: Session, names: Iterable[str]) -> None:
    """PostgreSQL: lock ``names`` until this transaction commits or rolls back. No-op elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({lock_id(n) for n in names})
    if len(keys) == 1:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": keys[0]})
    elif (
        keys
    ):  # one round trip; unnest yields the (sorted) array in order, and each lock is taken as its row is
        session.execute(_LOCK_ALL, {"keys": keys})


@contextmanager
def locked(sessions: sessionmaker[Session], names: Iterable[str]) -> Iterator[Session]:
    """One transaction that holds a lock on ``names`` from its first statement to its commit, across
    threads and replicas: ``pg_advisory_xact_lock`` on PostgreSQL; on SQLite ``BEGIN IMMEDIATE``, the
    database's one write lock (a superset of any name's lock), waited for up to the busy timeout. Use it
    for a decision that reads, counts and then writes (e.g. a rate limit): nothing can change what it read
    before it commits. Keep it short and open no other session inside it (on SQLite that would wait on
    itself)."""
    with sessions() as session, session.begin():
        session.connection(execution_options={SQLITE_BEGIN_IMMEDIATE: True})
        xact_lock(session, names)
        yield session


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    result: Any = None
    error: Exception | None = None
    done: bool = False


class GroupCommit:
    """SQLite: units of work that queue for the process lock while another holds it are then run together
    in one transaction, in arrival order: one commit (one WAL fsync) for the group instead of one each.

    Nothing a caller sees changes: ``run`` returns only after the transaction holding its unit committed
    (durable), and a unit still commits atomically with everything it wrote. If anything in a group
    fails, the whole group rolls back and each unit is run again alone in its own transaction, so one
    failing unit fails only itself, exactly as if the units had never been grouped (every decision is
    read from the database, so a unit run again decides the same way). A unit alone in the queue runs
    at once, as before. PostgreSQL keeps one transaction per unit (its advisory locks must be taken in
    sorted order per transaction, and replicas give it parallelism instead)."""

    def __init__(self, sessions: sessionmaker[Session], *, max_units: int = 16) -> None:
        self._sessions = sessions
        self._max = max_units
        self._queue: list[_Unit[Any]] = []
        self._mutex = threading.Lock()

    def run(self, work: Callable[[Session], T]) -> T:
        unit: _Unit[T] = _Unit(work)
        with self._mutex:
            self._queue.append(unit)
        while not unit.done:
            with _PROCESS_LOCK:
                if unit.done:  # a previous holder ran it in its group
                    break
                with self._mutex:
                    group, self._queue = self._queue[: self._max], self._queue[self._max :]
                self._run(group)
        if unit.error is not None:
            raise unit.error
        return cast(T, unit.result)

    def _run(self, group: list[_Unit[Any]]) -> None:
        try:
            if len(group) > 1 and self._together(group):
                return
            for unit in group:  # alone (or again, alone, after the group failed)
                try:
                    with transaction(self._sessions) as session:
                        unit.result = unit.work(session)
                except Exception as exc:
                    unit.error = exc
                unit.done = True
        except BaseException as exc:  # e.g. KeyboardInterrupt: nobody may wait for a unit left behind
            for unit in group:
                if not unit.done:
                    unit.error, unit.done = RuntimeError(f"interrupted: {exc!r}"), True
            raise

    def _together(self, group: list[_Unit[Any]]) -> bool:
        try:
            with transaction(self._sessions) as session:
                results = [unit.work(session) for unit in group]
        except Exception as exc:
            log.info(
                "a group of %d batches failed together (%s); storing each alone",
                len(group),
                type(exc).__name__,
            )
            return False
        for unit, result in zip(group, results, strict=True):
            unit.result, unit.done = result, True
        return True
