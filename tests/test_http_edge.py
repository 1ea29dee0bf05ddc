"""The HTTP edge under hostile or careless input: no good alert is lost for a bad neighbour, every
reject is a 4xx naming the problem plus a dead letter, and nothing answers 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.kernel.models import AlertPayload, AlertRecord, DeadLetter, Incident
from handlers.http.app import UNSIGNED_DEAD_LETTERS_PER_MINUTE
from handlers.http.edge import MAX_BODY, DeadLetterBudget
from handlers.parsers import pagerduty
from incident_bot.demo.slack_stub import signed_headers
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, SIGNING_SECRET, App, running_app

OWN = Path(__file__).resolve().parent / "fixtures" / "payloads"
AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}


def am_group(n: int = 4) -> dict[str, Any]:
    body = json.loads((OWN / "alertmanager_two_alerts.json").read_text())
    template = body["alerts"][0]
    body["alerts"] = []
    for i in range(n):
        item = copy.deepcopy(template)
        item["labels"]["alertname"] = f"CheckoutAlert{i}"
        item["fingerprint"] = f"fp-{i}"
        body["alerts"].append(item)
    return body


def count(app: App, model: type, *where: Any) -> int:
    with app.rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def dead_letter(app: App, dl_id: int) -> DeadLetter:
    with app.rt.sessions() as s:
        row = s.get(DeadLetter, dl_id)
        assert row is not None
        s.expunge(row)
        return row


# --- no good alert lost for a bad neighbour -----------------------------------------------------
def test_batch_with_invalid_alerts_accepts_the_valid_ones(app: App) -> None:
    body = am_group(4)
    del body["alerts"][1]["labels"]["alertname"]
    body["alerts"][3]["startsAt"] = "yesterday"
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["status"] == "accepted" and out["alerts"] == 2 and len(out["incidents_created"]) == 1
    assert [(r["index"], r["error"]) for r in out["rejected"]] == [
        (1, "alerts[1].labels.alertname: field required"),
        (
            3,
            "alerts[3].startsAt: must be an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z) or Unix epoch, "
            "got 'yesterday'",
        ),
    ]
    for rejected, item in zip(out["rejected"], (body["alerts"][1], body["alerts"][3]), strict=True):
        row = dead_letter(app, rejected["dead_letter_id"])
        assert rejected["error"] in row.reason and row.source == "alerts/alertmanager"
        assert json.loads(row.body) == item  # the rejected alert itself, verbatim
    assert count(app, AlertRecord) == 2 and count(app, Incident) == 1
    app.drain()  # the post goes out through the outbox
    assert len(app.posts()) == 1


def test_batch_where_every_alert_is_invalid_is_400_naming_the_field(app: App) -> None:
    body = am_group(2)
    for item in body["alerts"]:
        del item["labels"]["alertname"]
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 400
    assert "alerts[0].labels.alertname: field required" in resp.json()["error"]
    assert json.loads(dead_letter(app, resp.json()["dead_letter_id"]).body) == body
    assert count(app, Incident) == 0


def test_bad_envelope_rejects_the_whole_group(app: App) -> None:
    body = am_group(2)
    body["status"] = "maybe"
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 400 and resp.json()["error"].startswith(
        "invalid alertmanager payload: status:"
    )
    assert count(app, DeadLetter) == 1 and count(app, Incident) == 0


def test_generic_batch_partial_acceptance(app: App) -> None:
    body = {"alerts": [{"name": "Disk full", "service": "db"}, {"status": "firing"}, "not an object"]}
    resp = app.client.post("/alerts/generic", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 202
    assert [(r["index"], r["error"]) for r in resp.json()["rejected"]] == [
        (1, "alerts[1].name: field required"),
        (2, "alerts[2]: must be an object, got string"),
    ]
    assert count(app, DeadLetter) == 2 and count(app, AlertRecord) == 1


def test_truncated_alerts_is_reported(app: App) -> None:
    body = am_group(2)
    body["truncatedAlerts"] = 2
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 202 and resp.json()["truncated_alerts"] == 2 and resp.json()["rejected"] == []


def test_valid_alert_with_deeply_nested_extra_field_is_kept(app: App) -> None:
    for depth in (500, 900):
        nested: Any = "bottom"
        for _ in range(depth):
            nested = {"x": nested}
        body = am_group(1)
        body["alerts"][0]["labels"]["alertname"] = f"Deep{depth}"
        body["alerts"][0]["fingerprint"] = f"deep-{depth}"
        body["alerts"][0]["extra"] = nested
        resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
        assert resp.status_code == 202, resp.text
    assert count(app, AlertRecord) == 2 and count(app, AlertPayload) == 2 and count(app, DeadLetter) == 0


# --- size, content type, unknown source -------------------------------------------------------
def test_body_over_the_limit_is_413_with_an_excerpt_kept(app: App) -> None:
    body = json.dumps({"name": "big", "description": "x" * (MAX_BODY + 10)}).encode()
    resp = app.client.post("/alerts/generic", content=body, headers=AUTH)
    assert resp.status_code == 413 and str(MAX_BODY) in resp.json()["error"]
    row = dead_letter(app, resp.json()["dead_letter_id"])
    assert row.body.startswith('{"name": "big"') and len(row.body) <= 2_000


def test_chunked_body_over_the_limit_is_413(app: App) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "description": "'
        for _ in range(MAX_BODY // 65_536 + 2):
            yield b"y" * 65_536
        yield b'"}'

    resp = app.client.post("/alerts/generic", content=chunks(), headers=AUTH)
    assert resp.status_code == 413 and count(app, DeadLetter) == 1


def test_wrong_content_type_is_415_and_kept(app: App) -> None:
    resp = app.client.post(
        "/alerts/generic", content=b"<alert/>", headers={**AUTH, "Content-Type": "application/xml"}
    )
    assert resp.status_code == 415 and "application/xml" in resp.json()["error"]
    assert dead_letter(app, resp.json()["dead_letter_id"]).body == "<alert/>"


@pytest.mark.parametrize("source", ["%00", "n" * 58, "x" * 300, "%F0%9F%92%A5", "a%0Ab", "%ED%A0%80"])
def test_unknown_source_is_404_and_kept_on_every_database(app: App, source: str) -> None:
    resp = app.client.post(f"/alerts/{source}", content=b"{}", headers=AUTH)
    assert resp.status_code == 404, resp.text
    assert "known: alertmanager" in resp.json()["error"]
    row = dead_letter(app, resp.json()["dead_letter_id"])
    assert row.source.startswith("alerts/") and len(row.source) <= 64 and "\x00" not in row.source


# --- per-source auth: PagerDuty's own signature -------------------------------------------------
@pytest.fixture
def pd_app(sqlite_url: str, fake_encoder: HashingEncoder) -> Iterator[App]:
    with (
        WebhookTarget(secret="h") as target,
        running_app(sqlite_url, fake_encoder, target, pagerduty_webhook_secret="pd-secret") as a,
    ):
        yield a


def _pd_sig(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_signature_authenticates_without_bearer(pd_app: App) -> None:
    body = (OWN / "pagerduty_resolved.json").read_bytes()
    ok = pd_app.client.post(
        "/alerts/pagerduty",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": f"{_pd_sig('old-secret', body)}, {_pd_sig('pd-secret', body)}",
        },
    )
    assert ok.status_code == 202, ok.text
    bad = pd_app.client.post(
        "/alerts/pagerduty",
        content=body,
        headers={"Content-Type": "application/json", "X-PagerDuty-Signature": _pd_sig("wrong", body)},
    )
    assert bad.status_code == 401
    tampered = pd_app.client.post(
        "/alerts/pagerduty",
        content=body + b" ",
        headers={"Content-Type": "application/json", "X-PagerDuty-Signature": _pd_sig("pd-secret", body)},
    )
    assert tampered.status_code == 401
    # the signature is PagerDuty's only: other sources still need the bearer token
    other = pd_app.client.post(
        "/alerts/generic",
        content=b'{"name": "x"}',
        headers={
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": _pd_sig("pd-secret", b'{"name": "x"}'),
        },
    )
    assert other.status_code == 401


def test_empty_secrets_are_no_credentials(sqlite_url: str, fake_encoder: HashingEncoder) -> None:
    """ALERT_WEBHOOK_TOKEN= and PAGERDUTY_WEBHOOK_SECRET= (set but empty) are unset, not an empty password."""
    body = (OWN / "pagerduty_resolved.json").read_bytes()
    with (
        WebhookTarget(secret="h") as target,
        running_app(
            sqlite_url, fake_encoder, target, alert_webhook_token="", pagerduty_webhook_secret=""
        ) as app,
    ):
        signed = app.client.post(
            "/alerts/pagerduty",
            content=body,
            headers={"Content-Type": "application/json", "X-PagerDuty-Signature": _pd_sig("", body)},
        )
        empty_bearer = app.client.post(
            "/alerts/generic",
            content=b'{"name": "x"}',
            headers={"Content-Type": "application/json", "Authorization": "Bearer "},
        )
    assert (
        signed.status_code == 503 and empty_bearer.status_code == 503
    )  # webhooks off: nothing is configured
    assert "ALERT_WEBHOOK_TOKEN" in empty_bearer.json()["error"]


def test_pagerduty_signature_parsing() -> None:
    body = b'{"event": {}}'
    good = _pd_sig("s", body)
    assert pagerduty.signature_ok("s", body, good)
    assert pagerduty.signature_ok("s", body, f"v1=00, {good}")
    assert not pagerduty.signature_ok("s", body, None)
    assert not pagerduty.signature_ok("s", body, good.removeprefix("v1="))
    assert not pagerduty.signature_ok("s", body, "v1=" + "0" * 64)


# --- /slack/events --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"[1, 2]", "application/json"),
        (b"[]", "application/json"),
        (b"payload=%5B%5D", "application/x-www-form-urlencoded"),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
        (b'"text"', "application/json"),
    ],
)
def test_signed_odd_slack_bodies_are_4xx_and_kept(app: App, body: bytes, ctype: str) -> None:
    resp = app.client.post(
        "/slack/events", content=body, headers={**signed_headers(SIGNING_SECRET, body), "Content-Type": ctype}
    )
    assert 400 <= resp.status_code < 500, resp.text
    with app.rt.sessions() as s:
        rows = s.scalars(select(DeadLetter).where(DeadLetter.source == "slack")).all()
        assert len(rows) == 1 and rows[0].body == body.decode()


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-5", "9" * 40, "0x10"])
def test_non_numeric_slack_timestamp_is_401(app: App, timestamp: str) -> None:
    body = b"payload=%7B%7D"
    headers = {**signed_headers(SIGNING_SECRET, body), "X-Slack-Request-Timestamp": timestamp}
    resp = app.client.post("/slack/events", content=body, headers=headers)
    assert resp.status_code == 401


def test_unsigned_slack_flood_writes_a_bounded_number_of_dead_letters(app: App) -> None:
    sent = UNSIGNED_DEAD_LETTERS_PER_MINUTE * 3
    for i in range(sent):
        resp = app.client.post(
            "/slack/events",
            content=f"payload=junk{i}".encode(),
            headers={"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"},
        )
        assert resp.status_code == 401
    stored = count(app, DeadLetter, DeadLetter.source == "slack")
    # one minute's budget, or two plus the summary row if the run crossed a minute boundary
    assert UNSIGNED_DEAD_LETTERS_PER_MINUTE <= stored <= 2 * UNSIGNED_DEAD_LETTERS_PER_MINUTE + 1 < sent


def test_unsigned_slack_body_over_the_limit_is_413_without_reading_it_all(app: App) -> None:
    resp = app.client.post("/slack/events", content=b"payload=" + b"a" * (MAX_BODY + 1))
    assert resp.status_code == 413
    with app.rt.sessions() as s:
        rows = s.scalars(select(DeadLetter).where(DeadLetter.source == "slack")).all()
        assert len(rows) == 1 and len(rows[0].body) <= 2_000


def test_dead_letter_budget_counts_then_reports_once_per_minute() -> None:
    now = [120.0]
    budget = DeadLetterBudget(per_minute=2, clock=lambda: now[0])
    assert [budget.take() for _ in range(4)] == [(True, 0), (True, 0), (False, 0), (False, 0)]
    now[0] += 60
    assert budget.take() == (True, 2)  # the next minute opens with the count of the suppressed ones
    assert budget.take() == (True, 0) and budget.suppressed_total == 2
