"""Property-based fuzzing of every alert endpoint through the real FastAPI app (SQLite).

Bodies are random JSON (deeply nested, odd strings and numbers), our own fixtures with a random
part replaced by random JSON, or random bytes; headers vary (content type, query). The properties:
never a 5xx, and every 4xx names the problem and leaves a dead letter that can be read back.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.kernel.models import DeadLetter
from handlers.parsers import known_sources
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, App, running_app
from tests.conftest import sqlite_url_from_template

OWN = Path(__file__).resolve().parent / "fixtures" / "payloads"
SEEDS = {
    "alertmanager": ["alertmanager_two_alerts.json"],
    "grafana": ["alertmanager_two_alerts.json"],
    "generic": ["generic_single.json", "generic_batch.json"],
    "model": ["model_drift.json", "model_batch.json"],
    "datadog": ["datadog_custom_recovered.json"],
    "pagerduty": ["pagerduty_resolved.json", "pagerduty_ping.json"],
    "opsgenie": ["opsgenie_create.json", "opsgenie_close.json"],
    "evidently": ["evidently_snapshot_drift.json"],
}

odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "firing",
            "resolved",
            "\x00",
            "<!channel>",
            "2024-05-01T12:00:00Z",
            "0001-01-01T00:00:00Z",
            "9" * 400,
            "P1",
            "critical",
            "$.x",
            "alerts",
            "NaN",
            "null",
            "ﬀ\u202e",
            "a" * 5000,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)),
    max_leaves=25,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    value: Any = draw(scalars)
    for _ in range(draw(st.integers(min_value=50, max_value=950))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated_seed(draw: st.DrawFn, source: str) -> Any:
    body = copy.deepcopy(json.loads((OWN / draw(st.sampled_from(SEEDS[source]))).read_text()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "deep"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(deep() if action == "deep" else json_values)
    return body


HUGE = st.sampled_from(
    [2**31, 2**31 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63), 1e300, "99999999999999999999"]
)


@st.composite
def huge_counts(draw: st.DrawFn, source: str) -> Any:
    """A valid seed whose integer fields (Alertmanager's ``truncatedAlerts``) are out of every column's
    range: bounded at the edge, never a lost batch or a 500."""
    body = copy.deepcopy(json.loads((OWN / draw(st.sampled_from(SEEDS[source]))).read_text()))
    if isinstance(body, dict):
        body["truncatedAlerts"] = draw(HUGE)
    return body


def bodies(source: str) -> st.SearchStrategy[bytes]:
    as_json = st.one_of(mutated_seed(source), json_values, deep(), huge_counts(source)).map(
        lambda v: json.dumps(v).encode()
    )
    return st.one_of(
        as_json,
        as_json,
        as_json,
        st.binary(max_size=200),
        st.sampled_from([b"", b"{", b'{"a": NaN}', b"[" * 5000, b'"\\ud800"', b'{"alerts": []}']),
    )


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/xml",
        "application/cloudevents+json",
    ]
)
queries = st.dictionaries(
    st.sampled_from(["model", "version", "serving_service", "owner", "severity", "x"]),
    st.text(max_size=20),
    max_size=3,
)


@pytest.fixture(scope="module")
def fuzz_app(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    url = sqlite_url_from_template(sqlite_template, tmp_path_factory.mktemp("fuzz"))
    with WebhookTarget(secret="h") as target, running_app(url, HashingEncoder(), target) as app:
        yield app


@pytest.mark.parametrize("source", sorted(SEEDS))
def test_fuzz_alert_endpoint_never_500s_and_keeps_every_reject(fuzz_app: App, source: str) -> None:
    assert set(SEEDS) == set(known_sources())  # every endpoint is fuzzed

    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies(source), ctype=content_types, query=queries)
    def check(body: bytes, ctype: str | None, query: dict[str, str]) -> None:
        headers = {"Authorization": f"Bearer {ALERT_TOKEN}"}
        if ctype is not None:
            headers["Content-Type"] = ctype
        url = f"/alerts/{source}" + (f"?{urlencode(query)}" if query else "")
        resp = fuzz_app.client.post(url, content=body, headers=headers)
        event(f"HTTP {resp.status_code}")
        assert resp.status_code < 500, resp.text
        out = resp.json()
        if resp.status_code >= 400:
            assert out["error"] and isinstance(out["dead_letter_id"], int)
            with fuzz_app.rt.sessions() as s:
                row = s.get(DeadLetter, out["dead_letter_id"])
                assert row is not None and row.reason == out["error"][:2000]
        else:
            assert resp.status_code == 202 and out["status"] == "accepted"
            for rejected in out["rejected"]:
                assert rejected["error"].startswith(f"alerts[{rejected['index']}]")
                assert isinstance(rejected["dead_letter_id"], int)

    check()


slack_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: b"payload=" + urlencode({"p": json.dumps(v)}).encode()[2:]),
    st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "trigger_id", "payload", "type", "token"]),
        st.text(max_size=30),
        max_size=4,
    ).map(lambda d: urlencode(d).encode()),
    st.binary(max_size=200),
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Validly signed bodies Bolt cannot read: nested 10,000 deep, block_actions without an action.
UNREADABLE_SLACK = [
    b"payload=" + urlencode({"p": '{"type": "block_actions", "actions": []}'}).encode()[2:],
    b"payload=" + urlencode({"p": '{"type": "block_actions", "actions": [1]}'}).encode()[2:],
    b"payload=" + urlencode({"p": '{"type": "block_actions"}'}).encode()[2:],
    b"payload=" + urlencode({"p": '{"type": "block_actions", "actions": {"a": 1}}'}).encode()[2:],
    b"payload=" + urlencode({"p": '{"type": "block_actions", "x": ' + _nested(10_000) + "}"}).encode()[2:],
    ('{"type": "event_callback", "event": ' + _nested(10_000) + "}").encode(),
]
slack_bodies = st.one_of(slack_bodies, st.sampled_from(UNREADABLE_SLACK))
slack_types = st.sampled_from(["application/json", "application/x-www-form-urlencoded", None, "text/plain"])


def test_fuzz_slack_events_never_500s(fuzz_app: App) -> None:
    from incident_bot.demo.slack_stub import signed_headers
    from tests.apphelpers import SIGNING_SECRET

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=slack_bodies, ctype=slack_types, sign=st.booleans())
    def check(body: bytes, ctype: str | None, sign: bool) -> None:
        headers = signed_headers(SIGNING_SECRET, body.decode("utf-8", "replace").encode()) if sign else {}
        if ctype is not None:
            headers["Content-Type"] = ctype
        resp = fuzz_app.client.post("/slack/events", content=body, headers=headers)
        assert resp.status_code < 500, (resp.status_code, resp.text)

    check()


@pytest.mark.parametrize(
    "body",
    UNREADABLE_SLACK,
    ids=["actions-empty", "actions-int", "no-actions", "actions-object", "deep-form", "deep-json"],
)
def test_signed_slack_bodies_bolt_cannot_read_are_400_and_kept(fuzz_app: App, body: bytes) -> None:
    from incident_bot.demo.slack_stub import signed_headers
    from tests.apphelpers import SIGNING_SECRET

    headers = signed_headers(SIGNING_SECRET, body)
    if body.startswith(b"{"):
        headers["Content-Type"] = "application/json"
    resp = fuzz_app.client.post("/slack/events", content=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert "not a valid payload" in resp.json()["error"]


change_bodies = st.one_of(
    json_values,
    deep(),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["deploy", "rollout", "config"]), "service": odd_text, "version": scalars}
    ),
).map(lambda v: json.dumps(v).encode())


def test_fuzz_changes_shares_the_alert_edge(fuzz_app: App) -> None:
    """``/changes`` answers exactly like ``/alerts/*``: 415 for a content type that is not JSON, 400 (never
    422) for an invalid body, a dead letter for every refusal, never a 5xx."""

    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=st.one_of(change_bodies, st.binary(max_size=100)), ctype=content_types)
    def check(body: bytes, ctype: str | None) -> None:
        headers = {"Authorization": f"Bearer {ALERT_TOKEN}"}
        if ctype is not None:
            headers["Content-Type"] = ctype
        resp = fuzz_app.client.post("/changes", content=body, headers=headers)
        event(f"HTTP {resp.status_code}")
        assert resp.status_code in (202, 400, 415), resp.text
        if ctype in ("application/x-www-form-urlencoded", "text/xml"):
            assert resp.status_code == 415
        if resp.status_code != 202:
            out = resp.json()
            with fuzz_app.rt.sessions() as s:
                row = s.get(DeadLetter, out["dead_letter_id"])
                assert row is not None and row.reason == out["error"][:2000] and row.source == "changes"

    check()
