"""The Slack outbox: messages commit with the state change, survive outages, coalesce, honour 429
Retry-After, keep order per incident, never post twice, and never hold up alert intake."""

from __future__ import annotations

import copy
import json
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.kernel.db import transaction
from bot.kernel.db_types import utcnow
from bot.kernel.outbox import Kind, OutboxMessage, Status
from bot.kernel.scheduler import claim_run
from tests.apphelpers import ALERT_TOKEN, ALERTS, App

CHECKOUT = json.loads((ALERTS / "alertmanager_checkout.json").read_text())
HEADERS = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}


def _post(app: App, body: dict[str, Any]) -> Any:
    """Send an alert batch without draining the outbox (as a server would answer)."""
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body).encode(), headers=HEADERS)
    assert resp.status_code == 202, resp.text
    return resp.json()


def _variant(marker: str, *, group: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(CHECKOUT)
    for alert in body["alerts"]:
        alert["annotations"]["summary"] = f"Checkout errors {marker}"
    if group is not None:  # another group of other alerts (other fingerprints)
        body["groupKey"] = group
        for alert in body["alerts"]:
            alert["labels"]["shard"] = group
            alert.pop("fingerprint", None)
    return body


def _rows(app: App) -> list[OutboxMessage]:
    """The chat messages in the outbox (an incident's advice row, which precedes its post, calls no chat)."""
    with app.rt.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind != Kind.ADVISE).order_by(OutboxMessage.id)
            )
        )


def test_outage_of_slack_keeps_the_post_until_it_recovers(app: App) -> None:
    app.stub.fail("chat.postMessage", status=503)
    created = _post(app, CHECKOUT)["incidents_created"]
    assert app.drain() == 1 and app.posts() == []  # the advice (no chat call) is stored; the post is kept
    [row] = _rows(app)
    assert (row.kind, row.status, row.incident_id) == (Kind.POST_INCIDENT, Status.PENDING, created[0])
    assert row.attempts == 1 and "internal_error" in (row.last_error or "")
    assert app.drain() == 0 and _rows(app)[0].attempts == 2  # still down: tried again, still kept
    app.stub.heal()
    assert app.drain() == 1
    assert len(app.posts()) == 1 and app.rt.service.outbox.depth() == 0
    assert app.drain() == 0 and len(app.posts()) == 1  # done rows are never sent again


def _advice_rows(app: App) -> list[OutboxMessage]:
    with app.rt.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == Kind.ADVISE)))


def test_a_post_queued_before_the_advice_job_existed_still_carries_its_advice(app: App) -> None:
    _post(app, CHECKOUT)
    with transaction(app.rt.sessions) as session:  # as an older version queued it: a post and no advice row
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == Kind.ADVISE)):
            session.delete(row)
    app.drain()
    [post] = app.posts()
    blocks = json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "Similar past incidents" in blocks and "Request: Restart PgBouncer" in blocks


def test_advice_an_older_replica_could_not_run_does_not_cost_the_post_its_advice(app: App) -> None:
    """A rolling upgrade: an old replica claims the `advise` row, has no handler and fails it for good."""
    _post(app, CHECKOUT)
    with transaction(app.rt.sessions) as session:
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == Kind.ADVISE)):
            row.status, row.last_error = Status.FAILED, "no handler for outbox kind 'advise'"
    app.drain()
    [post] = app.posts()
    blocks = json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "Similar past incidents" in blocks and "Request: Restart PgBouncer" in blocks


