"""The edge's bounds (issue 17): integers from a payload, one edge for ``/alerts/*`` and ``/changes``, and a
deadline for reading a request body (a real uvicorn server and a slow client on a raw socket)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from bot.kernel.models import DeadLetter, Incident
from handlers.parsers._common import MAX_COUNT
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, App, running_app
from tests.test_http_edge import am_group

AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}


@pytest.mark.parametrize("huge", [2**31, 2**63, 2**64, 10**30])
def test_truncated_alerts_out_of_range_is_clamped_not_a_lost_batch(app: App, huge: int) -> None:
    body = am_group(2)
    body["truncatedAlerts"] = huge
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["alerts"] == 2 and out["truncated_alerts"] == MAX_COUNT == 2**31 - 1
    with app.rt.sessions() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.truncated_alerts == MAX_COUNT


def test_truncated_alerts_that_is_not_a_number_is_400_naming_the_field(app: App) -> None:
    body = am_group(1)
    body["truncatedAlerts"] = "many"
    resp = app.client.post("/alerts/alertmanager", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 400
    assert (
        resp.json()["error"]
        == "invalid alertmanager payload: truncatedAlerts: must be a whole number, got 'many'"
    )


ROUTES = ["/alerts/generic", "/changes"]


@pytest.mark.parametrize("route", ROUTES)
def test_both_webhook_routes_refuse_a_content_type_that_is_not_json(app: App, route: str) -> None:
    resp = app.client.post(
        route,
        content=b'{"kind": "deploy", "service": "x", "name": "x"}',
        headers={**AUTH, "Content-Type": "text/xml"},
    )
    assert resp.status_code == 415 and "text/xml" in resp.json()["error"]
    assert isinstance(resp.json()["dead_letter_id"], int)


@pytest.mark.parametrize("route", ROUTES)
def test_both_webhook_routes_answer_400_to_an_invalid_body(app: App, route: str) -> None:
    resp = app.client.post(route, content=b'{"kind": 7}', headers=AUTH)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith(("invalid generic payload", "invalid change event"))


@pytest.mark.parametrize("route", ROUTES)
def test_both_webhook_routes_keep_the_same_excerpt_of_an_oversized_body(app: App, route: str) -> None:
    big = json.dumps({"kind": "deploy", "service": "x", "name": "n", "title": "y" * 1_100_000}).encode()
    resp = app.client.post(route, content=big, headers=AUTH)
    assert resp.status_code == 413
    with app.rt.sessions() as s:
        row = s.get(DeadLetter, resp.json()["dead_letter_id"])
        assert row is not None and len(row.body) == 2_000 and "first 2000 bytes are kept" in row.reason


# --- the body read deadline -----------------------------------------------------------------------------
@pytest.fixture
def served(sqlite_url: str, fake_encoder: HashingEncoder) -> Iterator[tuple[App, int]]:
    """The app on a real uvicorn server (the TestClient never sends a body slowly)."""
    with (
        WebhookTarget(secret="h") as target,
        running_app(sqlite_url, fake_encoder, target, http_body_timeout_seconds=1.0) as app,
    ):
        server = uvicorn.Server(uvicorn.Config(app.rt.http, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:  # uvicorn has no started event
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield app, port
        finally:
            server.should_exit = True
            thread.join(10)


def _raw_post(port: int, body_sent: bytes, declared: int) -> tuple[bytes, float, socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /alerts/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALERT_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    t0 = time.monotonic()
    sock.sendall(head + body_sent)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - t0, sock


def test_a_body_that_never_arrives_is_408_and_the_connection_closed(served: tuple[App, int]) -> None:
    app, port = served
    answer, waited, sock = _raw_post(port, b'{"name": "slow', declared=500)
    with sock:
        head, _, rest = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert b"connection: close" in head.lower()
        assert 0.9 <= waited < 5, waited
        sock.settimeout(5)
        while True:  # the server closes the connection: the slow client holds nothing
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    error: dict[str, Any] = json.loads(rest)
    assert error == {"error": "request body not received within 1 seconds"}


def test_a_body_that_arrives_in_time_is_served(served: tuple[App, int]) -> None:
    app, port = served
    body = json.dumps({"name": "DiskFull", "service": "db", "fingerprint": "f"}).encode()
    answer, _, sock = _raw_post(port, body, declared=len(body))
    sock.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer
