"""A transactional outbox for chat: the state change and the message to send commit together.

It also carries the one piece of work that must precede an incident's first message: its advice
(``Kind.ADVISE``, bot/advice/messages.py), so the post only renders what is stored.

``enqueue(session, ...)`` adds a row in the caller's transaction; workers in any replica deliver the rows
later (a few background threads per process, or ``Outbox.drain()`` in tests). Rules:

- **Claiming**: rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite is one
  process) and leased (``status='sending'``, ``locked_until``) in a short transaction; the chat call
  happens outside any transaction, so a slow Slack holds no database lock and no request thread.
  A replica killed mid-delivery leaves a lease that expires; any worker then takes the row again.
- **Order per incident**: a row is claimable only when no earlier row of the same incident is pending
  or being sent, so the first post always precedes its updates and thread replies.
- **Coalescing**: an update whose ``coalesce_key`` already has a pending row adds nothing (the message is
  rendered from the database at delivery, so the last state is always what is sent); a new update is
  due no sooner than ``coalesce_seconds`` after the previous one for that key was sent.
- **Failures**: ``ChatError.retry_after`` (Slack 429 ``Retry-After``) is honoured; 5xx, timeouts and
  connection errors back off exponentially (capped); nothing is dropped except errors that can never
  succeed (``ChatError.permanent``), which are kept as ``failed`` rows with the error.
- **Exactly one first post**: ``dedup_key`` is unique; the handler records the message ts in the same
  transaction that marks the row done. A post whose outcome is unknown (a timeout, or the process died
  before that commit and the lease expired) is not simply sent again: the next attempt (``attempts > 1``)
  looks for the message by its metadata first (bot/advice/messages.py); see ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, bindparam, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from bot.kernel import logcontext, metrics
from bot.kernel.db import database_unavailable, short_error, transaction
from bot.kernel.db_types import JSONType, UTCDateTime, utcnow
from bot.kernel.errors import OperationalError
from bot.kernel.models import Base

log = logging.getLogger(__name__)


class Kind(StrEnum):
    ADVISE = "advise"  # compute and store an incident's suggestions (no chat call); precedes its post
    POST_INCIDENT = "post_incident"
    UPDATE_INCIDENT = "update_incident"
    THREAD_REPLY = "thread_reply"
    POST_APPROVAL = "post_approval"  # a request's approval prompt, in the incident thread
    UPDATE_APPROVAL = "update_approval"  # the prompt re-rendered (k of N, outcome, expiry)
    APPROVAL_RESULT = "approval_result"  # a request's result in the incident thread, naming every approver
    FREEZE_NOTICE = "freeze_notice"  # remediation actions frozen/unfrozen: one line in the incident channel
    ALERT_GRAPH = (
        "alert_graph"  # the alert's Prometheus graph uploaded into the thread (bot/reports/alert_graph.py)
    )
    JOB_MESSAGE = "job_message"  # a scheduler job's reminder (in a thread) or the weekly digest (bot/reports/reminders.py)


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


class ChatError(OperationalError):
    """A chat call that failed in a way the outbox understands: ``retry_after`` seconds (rate limited),
    or ``permanent`` (can never succeed as sent, e.g. invalid blocks). Anything else is retried."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class LeaseLost(OperationalError):
    """Raised by a handler (via ``Outbox.renew``) when its claim expired and another worker took the row."""


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_incident_status", "incident_id", "status"),
        Index("ix_outbox_coalesce", "coalesce_key", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[Any] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    coalesce_key: Mapped[str | None] = mapped_column(String(200))
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)


# A handler does the chat call for one row and returns what to write in the transaction that marks the
# row done (e.g. the message ts), or None when there is nothing to record.
Finalizer = Callable[[Session], None]
Handler = Callable[[OutboxMessage], Finalizer | None]

DEFAULT_COALESCE_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 300.0


_PENDING_FOR_KEY = (
    select(OutboxMessage)
    .where(OutboxMessage.coalesce_key == bindparam("key"), OutboxMessage.status == Status.PENDING.value)
    .order_by(OutboxMessage.id)
    .limit(1)
)
_LAST_SENT_FOR_KEY = select(func.max(OutboxMessage.sent_at)).where(
    OutboxMessage.coalesce_key == bindparam("key")
)


