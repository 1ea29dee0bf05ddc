"""SQLite group commit (bot/kernel/locks.py GroupCommit): batches that queued for the process lock share one
transaction, yet each is still all-or-nothing and durable when ``run`` returns; one failing batch fails
only itself. Also the whole ingest path under concurrency: one incident per group, every alert counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bot.advice.messages import IncidentMessages
from bot.intake.alerts import Alert, AlertStatus
from bot.kernel import locks
from bot.kernel.db import make_engine, make_sessionmaker
from bot.kernel.models import AlertPayload, AlertRecord, DeadLetter, Incident, NoiseCount
from bot.kernel.outbox import Outbox
from bot.service import IncidentService
from bot.triage.engine import Triage
from bot.triage.policy import TriagePolicy


def _queued(gc: locks.GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(gc._queue) < n:  # noqa: SLF001 - the test waits until every unit is queued
        assert time.monotonic() < deadline, "units never queued"
        time.sleep(0.005)


def _run_while_locked(gc: locks.GroupCommit, works: list[Callable[[Session], int]]) -> list[object]:
    """Queue every unit while this thread holds the lock, then let them run: they form one group."""
    results: list[object] = [None] * len(works)

    def call(i: int) -> None:
        try:
            results[i] = gc.run(works[i])
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
    with locks._PROCESS_LOCK:  # noqa: SLF001
        for t in threads:
            t.start()
        _queued(gc, len(works))
    for t in threads:
        t.join(10)
    return results


def _dead_letter(reason: str) -> Callable[[Session], int]:
    def work(session: Session) -> int:
        row = DeadLetter(source="test", body="{}", reason=reason, content_type=None)
        session.add(row)
        session.flush()
        if reason == "boom":
            raise ValueError("boom")
        return row.id

    return work


def test_queued_units_commit_together_and_a_failing_unit_fails_alone(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    gc = locks.GroupCommit(sessions)

    results = _run_while_locked(gc, [_dead_letter(f"ok-{i}") for i in range(4)])
    assert all(isinstance(r, int) for r in results)
    assert len(commits) == 1  # one transaction for the four
    with sessions() as s:
        assert sorted(s.scalars(select(DeadLetter.reason))) == [f"ok-{i}" for i in range(4)]

    commits.clear()
    results = _run_while_locked(gc, [_dead_letter("a"), _dead_letter("boom"), _dead_letter("c")])
    assert isinstance(results[1], ValueError)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    with sessions() as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
    assert reasons == ["a", "c", *(f"ok-{i}" for i in range(4))]  # nothing of the failing unit is kept
    assert len(commits) == 2  # the group rolled back; the two good units committed alone
    engine.dispose()


def test_a_unit_alone_runs_at_once(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    gc = locks.GroupCommit(make_sessionmaker(engine))
    assert isinstance(gc.run(_dead_letter("x")), int)
    with pytest.raises(ValueError, match="boom"):
        gc.run(_dead_letter("boom"))
    engine.dispose()


def test_concurrent_batches_of_one_group_make_one_incident_and_count_every_alert(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    outbox = Outbox(sessions)  # advice and posts are only queued here: nothing delivers them
    messages = IncidentMessages(sessions=sessions, outbox=outbox, advisor=None, chat=None)  # type: ignore[arg-type]
    service = IncidentService(
        sessions=sessions,
        triage=Triage(window=timedelta(minutes=30), policy=TriagePolicy()),
        messages=messages,
        outbox=outbox,
        remediation=None,
        kb=None,
    )  # type: ignore[arg-type]

    def batch(sender: int, k: int) -> list[Alert]:
        return [
            Alert(
                source="alertmanager",
                name=f"A{a}",
                status=AlertStatus.FIRING,
                service="svc",
                group_key="{}:{g=1}",
                source_fingerprint=f"fp-{a}",
                annotations={"v": str(k % 3)},
            )
            for a in range(5)
        ]

    outcomes = []
    lock = threading.Lock()

    def send(sender: int) -> None:
        for k in range(10):
            out = service.accept(
                source="alertmanager", body={"sender": sender, "k": k}, alerts=batch(sender, k)
            )
            with lock:
                outcomes.append(out)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 60
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        assert s.scalar(select(func.count()).select_from(AlertRecord)) == 5
        assert s.scalar(select(func.count()).select_from(AlertPayload)) == 60
        assert s.scalar(select(func.sum(NoiseCount.deliveries))) == 300
        assert s.scalar(select(func.sum(AlertRecord.delivery_count))) == 300
        duplicates = s.scalar(select(func.sum(NoiseCount.duplicates)))
        assert duplicates == sum(o.duplicates for o in outcomes)
    assert sum(len(o.created) for o in outcomes) == 1
    engine.dispose()
