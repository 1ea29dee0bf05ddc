"""Locks decided in the database, so any number of replicas on one PostgreSQL agree.

PostgreSQL: transaction-scoped advisory locks (``pg_advisory_xact_lock``) on stable 64-bit hashes of the
names given, taken in sorted order (two batches touching the same names can never deadlock) and released
by the commit or rollback itself, so a crashed replica never leaves a lock behind. SQLite is one process
by design (one writer at a time anyway): a process lock gives the same guarantee there.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

_PROCESS_LOCK = threading.RLock()


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for ``name`` (the same in every process and Python version)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def xact_lock(session: Session, names: Iterable[str]) -> None:
    """PostgreSQL: lock ``names`` until this transaction commits or rolls back. No-op elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({lock_id(n) for n in names}):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


@contextmanager
def process_lock(dialect: str) -> Iterator[None]:
    """SQLite: serialise in this process; hold it around the whole transaction, commit included."""
    if dialect == "postgresql":
        yield
        return
    with _PROCESS_LOCK:
        yield
