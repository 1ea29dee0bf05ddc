"""Scheduler jobs called directly with a fixed ``now``; Slack is the recording stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import jobs
from bot.config import Settings
from bot.db import transaction
from bot.models import AuditEvent, Incident
from bot.slack_stub import SlackStub
from handlers.slack_jobs import SlackJobChat
from tests.kpi_seed import T0, UNTIL, add_incident, m, seed


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as s:
        yield s


def _settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {"incident_channel": "C0INCIDENTS", "oncall_mention": ["S0ONCALL"],
                            "escalation_mention": ["U0SRELEAD"]}
    return Settings(_env_file=None, **{**base, **kw})


def _chat(stub: SlackStub) -> SlackJobChat:
    return SlackJobChat(client=WebClient(token="xoxb-test", base_url=stub.base_url), channel="C0INCIDENTS")


def _posted(sessions: sessionmaker[Session], **kw: Any) -> int:
    with transaction(sessions) as s:
        inc = add_incident(s, base=T0, service="checkout", severity="critical", title="Checkout <5xx>",
                           alerts=[{"starts": 0, "seen": 0}], **kw)
        inc.slack_channel, inc.slack_ts = "C0INCIDENTS", "1700000000.000900"
        return inc.id


def _events(sessions: sessionmaker[Session], event: str) -> list[AuditEvent]:
    with sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def test_ack_reminder_then_escalation_each_once(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    iid = _posted(sessions)
    _posted(sessions, ack=2)  # acknowledged: never reminded
    with transaction(sessions) as s:  # never posted to Slack: no thread to remind in
        add_incident(s, base=T0, service="x", severity="warning", title="unposted", alerts=[{"starts": 0, "seen": 0}])
    kw = {"sessions": sessions, "chat": _chat(stub), "settings": _settings()}
    assert jobs.ack_reminders(now=T0 + m(14), **kw) == []
    assert jobs.ack_reminders(now=T0 + m(15), **kw) == [(iid, jobs.ACK_REMINDER)]
    assert jobs.ack_reminders(now=T0 + m(16), **kw) == []  # never twice for the same step
    reminder = stub.of("chat.postMessage")[-1].params
    assert reminder["thread_ts"] == "1700000000.000900" and "<!subteam^S0ONCALL>" in reminder["text"]
    assert "&lt;5xx&gt;" in reminder["text"] and "15 min" in reminder["text"]
    assert jobs.ack_reminders(now=T0 + m(30), **kw) == [(iid, jobs.ESCALATION)]
    assert jobs.ack_reminders(now=T0 + m(90), **kw) == []
    escalation = stub.of("chat.postMessage")[-1].params
    assert "<@U0SRELEAD>" in escalation["text"] and "Escalation" in escalation["text"]
    assert len(stub.of("chat.postMessage")) == 2
    assert [e.incident_id for e in _events(sessions, jobs.ACK_REMINDER)] == [iid]
    assert [e.incident_id for e in _events(sessions, jobs.ESCALATION)] == [iid]


def test_ack_reminder_off_and_invalid_mentions_dropped(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    _posted(sessions)
    off = _settings(ack_reminder_minutes=0, ack_escalation_minutes=0)
    assert jobs.ack_reminders(sessions=sessions, chat=_chat(stub), settings=off, now=T0 + m(60)) == []
    bad = _settings(oncall_mention=["@channel", "S0OK"], ack_escalation_minutes=0)
    assert len(jobs.ack_reminders(sessions=sessions, chat=_chat(stub), settings=bad, now=T0 + m(60))) == 1
    text = stub.of("chat.postMessage")[-1].params["text"]
    assert "<!subteam^S0OK>" in text and "@channel" not in text


def test_chat_failure_does_not_resend(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    _posted(sessions)
    dead = SlackJobChat(client=WebClient(token="x", base_url="http://127.0.0.1:9/api/", timeout=1), channel="C0")
    kw = {"sessions": sessions, "settings": _settings(ack_escalation_minutes=0)}
    assert jobs.ack_reminders(chat=dead, now=T0 + m(20), **kw) == []  # Slack down: logged, step claimed
    assert jobs.ack_reminders(chat=_chat(stub), now=T0 + m(21), **kw) == []
    assert len(_events(sessions, jobs.ACK_REMINDER)) == 1


def test_rca_reminder(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    iid = _posted(sessions, resolved=10)
    with transaction(sessions) as s:
        s.get(Incident, iid).resolved_by = "U0ONCALL1"  # type: ignore[union-attr]
    noted = _posted(sessions, resolved=10)
    with transaction(sessions) as s:
        s.get(Incident, noted).rca_note = "pool size"  # type: ignore[union-attr]
    kw = {"sessions": sessions, "chat": _chat(stub), "settings": _settings()}
    assert jobs.rca_reminders(now=T0 + m(10) + timedelta(hours=23), **kw) == []
    assert jobs.rca_reminders(now=T0 + m(10) + timedelta(hours=24), **kw) == [iid]
    assert jobs.rca_reminders(now=T0 + timedelta(hours=30), **kw) == []
    msg = stub.of("chat.postMessage")[-1].params
    assert msg["thread_ts"] == "1700000000.000900" and "<@U0ONCALL1>" in msg["text"] and "RCA note" in msg["text"]
    assert jobs.rca_reminders(sessions=sessions, chat=_chat(stub), settings=_settings(rca_reminder_hours=0),
                              now=T0 + timedelta(days=2)) == []


def test_weekly_digest(sessions: sessionmaker[Session], stub: SlackStub) -> None:
    with transaction(sessions) as s:
        seed(s)
    kw = {"sessions": sessions, "chat": _chat(stub), "settings": _settings()}
    assert jobs.weekly_digest(now=UNTIL, **kw) is True
    assert jobs.weekly_digest(now=UNTIL + m(5), **kw) is False  # once per ISO week
    posts = stub.of("chat.postMessage")
    assert len(posts) == 1 and posts[0].params["channel"] == "C0INCIDENTS"
    text = str(posts[0].params["blocks"])
    # this week: the 8 seeded incidents; previous week: the one before the period
    assert "*Incidents* 8 " in text and "previous period 1" in text
    assert "Checkout 5xx (checkout): 2×" in text and "Payments latency (payments): 2×" in text
    assert "#8 [critical] Checkout 5xx: open 70h" in text  # opened 11-06 01:55, now 11-09 00:00
    assert "reduction 58%" in text
    assert jobs.weekly_digest(now=UNTIL, sessions=sessions, chat=_chat(stub), settings=_settings(digest_schedule="")) is False


def test_digest_trigger() -> None:
    assert jobs.digest_trigger("mon 09:00") == {"day_of_week": "mon", "hour": 9, "minute": 0}
    assert jobs.digest_trigger("") is None
    with pytest.raises(ValueError, match="DIGEST_SCHEDULE"):
        jobs.digest_trigger("monday 9am")