def test_thumbs_down_clicks_coalesce_into_one_new_search(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    message = app.posts()[0]
    before = len(_advice_rows(app))
    downs = [
        el["value"]
        for b in message.params["blocks"]
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["text"]["text"] == "👎"
    ]
    assert len(downs) >= 2
    for value in downs[:2]:  # two people mark two matches unhelpful before any worker runs
        app.rt.service.feedback(
            incident_id=1,
            kind=value.split(":")[1],
            target_id=value.split(":", 2)[2],
            user_id="U0ONCALL1",
            helpful=False,
        )
    assert len(_advice_rows(app)) == before + 1  # one search for both
    app.drain()
    updated = json.dumps(app.stub.of("chat.update")[-1].params["blocks"], ensure_ascii=False)
    assert all(value not in updated for value in downs[:2])


def test_rate_limited_update_honours_retry_after_and_delivers_the_last_state(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    app.stub.fail("chat.update", status=429, retry_after=7, times=1)
    before = utcnow()
    _post(app, json.loads((ALERTS / "alertmanager_checkout_resolved.json").read_text()))
    app.rt.service.outbox.drain(ignore_delays=False)
    [update] = [r for r in _rows(app) if r.kind == Kind.UPDATE_INCIDENT]
    assert update.status == Status.PENDING and "rate limited" in (update.last_error or "")
    wait = (update.next_attempt_at - before).total_seconds()
    assert 6.5 <= wait <= 9, wait  # Slack's Retry-After, not our own back-off
    assert app.rt.service.outbox.drain(ignore_delays=False) == 0  # not due yet: Slack asked us to wait
    assert app.drain() == 1
    last = app.stub.of("chat.update")[-1]
    assert "resolved" in json.dumps(last.params["blocks"]).lower()


def test_updates_to_one_message_coalesce_into_one_chat_update(app: App) -> None:
    app.sample("alertmanager", "alertmanager_checkout.json")
    for i in range(10):
        _post(app, _variant(f"marker-{i}"))
    pending = [r for r in _rows(app) if r.status == Status.PENDING]
    assert len(pending) == 1 and pending[0].coalesce_key is not None
    assert app.drain() == 1
    [update] = app.stub.of("chat.update")
    assert "marker-9" in json.dumps(update.params)  # rendered at delivery: the last state
    # The next update of the same message is due no sooner than the coalescing interval after this one.
    _post(app, _variant("marker-10"))
    rows = _rows(app)
    sent = next(r for r in rows if r.status == Status.DONE and r.kind == Kind.UPDATE_INCIDENT)
    nxt = next(r for r in rows if r.status == Status.PENDING)
    assert sent.sent_at is not None
    interval = app.rt.service.outbox.coalesce_seconds
    assert nxt.next_attempt_at >= sent.sent_at + timedelta(seconds=interval) - timedelta(milliseconds=5)


def test_updates_wait_for_the_first_post_of_their_incident(app: App) -> None:
    app.stub.fail("chat.postMessage", status=500)
    _post(app, CHECKOUT)
    _post(app, _variant("changed"))
    app.drain()
    assert app.stub.of("chat.update") == []  # never an update of a message that does not exist
    assert [r.status for r in _rows(app)] == [Status.PENDING, Status.PENDING]
    app.stub.heal()
    assert app.drain() == 2
    assert [c.method for c in app.stub.calls if c.method.startswith("chat.")] == [
        "chat.postMessage",
        "chat.update",
    ]


def test_concurrent_workers_post_each_incident_once(app: App) -> None:
    app.stub.fail("chat.postMessage", status=500)
    for n in range(6):
        _post(app, _variant(str(n), group=f'{{}}:{{service="svc-{n}"}}'))
    app.drain()
    app.stub.heal()
    threads = [threading.Thread(target=app.rt.service.outbox.drain) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    posts = app.posts()
    assert len(posts) == 6
    assert len({p.params["text"] for p in posts}) == 6
    assert all(r.status == Status.DONE for r in _rows(app))


def test_hanging_slack_does_not_hold_up_alerts_health_or_acks(app: App) -> None:
    from incident_bot.demo.slack_stub import block_action_body, find_button, signed_headers
    from tests.apphelpers import SIGNING_SECRET

    outbox = app.rt.service.outbox
    first = app.sample("alertmanager", "alertmanager_checkout.json").json()["incidents_created"]
    message = app.posts()[0]
    release = threading.Event()
    app.stub.hang("chat.postMessage", release)
    app.stub.hang("chat.update", release)
    outbox.start(threads=2)
    try:
        for n in range(20):  # the workers are stuck in Slack; intake answers regardless
            _post(app, _variant(str(n), group=f'{{}}:{{service="hang-{n}"}}'))
        assert app.client.get("/healthz").status_code == 200
        body = block_action_body(
            user="U0ONCALL1",
            button=find_button(message.params["blocks"], "Acknowledge"),
            channel="C0INCIDENTS",
            message_ts=message.response["ts"],
        )
        ack = app.client.post("/slack/events", content=body, headers=signed_headers(SIGNING_SECRET, body))
        assert ack.status_code == 200  # the button is acknowledged; its message update waits in the outbox
        assert len(app.posts()) == 1 and outbox.depth() >= 20
    finally:
        release.set()
        app.stub.heal()
        outbox.stop()
    app.drain()
    assert first == [1] and len(app.posts()) == 21
    assert "U0ONCALL1" in json.dumps(app.stub.of("chat.update")[-1].params["blocks"])


def test_enqueue_is_part_of_the_callers_transaction(app: App) -> None:
    sessions = app.rt.sessions
    _post(app, CHECKOUT)
    before = len(_rows(app))
    with sessions() as session:
        with session.begin():
            app.rt.outbox.enqueue(session, kind=Kind.THREAD_REPLY, incident_id=1, payload={"text": "hello"})
            session.rollback()
    assert len(_rows(app)) == before  # rolled back with the change it belonged to
    with sessions() as session, session.begin():
        app.rt.outbox.enqueue(
            session, kind=Kind.THREAD_REPLY, incident_id=1, payload={"text": "hello <!channel>"}
        )
    app.drain()
    reply = [c for c in app.posts() if c.params.get("thread_ts")]
    assert reply and reply[-1].params["text"] == "hello &lt;!channel&gt;"


def test_a_scheduled_job_runs_once_per_period_across_replicas(app: App) -> None:
    sessions = app.rt.sessions
    now = utcnow()
    every = timedelta(minutes=10)
    wins = [claim_run(sessions, "digest", every, holder=f"replica-{i}", now=now) for i in range(3)]
    assert wins == [True, False, False]
    assert claim_run(sessions, "digest", every, holder="replica-1", now=now + timedelta(minutes=6))
    assert not claim_run(sessions, "digest", every, holder="replica-2", now=now + timedelta(minutes=7))


def test_knowledge_index_picks_up_documents_added_by_another_replica(sessions, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from bot.advice.knowledge import KnowledgeBase
    from retrieval.types import Document, Query

    mine, other = (KnowledgeBase(sessions=sessions, encoder=fake_encoder) for _ in range(2))
    query = Query(text="zookeeper quorum lost after leader election storm", service="zk")
    assert mine.search(query) == []  # loaded, empty
    other.upsert(
        [
            Document(
                id="rca-zk",
                title="ZooKeeper quorum lost",
                service="zk",
                text="zookeeper quorum lost after leader election storm; restarted followers",
                root_cause="leader election storm",
                resolution=None,
                created_at=None,
                url=None,
                meta={"source": "rca"},
            )
        ],
        source="rca",
    )
    mine.refresh_seconds = 0  # the periodic check is due
    assert [m.document.id for m in mine.search(query)] == ["rca-zk"]


def test_readyz_and_metrics_report_database_schema_and_counters(app: App) -> None:
    ready = app.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "model": "ok"}}
    app.stub.fail("chat.postMessage", status=500, times=1)
    _post(app, CHECKOUT)
    text = app.client.get("/metrics").text
    assert "incident_bot_outbox_depth 2.0" in text  # the advice and the post wait in the outbox
    assert 'incident_bot_alerts_received_total{outcome="accepted",source="alertmanager"}' in text
    assert app.drain() == 1 and app.drain() == 1  # advice stored, post answered 500; the retry went through
    text = app.client.get("/metrics").text
    assert "incident_bot_outbox_depth 0.0" in text
    assert 'incident_bot_slack_calls_total{method="chat.postMessage",outcome="error"}' in text
    assert 'incident_bot_slack_calls_total{method="chat.postMessage",outcome="ok"}' in text
    assert "incident_bot_search_seconds_bucket" in text


def test_json_logs_when_asked(capsys) -> None:  # type: ignore[no-untyped-def]
    import logging

    from incident_bot.logging_setup import configure, reset

    configure(level="INFO", fmt="json")
    try:
        logging.getLogger("bot.kernel.outbox").info("delivered %s", 3)
        logging.getLogger("bot.kernel.outbox").debug("hidden")
    finally:
        reset()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x["logger"], x["message"]) for x in lines] == [
        ("INFO", "bot.kernel.outbox", "delivered 3")
    ]