def enqueue(
    session: Session,
    *,
    kind: str,
    incident_id: int | None = None,
    payload: dict[str, Any] | None = None,
    coalesce_key: str | None = None,
    dedup_key: str | None = None,
    coalesce_seconds: float = DEFAULT_COALESCE_SECONDS,
) -> OutboxMessage | None:
    """Add a chat message to send in the caller's transaction. Returns the row, the pending row it was
    coalesced into, or None if ``dedup_key`` was already used (e.g. the incident's first post)."""
    now = utcnow()
    if coalesce_key is not None:
        pending = session.scalars(_PENDING_FOR_KEY, {"key": coalesce_key}).first()
        if pending is not None:
            if payload:
                pending.payload = {**(pending.payload or {}), **payload}
            return pending
        last_sent = session.scalar(_LAST_SENT_FOR_KEY, {"key": coalesce_key})
        due = now if last_sent is None else max(now, last_sent + timedelta(seconds=coalesce_seconds))
    else:
        due = now
    row = OutboxMessage(
        incident_id=incident_id,
        kind=str(kind),
        payload=payload or {},
        status=Status.PENDING.value,
        attempts=0,
        next_attempt_at=due,
        coalesce_key=coalesce_key,
        dedup_key=dedup_key,
        created_at=now,
    )
    if dedup_key is None:
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


