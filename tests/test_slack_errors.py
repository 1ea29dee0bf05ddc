"""Slack errors never vanish; Resolve always captures the RCA. Through the real Bolt app, both databases."""

from __future__ import annotations

import json
import logging

import pytest

from bot.kernel.models import Incident
from incident_bot.demo.slack_stub import view_submission_body
from retrieval.types import Query
from tests.apphelpers import App


def test_unexpected_error_in_lazy_listener_is_logged_with_traceback_and_user_told(
    app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")

    def boom(**kw: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(app.rt.service, "acknowledge", boom)
    with caplog.at_level(logging.ERROR):
        assert app.click("U0ONCALL1", app.posts()[0], "Acknowledge").status_code == 200
    told = app.ephemerals()[-1]
    eid = told.split("error id ")[1].split(")")[0]
    assert "Something went wrong" in told and len(eid) == 10
    rec = next(r for r in caplog.records if eid in r.getMessage())
    assert rec.exc_info is not None and "database on fire" in str(rec.exc_info[1])


def test_stale_resolve_modal_answers_with_errors_in_the_modal(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.click("U0ONCALL1", app.posts()[0], "Resolve")
    view = app.stub.of("views.open")[0].params["view"]
    app.sample("alertmanager", "alertmanager_checkout_resolved.json")  # the source resolves it meanwhile
    body = view_submission_body(user="U0ONCALL1", view=view, values={"rca": {"rca_note": {"value": "late"}}})
    resp = app.slack(body)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["response_action"] == "errors" and "already resolved" in answer["errors"]["rca"]


def test_incident_resolved_by_source_offers_rca_note_that_goes_into_the_kb(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.sample("alertmanager", "alertmanager_checkout_resolved.json")
    update = app.stub.of("chat.update")[-1]
    assert "Add RCA note" in json.dumps(update.params["blocks"])
    message = app.posts()[0]
    message.params["blocks"] = update.params["blocks"]
    app.click("U0ONCALL1", message, "Add RCA note")
    view = app.stub.of("views.open")[-1].params["view"]
    assert view["callback_id"] == "rca_note"
    empty = app.slack(
        view_submission_body(user="U0ONCALL1", view=view, values={"rca": {"rca_note": {"value": " "}}})
    )
    assert empty.json()["response_action"] == "errors"
    note = "pgbouncer default_pool_size too small after v1.38 doubled workers; raised to 80."
    resp = app.slack(
        view_submission_body(user="U0ONCALL1", view=view, values={"rca": {"rca_note": {"value": note}}})
    )
    assert resp.status_code == 200 and not resp.content
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and inc.rca_note == note
    hits = app.rt.kb.search(Query(text="default_pool_size too small doubled workers"), top_k=3)
    assert hits[0].id == "incident-1"
    assert "Add RCA note" not in json.dumps(app.stub.of("chat.update")[-1].params["blocks"])


def test_error_outside_lazy_listeners_reaches_the_one_error_handler(
    app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_remediation_security import _slash_response

    def boom(**kw: object) -> bool:
        raise RuntimeError("kill switch table missing")

    monkeypatch.setattr(app.rt.service, "set_actions_frozen", boom)
    with caplog.at_level(logging.ERROR):
        _slash_response(app, "U0SRELEAD", "freeze")
    rec = next(r for r in caplog.records if "unhandled Slack error" in r.getMessage())
    assert rec.exc_info is not None and "kill switch table missing" in str(rec.exc_info[1])
    eid = rec.getMessage().split("error id ")[1].split(")")[0]
    assert any(eid in t for t in app.ephemerals())


def test_acknowledge_and_resolve_survive_a_slack_outage(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    message = app.posts()[0]
    notifier = app.rt.chat

    def down(*a: object, **kw: object) -> None:
        raise ConnectionError("slack unreachable")

    monkeypatch.setattr(notifier, "update_incident", down)
    assert app.click("U0ONCALL1", message, "Acknowledge").status_code == 200
    app.rt.service.resolve(incident_id=1, user_id="U0ONCALL1", rca_note="pool size")
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and inc.acknowledged_by == "U0ONCALL1" and inc.status == "resolved"
    assert not any("Something went wrong" in t for t in app.ephemerals())
