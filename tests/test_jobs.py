"""Scheduler jobs called directly with a fixed ``now``; Slack is the recording stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.config import Settings
from bot.kernel.db import transaction
from bot.kernel.models import AuditEvent, Incident
from bot.kernel.outbox import Outbox
from bot.reports import reminders as jobs
from handlers.slack.jobs import SlackJobChat
from incident_bot.demo.slack_stub import SlackStub
from tests.kpi_seed import T0, UNTIL, add_incident, m, seed


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as s:
        yield s


def _settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "incident_channel": "C0INCIDENTS",
        "oncall_mention": ["S0ONCALL"],
        "escalation_mention": ["U0SRELEAD"],
    }
    return Settings(_env_file=None, **{**base, **kw})


def _chat(stub: SlackStub) -> SlackJobChat:
    return SlackJobChat(client=WebClient(token="xoxb-test", base_url=stub.base_url), channel="C0INCIDENTS")


def _outbox(sessions: sessionmaker[Session], chat: SlackJobChat, **settings: Any) -> Outbox:
    """The outbox the jobs queue into, delivering with ``chat`` (tests drain it instead of running workers)."""
    outbox = Outbox(sessions)
    jobs.register_delivery(outbox, chat=chat, sessions=sessions, settings=_settings(**settings))
    return outbox


def _posted(sessions: sessionmaker[Session], **kw: Any) -> int:
    with transaction(sessions) as s:
        inc = add_incident(
            s,
            base=T0,
            service="checkout",
            severity="critical",
            title="Checkout <5xx>",
            alerts=[{"starts": 0, "seen": 0}],
            **kw,
        )
        inc.slack_channel, inc.slack_ts = "C0INCIDENTS", "1700000000.000900"
        return inc.id


def _events(sessions: sessionmaker[Session], event: str) -> list[AuditEvent]:
    with sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def test_ack_reminder_then_escalation_each_once(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    iid = _posted(sessions)
    _posted(sessions, ack=2)  # acknowledged: never reminded
    with transaction(sessions) as s:  # never posted to Slack: no thread to remind in
        add_incident(
            s, base=T0, service="x", severity="warning", title="unposted", alerts=[{"starts": 0, "seen": 0}]
        )
    outbox = _outbox(sessions, _chat(stub))
    kw = {"sessions": sessions, "outbox": outbox, "settings": _settings()}
    assert jobs.ack_reminders(now=T0 + m(14), **kw) == []
    assert jobs.ack_reminders(now=T0 + m(15), **kw) == [(iid, jobs.ACK_REMINDER)]
    assert jobs.ack_reminders(now=T0 + m(16), **kw) == []  # never twice for the same step
    assert outbox.drain() == 1
    reminder = stub.of("chat.postMessage")[-1].params
    assert reminder["thread_ts"] == "1700000000.000900" and "<!subteam^S0ONCALL>" in reminder["text"]
    assert "&lt;5xx&gt;" in reminder["text"] and "15 min" in reminder["text"]
    assert jobs.ack_reminders(now=T0 + m(30), **kw) == [(iid, jobs.ESCALATION)]
    assert jobs.ack_reminders(now=T0 + m(90), **kw) == []
    assert outbox.drain() == 1
    escalation = stub.of("chat.postMessage")[-1].params
    assert "<@U0SRELEAD>" in escalation["text"] and "Escalation" in escalation["text"]
    assert len(stub.of("chat.postMessage")) == 2
    assert [e.incident_id for e in _events(sessions, jobs.ACK_REMINDER)] == [iid]
    assert [e.incident_id for e in _events(sessions, jobs.ESCALATION)] == [iid]


def test_ack_reminder_off_and_invalid_mentions_refused(
    sessions: sessionmaker[Session], stub: SlackStub
) -> None:
    _posted(sessions)
    outbox = _outbox(sessions, _chat(stub))
    off = _settings(ack_reminder_minutes=0, ack_escalation_minutes=0)
    assert jobs.ack_reminders(sessions=sessions, outbox=outbox, settings=off, now=T0 + m(60)) == []
    with pytest.raises(ValidationError, match="'@channel' is not a Slack user group"):
        _settings(
            oncall_mention=["@channel", "S0OK"]
        )  # refused when the settings are read, not dropped later
    ok = _settings(oncall_mention=["S0OK"], ack_escalation_minutes=0)
    assert len(jobs.ack_reminders(sessions=sessions, outbox=outbox, settings=ok, now=T0 + m(60))) == 1
    assert outbox.drain() == 1
    assert "<!subteam^S0OK>" in stub.of("chat.postMessage")[-1].params["text"]


def test_reminders_with_nobody_to_mention_are_skipped(
    sessions: sessionmaker[Session], stub: SlackStub
) -> None:
    """No ONCALL_MENTION: no reminder posted to nobody (doctor warns instead); nothing is claimed either, so
    setting it later still reminds."""
    iid = _posted(sessions)
    outbox = _outbox(sessions, _chat(stub))
    nobody = _settings(oncall_mention=[], escalation_mention=[])
    for minutes in (20, 40, 90):
        assert (
            jobs.ack_reminders(sessions=sessions, outbox=outbox, settings=nobody, now=T0 + m(minutes)) == []
        )
    assert outbox.drain() == 0 and stub.of("chat.postMessage") == []
    assert _events(sessions, jobs.ACK_REMINDER) == [] and _events(sessions, jobs.ESCALATION) == []
    escalation_only = _settings(oncall_mention=[], escalation_mention=["U0SRELEAD"])
    got = jobs.ack_reminders(sessions=sessions, outbox=outbox, settings=escalation_only, now=T0 + m(40))
    assert got == [(iid, jobs.ESCALATION)]


def test_slack_down_delays_a_reminder_and_never_doubles_it(
    sessions: sessionmaker[Session], stub: SlackStub
) -> None:
    iid = _posted(sessions)
    outbox = _outbox(sessions, _chat(stub))
    kw = {"sessions": sessions, "outbox": outbox, "settings": _settings(ack_escalation_minutes=0)}
    stub.fail("chat.postMessage", status=503)
    assert jobs.ack_reminders(now=T0 + m(20), **kw) == [(iid, jobs.ACK_REMINDER)]  # claimed and queued
    assert outbox.drain() == 0 and ("chat.postMessage", 503) in stub.failed  # Slack down: kept, not lost
    assert jobs.ack_reminders(now=T0 + m(21), **kw) == []  # the step is not claimed again
    stub.heal()
    assert outbox.drain() == 1 and len(stub.of("chat.postMessage")) == 1  # delivered once Slack is back
    assert outbox.drain() == 0 and len(_events(sessions, jobs.ACK_REMINDER)) == 1


def test_rca_reminder(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    iid = _posted(sessions, resolved=10)
    with transaction(sessions) as s:
        s.get(Incident, iid).resolved_by = "U0ONCALL1"  # type: ignore[union-attr]
    noted = _posted(sessions, resolved=10)
    with transaction(sessions) as s:
        s.get(Incident, noted).rca_note = "pool size"  # type: ignore[union-attr]
    outbox = _outbox(sessions, _chat(stub))
    kw = {"sessions": sessions, "outbox": outbox, "settings": _settings()}
    assert jobs.rca_reminders(now=T0 + m(10) + timedelta(hours=23), **kw) == []
    assert jobs.rca_reminders(now=T0 + m(10) + timedelta(hours=24), **kw) == [iid]
    assert jobs.rca_reminders(now=T0 + timedelta(hours=30), **kw) == []
    assert outbox.drain() == 1
    msg = stub.of("chat.postMessage")[-1].params
    assert (
        msg["thread_ts"] == "1700000000.000900"
        and "<@U0ONCALL1>" in msg["text"]
        and "RCA note" in msg["text"]
    )
    assert (
        jobs.rca_reminders(
            sessions=sessions,
            outbox=outbox,
            settings=_settings(rca_reminder_hours=0),
            now=T0 + timedelta(days=2),
        )
        == []
    )


def test_weekly_digest(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    with transaction(sessions) as s:
        seed(s)
    outbox = _outbox(sessions, _chat(stub))
    kw = {"sessions": sessions, "outbox": outbox, "settings": _settings()}
    assert jobs.weekly_digest(now=UNTIL, **kw) is True
    assert jobs.weekly_digest(now=UNTIL + m(5), **kw) is False  # once per ISO week
    assert outbox.drain() == 1  # rendered at delivery for the period the queued row names
    posts = stub.of("chat.postMessage")
    assert len(posts) == 1 and posts[0].params["channel"] == "C0INCIDENTS"
    text = str(posts[0].params["blocks"])
    # this week: the 8 seeded incidents; previous week: the one before the period
    assert "*Incidents* 8 " in text and "previous period 1" in text
    assert "Checkout 5xx (checkout): 2×" in text and "Payments latency (payments): 2×" in text
    assert "#8 [critical] Checkout 5xx: open 70h" in text  # opened 11-06 01:55, now 11-09 00:00
    assert "reduction 58%" in text
    assert (
        jobs.weekly_digest(
            now=UNTIL, sessions=sessions, outbox=outbox, settings=_settings(digest_schedule="")
        )
        is False
    )


def test_digest_trigger() -> None:
    assert jobs.digest_trigger("mon 09:00") == {"day_of_week": "mon", "hour": 9, "minute": 0}
    assert jobs.digest_trigger("") is None
    with pytest.raises(ValueError, match="DIGEST_SCHEDULE"):
        jobs.digest_trigger("monday 9am")


def test_the_runtime_wires_the_jobs_to_the_outbox(db_url: str, fake_encoder: Any, target: Any) -> None:
    """The one composition (incident_bot/runtime.py build_runtime, used by serve, the demo and these tests): the
    jobs are scheduled, their messages are delivered by the runtime's outbox (any replica's), through the real
    Slack client."""
    from tests.apphelpers import running_app

    with running_app(
        db_url,
        fake_encoder,
        target,
        ack_reminder_minutes=1,
        oncall_mention=["S0ONCALL"],
        digest_schedule="mon 09:00",
    ) as app:
        app.sample("alertmanager", "alertmanager_checkout.json")
        app.drain()
        with transaction(app.rt.sessions) as s:  # opened long enough ago to be reminded about
            inc = s.get(Incident, 1)
            assert inc is not None
            inc.created_at = inc.created_at - timedelta(minutes=5)
        scheduled = app.rt.scheduler.jobs()
        assert {
            "ack-reminders",
            "weekly-digest",
            "refit-weights",
            "retry-unposted",
            "expire-requests",
        } <= set(scheduled)
        assert scheduled["ack-reminders"]() == [(1, jobs.ACK_REMINDER)]
        assert app.drain() == 1
        reminder = app.stub.of("chat.postMessage")[-1].params
        assert reminder["thread_ts"] == app.stub.of("chat.postMessage")[0].response["ts"]
        assert "<!subteam^S0ONCALL>" in reminder["text"]


def test_a_run_now_job_runs_when_the_scheduler_starts_however_long_after_it_was_added(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_runtime adds the jobs; serve starts them after loading the model (seconds later). APScheduler
    drops a run missed by over a second, so "run now" must mean the start, not the moment it was added."""
    import threading

    from bot.kernel import scheduler as sched
    from bot.kernel.db_types import utcnow

    ran = threading.Event()
    real_now = utcnow
    monkeypatch.setattr(sched, "utcnow", lambda: real_now() - timedelta(seconds=30))  # added "30 s ago"
    s = sched.Scheduler(sessions)
    s.add("refit-weights", ran.set, every=timedelta(hours=6), run_now=True)
    monkeypatch.setattr(sched, "utcnow", real_now)
    s.start()
    try:
        assert ran.wait(timeout=20), "the run-now job was dropped as missed"
    finally:
        s.shutdown(wait=True)  # the run records its finish in the database before the test's database goes
