"""Priority from the catalog drives reminder/escalation timing, mentions the owner group, and orders the App
Home (SQLite and PostgreSQL, the real jobs and the real Bolt app)."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog.loader import CatalogSource
from bot.catalog.lookup import ServiceCatalog
from bot.kernel.config import SAMPLE_DATA, Settings
from bot.kernel.db import transaction
from bot.kernel.outbox import Outbox
from bot.reports import reminders as jobs
from handlers.slack.jobs import SlackJobChat
from incident_bot.demo.slack_stub import SlackStub
from tests.kpi_seed import T0, add_incident, m
from tests.test_home import _home_opened, _text
from tests.test_origin_http import _alert

CATALOG = ServiceCatalog(CatalogSource(SAMPLE_DATA / "catalog"))


def _posted(sessions: sessionmaker[Session], service: str, severity: str, n: int) -> int:
    with transaction(sessions) as s:
        inc = add_incident(
            s,
            base=T0,
            service=service,
            severity=severity,
            title=f"{service} down",
            alerts=[{"starts": 0, "seen": 0}],
        )
        inc.slack_channel, inc.slack_ts = "C0INCIDENTS", f"1700000000.00090{n}"
        return inc.id


def test_reminder_and_escalation_times_follow_priority(sessions: sessionmaker[Session]) -> None:
    p1 = _posted(sessions, "checkout", "high", 1)  # tier 1 → P1: reminded at 5, escalated at 10 min
    p4 = _posted(
        sessions, "recommendations", "warning", 2
    )  # tier 3, experimental → P4: 60 min, never escalated
    p3 = _posted(sessions, "unknown-service", "warning", 3)  # not in the catalog: P3 from severity → 30 / 60
    settings: dict[str, Any] = {"oncall_mention": ["S0ONCALL"], "incident_channel": "C0INCIDENTS"}
    with SlackStub() as stub:
        outbox = Outbox(sessions)
        chat = SlackJobChat(
            client=WebClient(token="xoxb-test", base_url=stub.base_url), channel="C0INCIDENTS"
        )
        jobs.register_delivery(
            outbox, chat=chat, sessions=sessions, settings=Settings(_env_file=None, **settings)
        )
        kw: dict[str, Any] = {
            "sessions": sessions,
            "outbox": outbox,
            "settings": Settings(_env_file=None, **settings),
            "catalog": CATALOG,
        }
        assert jobs.ack_reminders(now=T0 + m(4), **kw) == []
        assert jobs.ack_reminders(now=T0 + m(5), **kw) == [(p1, jobs.ACK_REMINDER)]
        assert jobs.ack_reminders(now=T0 + m(10), **kw) == [(p1, jobs.ESCALATION)]
        assert jobs.ack_reminders(now=T0 + m(30), **kw) == [(p3, jobs.ACK_REMINDER)]
        assert jobs.ack_reminders(now=T0 + m(60), **kw) == [(p4, jobs.ACK_REMINDER), (p3, jobs.ESCALATION)]
        assert jobs.ack_reminders(now=T0 + m(600), **kw) == []  # a P4 is never escalated
        outbox.drain()
        first = stub.of("chat.postMessage")[0].params
        assert (
            "<!subteam^S0ONCALL>" in first["text"] and "<!subteam^S0CHECKOUT>" in first["text"]
        )  # owner group
        assert "5 min" in first["text"]


def test_app_home_orders_open_incidents_by_priority(db_url: str, fake_encoder: Any, target: Any) -> None:
    from tests.apphelpers import running_app

    with running_app(db_url, fake_encoder, target, service_catalog=SAMPLE_DATA / "catalog") as app:
        low = _alert(app, "recommendations", "Slow", 0, severity="critical")  # tier 3 experimental: P3
        high = _alert(app, "payments", "Errors", 1, severity="high")  # tier 1: P1
        mid = _alert(app, "inventory", "Lag", 2, severity="high")  # tier 2: P2
        assert _home_opened(app, "U0ONCALL1") == 200
        text = _text(app.stub.of("views.publish")[-1].params["view"])
        order = [text.index(f"*#{i}* *P") for i in (high, mid, low)]
        assert order == sorted(order)
        assert f"*#{high}* *P1* [high]" in text and f"*#{low}* *P3* [critical]" in text
