"""Change events and triage rules through the real HTTP app and the recording Slack stand-in (SQLite and
PostgreSQL): changes are never incidents and show on the next incident; flaps and a person's resolve keep
one incident and one post; content grouping and model ↔ infra links are shown in Slack."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.entities.webhook import WebhookEvent
from mlflow.webhooks.delivery import get_example_payload_for_event
from sqlalchemy import func, select

from bot.kernel.models import ChangeEvent, DeadLetter, Incident
from incident_bot.demo.slack_stub import view_submission_body
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, ALERTS, App, running_app


def post_change(app: App, body: object, *, token: str = ALERT_TOKEN):  # type: ignore[no-untyped-def]
    return app.client.post(
        "/changes",
        content=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def _count(app: App, model: type) -> int:
    with app.rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _blocks(call) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(call.params["blocks"], ensure_ascii=False)


def test_deploy_is_a_change_and_shows_on_the_next_incident(app: App) -> None:
    resp = post_change(
        app,
        {
            "kind": "deploy",
            "service": "inventory",
            "version": "v1.42",
            "who": "ana",
            "when": "2026-11-22T03:26:00Z",
            "link": "https://ci.example.com/runs/42",
        },
    )
    assert resp.status_code == 202 and resp.json() == {"status": "accepted", "change_id": 1}
    assert _count(app, Incident) == 0 and app.posts() == []
    app.sample("generic", "generic.json")  # inventory, starts 03:30
    text = _blocks(app.posts()[0])
    assert "started 4 min after deploy inventory v1.42 by @ana" in text
    assert "https://ci.example.com/runs/42" in text


def test_change_sent_to_alerts_generic_is_not_an_incident(app: App) -> None:
    resp = app.alert(
        "generic",
        {"name": "Deploy", "kind": "change", "service": "inventory", "labels": {"version": "1.4.2"}},
    )
    assert resp.status_code == 202 and resp.json()["incidents_created"] == []
    assert _count(app, Incident) == 0 and app.posts() == [] and _count(app, ChangeEvent) == 1


def test_changes_endpoint_auth_and_dead_letters(app: App) -> None:
    assert post_change(app, {"kind": "deploy"}, token="wrong").status_code == 401  # noqa: S106
    bad = post_change(app, {"kind": "rollout", "service": "x"})
    assert bad.status_code == 400 and "kind" in bad.json()["error"]  # the alert routes' answer
    with app.rt.sessions() as s:
        dl = s.get(DeadLetter, bad.json()["dead_letter_id"])
        assert dl is not None and dl.source == "changes" and "rollout" in dl.body
    broken = app.client.post("/changes", content=b"{", headers={"Authorization": f"Bearer {ALERT_TOKEN}"})
    assert broken.status_code == 400 and _count(app, DeadLetter) == 2
    assert _count(app, ChangeEvent) == 0


def test_mlflow_model_version_webhooks_are_a_registration_and_a_promotion(app: App) -> None:
    # The envelope MLflow's webhook delivery posts (mlflow.webhooks.delivery), with its own example payloads.
    for entity, action in (("model_version", "created"), ("model_version_alias", "created")):
        event = WebhookEvent(entity, action)
        body = {
            "entity": event.entity.value,
            "action": event.action.value,
            "timestamp": "2026-11-22T03:00:00+00:00",
            "data": get_example_payload_for_event(event),
        }
        resp = post_change(app, body)
        assert resp.status_code == 202, resp.json()
    with app.rt.sessions() as s:
        rows = list(s.scalars(select(ChangeEvent).order_by(ChangeEvent.id)))
    assert [(r.kind, r.model_name, r.version) for r in rows] == [
        ("model_registration", "example_model", "1"),
        ("model_promotion", "example_model", "1"),
    ]
    assert rows[0].registered_at is not None and "as example_alias" in rows[1].title
    # the alias event carries no registration time: it is the stored registration's
    assert rows[1].registered_at == rows[0].registered_at
    assert rows[1].meta["registered_at_from"] == "stored registration"
    unknown = post_change(app, {"entity": "registered_model", "action": "created", "data": {"name": "m"}})
    assert unknown.status_code == 400 and "entity/action" in unknown.json()["error"]


def test_flapping_group_is_one_incident_and_one_post(app: App) -> None:
    for _ in range(3):
        assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
        assert app.sample("alertmanager", "alertmanager_checkout_resolved.json").status_code == 202
    assert app.sample("alertmanager", "alertmanager_checkout.json").status_code == 202
    assert _count(app, Incident) == 1 and len(app.posts()) == 1
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and inc.status == "open" and inc.flapping
    assert "flapping" in _blocks(app.stub.of("chat.update")[-1])


def test_person_resolve_while_firing_reopens_the_same_incident(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.click("U0ONCALL1", app.posts()[0], "Resolve")
    view = app.stub.of("views.open")[0].params["view"]
    assert app.slack(view_submission_body(user="U0ONCALL1", view=view, values={})).status_code == 200
    app.sample("alertmanager", "alertmanager_checkout.json")  # resend inside the grace period: nothing
    with app.rt.sessions() as s:
        inc = s.get(Incident, 1)
        assert inc is not None and inc.status == "resolved" and inc.resolved_by == "U0ONCALL1"
    with app.rt.sessions.begin() as s:  # the grace period passes
        inc = s.get(Incident, 1)
        assert inc is not None and inc.resolved_at is not None
        inc.resolved_at -= timedelta(minutes=30)
    app.sample("alertmanager", "alertmanager_checkout.json")
    assert _count(app, Incident) == 1
    assert len([p for p in app.posts() if not p.params.get("thread_ts")]) == 1  # never a second post
    update = _blocks(app.stub.of("chat.update")[-1])
    assert "re-opened: alertmanager still firing" in update and "U0ONCALL1" in update


def _replies(app: App) -> list[str]:
    return [str(c.params["text"]) for c in app.posts() if c.params.get("thread_ts")]


def test_undone_resolve_is_said_in_the_thread_to_the_resolver_and_on_call(
    db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget
) -> None:
    with running_app(db_url, fake_encoder, target, oncall_mention=["S0ONCALL"]) as app:
        app.sample("alertmanager", "alertmanager_checkout.json")
        app.click("U0ONCALL1", app.posts()[0], "Resolve")
        view = app.stub.of("views.open")[0].params["view"]
        assert app.slack(view_submission_body(user="U0ONCALL1", view=view, values={})).status_code == 200
        # During the grace the message says the source still fires and when it re-opens, not just "resolved".
        resolved = _blocks(app.stub.of("chat.update")[-1])
        assert (
            "resolved by <@U0ONCALL1>; still firing at the source, re-opens in 10 min unless it clears"
            in (resolved)
        )
        assert _replies(app) == []
        with app.rt.sessions.begin() as s:  # the grace period passes
            inc = s.get(Incident, 1)
            assert inc is not None and inc.resolved_at is not None
            inc.resolved_at -= timedelta(minutes=14)
        app.sample("alertmanager", "alertmanager_checkout.json")
        replies = _replies(app)
        assert len(replies) == 1, replies
        assert replies[0].startswith("<@U0ONCALL1> <!subteam^S0ONCALL> ")
        assert (
            "Re-opened #1: it was resolved 14 min ago, but alertmanager still reports it firing" in replies[0]
        )
        assert "still firing at the source" not in _blocks(app.stub.of("chat.update")[-1])  # open again
        app.sample("alertmanager", "alertmanager_checkout.json")  # a repeat: no second notice
        assert len(_replies(app)) == 1


def test_source_clearing_during_the_grace_updates_the_message(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.click("U0ONCALL1", app.posts()[0], "Resolve")
    view = app.stub.of("views.open")[0].params["view"]
    assert app.slack(view_submission_body(user="U0ONCALL1", view=view, values={})).status_code == 200
    assert "still firing at the source" in _blocks(app.stub.of("chat.update")[-1])
    updates = len(app.stub.of("chat.update"))
    app.sample("alertmanager", "alertmanager_checkout_resolved.json")
    assert len(app.stub.of("chat.update")) == updates + 1
    last = _blocks(app.stub.of("chat.update")[-1])
    assert "resolved by <@U0ONCALL1>" in last and "still firing at the source" not in last
    assert _replies(app) == []


def test_content_grouping_and_model_links_are_shown(app: App) -> None:
    app.alert("generic", {"name": "disk 91% on db-7", "service": "storage", "fingerprint": "a"})
    app.alert("generic", {"name": "disk 93% on db-3", "service": "storage", "fingerprint": "b"})
    assert _count(app, Incident) == 1
    assert "grouped: same template &lt;disk &lt;*&gt;% on &lt;*&gt;&gt;" in _blocks(
        app.stub.of("chat.update")[-1]
    )
    app.alert("generic", {"name": "HighLatency", "service": "fraud-scoring", "fingerprint": "lat"})
    model = json.loads((ALERTS / "model_drift.json").read_text())
    app.alert("model", {**model, "serving_service": "fraud-scoring"})
    assert "may be caused by #2 HighLatency on fraud-scoring" in _blocks(app.posts()[-1])
    assert "may be affecting model fraud-model (#3" in _blocks(app.stub.of("chat.update")[-1])


def test_oversized_change_is_413_with_a_dead_letter(app: App) -> None:
    big = json.dumps({"kind": "deploy", "service": "x", "title": "y" * 1_100_000}).encode()
    resp = app.client.post("/changes", content=big, headers={"Authorization": f"Bearer {ALERT_TOKEN}"})
    assert resp.status_code == 413 and "dead_letter_id" in resp.json()
    assert _count(app, ChangeEvent) == 0 and _count(app, DeadLetter) == 1


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "service",
                    "model",
                    "version",
                    "who",
                    "when",
                    "url",
                    "entity",
                    "action",
                    "data",
                    "name",
                    "tags",
                    "changes",
                    "occurred_at",
                    "title",
                    "x",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)
_change = st.fixed_dictionaries(
    {"kind": st.sampled_from(["deploy", "config", "feature_flag", "model_promotion", "bogus"])},
    optional={"service": _scalars, "version": _scalars, "when": _scalars, "actor": _scalars, "meta": _json},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_json
    | _change
    | st.fixed_dictionaries(
        {
            "entity": st.sampled_from(["model_version", "x"]),
            "action": st.sampled_from(["created", "y"]),
            "data": _json,
        }
    )
)
def test_fuzzed_change_bodies_never_500(app: App, body: object) -> None:
    resp = post_change(app, body)
    assert resp.status_code in (202, 400), resp.text
    if resp.status_code != 202:
        assert resp.json()["dead_letter_id"] > 0


def test_change_meta_with_nul_is_stored(app: App) -> None:
    resp = post_change(app, {"kind": "config", "service": "checkout", "meta": {"diff": "a\u0000b"}})
    assert resp.status_code == 202
    with app.rt.sessions() as s:
        row = s.get(ChangeEvent, resp.json()["change_id"])
        assert row is not None and row.meta == {"diff": "a\ufffdb"}
