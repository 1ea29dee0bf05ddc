"""Novelty (issue 18, 5): new, rare or frequent for its service, from past incidents and the knowledge base,
with the counts behind the label; on SQLite and PostgreSQL, and in the posted message."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.advice.novelty import RARE_MAX, WINDOW, Novelty, novelty_of
from bot.kernel.db import transaction
from bot.kernel.models import Incident, KnowledgeDocument
from tests.apphelpers import App
from tests.kpi_seed import T0, add_incident

DAY = timedelta(days=1)


def _incident(
    s: Session,
    *,
    days_ago: float,
    service: str | None = "checkout",
    name: str = "HighErrorRate",
    **kw: object,
) -> Incident:
    return add_incident(
        s,
        base=T0 - days_ago * DAY,
        service=service,  # type: ignore[arg-type]
        severity="critical",
        title=f"{name} on {service}",
        alerts=[{"starts": 0, "seen": 0, "name": name}],
        resolved=10,
        **kw,  # type: ignore[arg-type]
    )


def _doc(s: Session, ext: str, *, days_ago: float | None, text: str, service: str = "checkout") -> None:
    s.add(
        KnowledgeDocument(
            external_id=ext,
            source="import",
            title=f"ticket {ext}",
            text=text,
            service=service,
            created_at=None if days_ago is None else T0 - days_ago * DAY,
            content_hash=ext,
        )
    )


def _novelty(sessions: sessionmaker[Session], incident_id: int) -> Novelty | None:
    with sessions() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        return novelty_of(s, inc)


def test_first_time(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        _incident(s, days_ago=5, service="payments")  # another service
        _incident(s, days_ago=5, name="DiskFull")  # another alert
        _incident(s, days_ago=-1)  # later than this one: not an earlier occurrence
        _doc(s, "T-1", days_ago=3, text="payments HighErrorRate", service="payments")
        now = _incident(s, days_ago=0).id
    n = _novelty(sessions, now)
    assert n is not None and (n.label, n.occurrences, n.older, n.last_seen) == ("new", 0, 0, None)
    assert n.text == "new for checkout: first time this has been seen"


def test_rare_frequent_and_the_counts_behind_them(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        _incident(s, days_ago=200)  # outside the window: older
        _incident(s, days_ago=40)
        _doc(s, "T-2", days_ago=20, text="Checkout 5xx: HIGHERRORRATE fired after the deploy")  # any case
        _doc(s, "T-3", days_ago=None, text="HighErrorRate again")  # undated: older
        rare = _incident(s, days_ago=0).id
    n = _novelty(sessions, rare)
    assert n is not None and (n.label, n.incidents, n.documents, n.older) == ("rare", 1, 1, 2)
    assert n.last_seen == (T0 - 20 * DAY).date()
    assert n.text == (
        f"rare for checkout: happened 2 times in 90 days, last on {(T0 - 20 * DAY).date().isoformat()} "
        "(1 past incident, 1 knowledge-base record)"
    )
    with transaction(sessions) as s:
        _incident(s, days_ago=2)
        frequent = _incident(s, days_ago=-0.5).id  # half a day later: the rare one above counts for this one
    n = _novelty(sessions, frequent)
    assert n is not None and n.label == "frequent" and n.occurrences == RARE_MAX + 2
    assert "happened 4 times in 90 days" in n.text and "(3 past incidents, 1 knowledge-base record)" in n.text


def test_not_seen_in_the_window(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        _incident(s, days_ago=WINDOW.days + 30)
        now = _incident(s, days_ago=0).id
    n = _novelty(sessions, now)
    last = (T0 - (WINDOW.days + 30) * DAY).date()
    assert n is not None and n.label == "new"
    assert n.text == f"new for checkout: not seen in 90 days (1 earlier, last on {last.isoformat()})"


def test_rca_note_of_a_counted_incident_is_not_counted_twice(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        past = _incident(s, days_ago=10)
        _doc(s, f"incident-{past.id}", days_ago=10, text="HighErrorRate on checkout\nAlerts: HighErrorRate")
        now = _incident(s, days_ago=0).id
    n = _novelty(sessions, now)
    assert n is not None and (n.incidents, n.documents, n.label) == (1, 0, "rare")
    assert n.text.endswith("(1 past incident, 0 knowledge-base records)")


def test_incidents_without_a_service_compare_among_themselves(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        _incident(s, days_ago=3, service=None)
        _incident(s, days_ago=3)  # on a service: not the same thing
        now = _incident(s, days_ago=0, service=None).id
    n = _novelty(sessions, now)
    assert n is not None and n.service is None and n.incidents == 1
    assert n.text.startswith("rare: happened once in 90 days")


def test_the_message_says_it(app: App) -> None:
    """The posted message carries the line; the second time the same alert opens an incident, it is rare."""
    body = {
        "name": "QueueBacklog",
        "service": "billing",
        "severity": "warning",
        "summary": "billing queue backlog",
        "labels": {"queue": "invoices"},
        "starts_at": "2026-11-20T03:00:00Z",
    }
    assert app.alert("generic", body).status_code == 202
    first = json.dumps(app.posts()[0].params["blocks"], ensure_ascii=False)
    assert "🆕 new for billing: first time this has been seen" in first
    assert app.alert("generic", {**body, "status": "resolved"}).status_code == 202
    # the same alert on another queue, a day later: a new incident, and this has happened before
    again = {**body, "labels": {"queue": "refunds"}, "starts_at": "2026-11-21T03:00:00Z"}
    assert app.alert("generic", again).status_code == 202
    posts = [c for c in app.posts() if "thread_ts" not in c.params]
    assert len(posts) == 2, [c.params.get("text") for c in posts]
    second = json.dumps(posts[1].params["blocks"], ensure_ascii=False)
    assert "rare for billing: happened once in 90 days, last on 2026-11-20 (1 past incident" in second
    assert date(2026, 11, 20).isoformat() in second