# ---- fail fast and doctor -----------------------------------------------------------------------------
def _cli(args: list[str], env: dict[str, str], cwd: Any) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "incident_bot", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_fails_fast_with_one_line_naming_the_setting(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    from incident_bot.demo.slack_stub import SlackStub

    with SlackStub() as stub:
        base = {
            "DATABASE_URL": sqlite_url,
            "SLACK_BOT_TOKEN": "xoxb-invalid",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": stub.base_url,
            "ALERT_WEBHOOK_TOKEN": "t",
        }
        bad_token = _cli(["serve", "--port", "0"], base, tmp_path)
        bad_db = _cli(
            ["serve", "--port", "0"],
            {**base, "SLACK_BOT_TOKEN": "xoxb-ok", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            tmp_path,
        )
        bad_dir = _cli(
            ["serve", "--port", "0"],
            {**base, "SLACK_BOT_TOKEN": "xoxb-ok", "RUNBOOKS_DIR": str(tmp_path / "missing")},
            tmp_path,
        )
        doctor = _cli(
            ["doctor", "--skip-model"],
            {**base, "SLACK_BOT_TOKEN": "xoxb-ok", "INCIDENT_CHANNEL": "C0INCIDENTS"},
            tmp_path,
        )
    for proc, setting in (
        (bad_token, "SLACK_BOT_TOKEN"),
        (bad_db, "DATABASE_URL"),
        (bad_dir, "RUNBOOKS_DIR"),
    ):
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {setting}: "), proc.stderr
        assert "Traceback" not in proc.stderr
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "OK    slack auth.test" in doctor.stdout and "C0INCIDENTS: bot is a member" in doctor.stdout
    assert "OK    migrations" in doctor.stdout


def test_runbooks_import_without_a_folder_refuses(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    proc = _cli(["runbooks", "import"], {"DATABASE_URL": sqlite_url}, tmp_path)
    assert proc.returncode == 2 and "give the folder" in proc.stderr
