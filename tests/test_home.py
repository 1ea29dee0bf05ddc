"""App Home through the real Bolt app: a signed ``app_home_opened`` event → ``views.publish`` recorded by
the Slack stand-in, with open incidents, the user's pending approvals and this week's KPIs."""

from __future__ import annotations

import json

from incident_bot.demo.slack_stub import signed_headers
from tests.apphelpers import SIGNING_SECRET, App, feature_staleness


def _home_opened(app: App, user: str, tab: str = "home") -> int:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "event_id": f"Ev{user}{tab}",
            "event_time": 1700000000,
            "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab},
        }
    ).encode()
    resp = app.client.post(
        "/slack/events",
        content=body,
        headers={**signed_headers(SIGNING_SECRET, body), "Content-Type": "application/json"},
    )
    return resp.status_code


def _text(view: dict) -> str:  # type: ignore[type-arg]
    return "\n".join(b["text"]["text"] for b in view["blocks"] if "text" in b and isinstance(b["text"], dict))


def test_home_shows_incidents_my_approvals_and_kpis(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.alert("model", feature_staleness())
    app.click("U0ONCALL1", app.posts()[1], "Request:")  # the model owner must approve
    assert _home_opened(app, "U0MLOWNER") == 200
    call = app.stub.of("views.publish")[-1]
    assert call.params["user_id"] == "U0MLOWNER" and call.params["view"]["type"] == "home"
    text = _text(call.params["view"])
    assert "Open incidents (2)" in text and "#1" in text and "#2" in text and "open 0m" in text
    assert "Waiting for my approval (1)" in text and "requested by <@U0ONCALL1>" in text
    assert "This week's KPIs" in text and "*Incidents* 2" in text
    assert _home_opened(app, "U0ONCALL1") == 200  # the requester: nothing to approve
    assert "Nothing waiting for you." in _text(app.stub.of("views.publish")[-1].params["view"])
    n = len(app.stub.of("views.publish"))
    assert _home_opened(app, "U0ONCALL1", tab="messages") == 200
    assert len(app.stub.of("views.publish")) == n  # only the Home tab is published


def test_home_rejects_unsigned_event(app: App) -> None:
    body = json.dumps(
        {"type": "event_callback", "event": {"type": "app_home_opened", "user": "U0X"}}
    ).encode()
    resp = app.client.post(
        "/slack/events",
        content=body,
        headers={**signed_headers("wrong-secret", body), "Content-Type": "application/json"},
    )
    assert resp.status_code == 401 and app.stub.of("views.publish") == []