class Outbox:
    """Delivers outbox rows with the handlers registered per kind."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        coalesce_seconds: float = DEFAULT_COALESCE_SECONDS,
        lease_seconds: float = 120.0,
        poll_seconds: float = 1.0,
        batch: int = 4,
    ) -> None:
        self._sessions = sessions
        self._handlers: dict[str, Handler] = {}
        self._prepares: dict[str, Callable[[list[OutboxMessage]], None]] = {}
        self.coalesce_seconds = coalesce_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._batch = batch
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[str(kind)] = handler

    def enqueue(self, session: Session, **kw: Any) -> OutboxMessage | None:
        kw.setdefault("coalesce_seconds", self.coalesce_seconds)
        return enqueue(session, **kw)

    # ---- workers -------------------------------------------------------------------------------------
    def start(self, threads: int = 2) -> None:
        for n in range(threads):
            t = threading.Thread(target=self._loop, name=f"outbox-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wake(self) -> None:
        """Tell this process's workers there is something to send (other replicas find it by polling)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.run_once()
            except Exception as exc:  # keep the thread alive and try again
                if database_unavailable(exc):  # an outage is one short line, not a traceback per poll
                    log.warning("outbox worker: database unavailable: %s", short_error(exc))
                else:
                    log.exception("outbox worker: claiming failed")
                claimed = 0
            if claimed == 0:
                self._wake.wait(self._poll)
                self._wake.clear()

    def drain(self, *, ignore_delays: bool = True, max_rounds: int = 100) -> int:
        """Deliver everything pending now, synchronously (tests, CLI). With ``ignore_delays`` coalescing and
        back-off delays are skipped; a row that fails is tried at most once per drain. Returns rows done."""
        done, tried = 0, set[int]()
        for _ in range(max_rounds):
            due = utcnow() + timedelta(days=3650) if ignore_delays else None
            ids = self._claim(due_before=due, exclude=tried)
            if not ids:
                break
            tried.update(ids)
            self._prepare(ids)
            done += sum(self._deliver(i) for i in ids)
        return done

    def run_once(self) -> int:
        ids = self._claim(due_before=None, exclude=set())
        self._prepare(ids)
        for i in ids:
            self._deliver(i)
        return len(ids)

    def register_prepare(self, kind: str, prepare: Callable[[list[OutboxMessage]], None]) -> None:
        """``prepare(rows)`` is called once with every row of ``kind`` a worker claimed together, before they
        are delivered one by one: work that is cheaper for several rows at once (the advice's query
        embeddings, one model call for the batch). Only an optimisation: if it fails, the rows are
        delivered unprepared."""
        self._prepares[str(kind)] = prepare

    def _prepare(self, ids: list[int]) -> None:
        if len(ids) < 2 or not self._prepares:
            return
        try:
            with self._sessions() as session:
                rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
                session.expunge_all()
            for kind, prepare in self._prepares.items():
                mine = [r for r in rows if r.kind == kind]
                if len(mine) > 1:
                    prepare(mine)
        except Exception as exc:  # an optimisation only: delivery does the work itself
            log.warning(
                "outbox: preparing %s rows failed: %s: %s", len(ids), type(exc).__name__, str(exc)[:200]
            )

    def renew(self, msg: OutboxMessage) -> None:
        """Extend the claim on ``msg`` right before a chat call that must not happen twice (a slow render
        may have outlived the lease); raises LeaseLost if another worker has taken it meanwhile."""
        with transaction(self._sessions) as session:
            result = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == msg.id,
                    OutboxMessage.locked_by == msg.locked_by,
                    OutboxMessage.status == Status.SENDING.value,
                )
                .values(locked_until=utcnow() + self._lease)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise LeaseLost(f"outbox #{msg.id} was taken over by another worker")

    def depth(self) -> int:
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_((Status.PENDING.value, Status.SENDING.value)))
                )
                or 0
            )

    # ---- internals ------------------------------------------------------------------------------------
    def _claim(self, *, due_before: datetime | None, exclude: set[int]) -> list[int]:
        now = utcnow()
        due = due_before or now
        earlier = aliased(OutboxMessage)
        blocked = exists().where(
            earlier.incident_id == OutboxMessage.incident_id,
            earlier.id < OutboxMessage.id,
            earlier.status.in_((Status.PENDING.value, Status.SENDING.value)),
        )
        stmt = (
            select(OutboxMessage.id)
            .where(
                or_(
                    (OutboxMessage.status == Status.PENDING.value) & (OutboxMessage.next_attempt_at <= due),
                    (OutboxMessage.status == Status.SENDING.value) & (OutboxMessage.locked_until < now),
                ),
                ~blocked,
            )
            .order_by(OutboxMessage.id)
            .limit(self._batch)
        )
        if exclude:
            stmt = stmt.where(OutboxMessage.id.not_in(exclude))
        token = f"{self._worker}:{uuid.uuid4().hex[:8]}"
        values = {
            "status": Status.SENDING.value,
            "locked_until": now + self._lease,
            "locked_by": token,
            "attempts": OutboxMessage.attempts + 1,
        }
        with transaction(self._sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                ids = list(
                    session.scalars(stmt.with_for_update(skip_locked=True))
                )  # rows other workers hold are skipped, not waited for
                if ids:
                    session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))
                return ids
            # SQLite: one writer at a time; a single UPDATE claims atomically, then read back what we got.
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(stmt))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.locked_by == token)
                    .order_by(OutboxMessage.id)
                )
            )

    @logcontext.isolated
    def _deliver(self, row_id: int) -> bool:
        with self._sessions() as session:
            msg = session.get(OutboxMessage, row_id)
            if msg is None:
                return False
            session.expunge(msg)
        logcontext.replace(
            source=f"outbox:{msg.kind}", incident_id=msg.incident_id
        )  # this delivery's log lines
        handler = self._handlers.get(msg.kind)
        try:
            if handler is None:
                raise ChatError(f"no handler for outbox kind {msg.kind!r}", permanent=True)
            finalize = handler(msg)
        except LeaseLost as exc:
            log.info("%s", exc)
            return False
        except ChatError as exc:
            metrics.OUTBOX_DELIVERIES.labels(
                kind=msg.kind, outcome="failed" if exc.permanent else "retry"
            ).inc()
            self._failed(msg, str(exc), retry_after=exc.retry_after, permanent=exc.permanent)
            return False
        except Exception as exc:  # timeouts, connection errors, 5xx answered without JSON
            metrics.OUTBOX_DELIVERIES.labels(kind=msg.kind, outcome="retry").inc()
            log.warning(
                "outbox #%s (%s, incident %s) failed, will retry: %s: %s",
                msg.id,
                msg.kind,
                msg.incident_id,
                type(exc).__name__,
                str(exc)[:200],
            )
            self._failed(msg, f"{type(exc).__name__}: {exc}"[:2000], retry_after=None, permanent=False)
            return False
        with transaction(self._sessions) as session:
            row = session.get(OutboxMessage, row_id, with_for_update=True)
            if row is None or row.status != Status.SENDING.value or row.locked_by != msg.locked_by:
                return False
            if finalize is not None:
                finalize(session)
            row.status, row.sent_at, row.locked_until, row.last_error = (
                Status.DONE.value,
                utcnow(),
                None,
                None,
            )
        metrics.OUTBOX_DELIVERIES.labels(kind=msg.kind, outcome="sent").inc()
        return True

    def _failed(self, msg: OutboxMessage, error: str, *, retry_after: float | None, permanent: bool) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(msg.attempts, 12)) * random.uniform(0.8, 1.2)  # noqa: S311
        with transaction(self._sessions) as session:
            row = session.get(OutboxMessage, msg.id, with_for_update=True)
            if row is None or row.status != Status.SENDING.value or row.locked_by != msg.locked_by:
                return
            row.status = Status.FAILED.value if permanent else Status.PENDING.value
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
            row.locked_until, row.last_error = None, error[:2000]
        if permanent:
            log.error(
                "outbox #%s (%s, incident %s) failed for good: %s", msg.id, msg.kind, msg.incident_id, error
            )
