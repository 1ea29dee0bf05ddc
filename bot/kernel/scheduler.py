"""Scheduled jobs that run once per period across all replicas.

``Scheduler`` wraps APScheduler: every replica fires the job on its own clock, and a conditional UPDATE on
the job's ``job_leases`` row decides which one runs it (the first to move ``last_started_at`` past the
period's threshold wins; the others see zero rows updated and skip). The row survives crashes, holds no
lock while the job runs, and works the same on SQLite and PostgreSQL. Register a job with one line:

    scheduler.add("digest", kpi.send_digest, every=timedelta(days=1))
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import String, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.kernel import logcontext
from bot.kernel.db import transaction
from bot.kernel.db_types import UTCDateTime, utcnow
from bot.kernel.models import Base

log = logging.getLogger(__name__)


class JobLease(Base):
    __tablename__ = "job_leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(default=0)


def claim_run(
    sessions: sessionmaker[Session], name: str, every: timedelta, *, holder: str, now: datetime | None = None
) -> bool:
    """True if this caller may run ``name`` now: nobody started it within the last half period."""
    now = now or utcnow()
    with transaction(sessions) as session:
        if session.get(JobLease, name) is None:
            try:
                with session.begin_nested():
                    session.add(JobLease(name=name, runs=0))
            except IntegrityError:
                pass  # another replica created it at the same moment
    threshold = now - every / 2
    with transaction(sessions) as session:
        result = session.execute(
            update(JobLease)
            .where(
                JobLease.name == name,
                or_(JobLease.last_started_at.is_(None), JobLease.last_started_at <= threshold),
            )
            .values(last_started_at=now, holder=holder, runs=JobLease.runs + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def finish_run(sessions: sessionmaker[Session], name: str) -> None:
    with transaction(sessions) as session:
        session.execute(update(JobLease).where(JobLease.name == name).values(last_finished_at=utcnow()))


def hold_lease(
    sessions: sessionmaker[Session], name: str, *, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """A sticky lease on the ``job_leases`` row ``name``: True if ``holder`` holds it now, renewed. The
    holder keeps it for as long as it renews within ``ttl``; another takes it over only once it has lapsed
    (a dead or partitioned holder), so exactly one replica holds it at a time."""
    now = now or utcnow()
    _ensure_row(sessions, name)
    with transaction(sessions) as session:
        result = session.execute(
            update(JobLease)
            .where(
                JobLease.name == name,
                or_(
                    JobLease.holder == holder,
                    JobLease.holder.is_(None),
                    JobLease.last_started_at.is_(None),
                    JobLease.last_started_at <= now - ttl,
                ),
            )
            .values(last_started_at=now, holder=holder)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def _ensure_row(sessions: sessionmaker[Session], name: str) -> None:
    with transaction(sessions) as session:
        if session.get(JobLease, name) is None:
            try:
                with session.begin_nested():
                    session.add(JobLease(name=name, runs=0))
            except IntegrityError:
                pass  # another replica created it at the same moment


class Scheduler:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._aps = BackgroundScheduler(timezone="UTC")
        self._holder = f"{socket.gethostname()}:{os.getpid()}"
        self._run_at_start: list[str] = []

    @property
    def holder(self) -> str:
        """This replica's name in ``job_leases.holder``."""
        return self._holder

    def add(self, name: str, fn: Callable[[], Any], *, every: timedelta, run_now: bool = False) -> None:
        """Run ``fn`` every ``every``, once across all replicas sharing the database; with ``run_now`` also
        when the scheduler starts (jobs are added at build time, maybe long before the start)."""
        if run_now:
            self._run_at_start.append(name)
        self._aps.add_job(
            self.run_once,
            "interval",
            seconds=every.total_seconds(),
            args=[name, fn, every],
            id=name,
            max_instances=1,
            coalesce=True,
        )

    def add_cron(self, name: str, fn: Callable[[], Any], *, every: timedelta, **cron: Any) -> None:
        """Run ``fn`` on a cron schedule (UTC fields: ``day_of_week``, ``hour``, ``minute``), once across
        replicas; ``every`` is the schedule's period, used for the lease."""
        self._aps.add_job(
            self.run_once,
            "cron",
            args=[name, fn, every],
            id=name,
            max_instances=1,
            coalesce=True,
            timezone="UTC",
            **cron,
        )

    @logcontext.isolated
    def run_once(self, name: str, fn: Callable[[], Any], every: timedelta) -> bool:
        """Run ``fn`` if this replica wins the period for ``name``; True if it ran."""
        logcontext.replace(source=f"job:{name}")  # the job's log lines
        try:
            if not claim_run(self._sessions, name, every, holder=self._holder):
                return False
        except Exception:
            log.exception("job %s: could not claim its lease", name)
            return False
        try:
            fn()
        except Exception:
            log.exception("job %s failed", name)
        finally:
            finish_run(self._sessions, name)
        return True

    def start(self) -> None:
        for (
            name
        ) in self._run_at_start:  # due now, not when it was added (a run missed by over 1 s is dropped)
            self._aps.modify_job(name, next_run_time=utcnow())
        self._aps.start()

    def jobs(self) -> dict[str, Callable[[], Any]]:
        """The scheduled functions by job name (what each run calls once it has won its period)."""
        return {job.id: job.args[1] for job in self._aps.get_jobs()}

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop scheduling; ``wait`` also waits for a job that is running to finish."""
        if self._aps.running:
            self._aps.shutdown(wait=wait)
