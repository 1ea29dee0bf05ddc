"""Probable origin through the real HTTP endpoint, triage, outbox and the recording Slack stand-in (SQLite and
PostgreSQL): a cascade of three dependent services plus an unrelated alert; the two downstream incidents name
the upstream one, the upstream one lists what it is affecting, the unrelated one is named nowhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.kernel.config import SAMPLE_DATA
from bot.kernel.models import Incident
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import App, running_app

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


@pytest.fixture
def catalog_app(db_url: str, fake_encoder: HashingEncoder, target: WebhookTarget) -> Iterator[App]:
    with running_app(
        db_url,
        fake_encoder,
        target,
        service_catalog=SAMPLE_DATA / "catalog",
        slack_update_interval_seconds=0,
    ) as a:
        yield a


def _alert(app: App, service: str, name: str, minutes: int, severity: str = "critical") -> int:
    resp = app.alert(
        "generic",
        {
            "name": name,
            "status": "firing",
            "severity": severity,
            "service": service,
            "summary": f"{name} on {service}",
            "fingerprint": f"fp-{service}-{name}",
            "starts_at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        },
    )
    assert resp.status_code == 202, resp.text
    created = resp.json()["incidents_created"]
    assert len(created) == 1
    return int(created[0])


def _latest(app: App) -> dict[int, str]:
    """The message as Slack shows it now, per incident: its post, then its latest update."""
    with app.rt.sessions() as s:
        ts_of = {i.slack_ts: i.id for i in s.scalars(select(Incident))}
    out: dict[int, str] = {}
    for call in app.stub.calls:
        if call.method == "chat.postMessage" and call.response.get("ts") in ts_of:
            out[ts_of[call.response["ts"]]] = json.dumps(call.params["blocks"], ensure_ascii=False)
        elif call.method == "chat.update" and call.params.get("ts") in ts_of:
            out[ts_of[call.params["ts"]]] = json.dumps(call.params["blocks"], ensure_ascii=False)
    return out


def test_cascade_names_the_origin_and_never_the_unrelated_service(catalog_app: App) -> None:
    app = catalog_app
    db = _alert(app, "postgres-main", "ConnectionsExhausted", 0)
    unrelated = _alert(app, "recommendations", "Latency <!channel> &", 1, severity="warning")
    payments = _alert(app, "payments", "ErrorRateHigh", 2)
    checkout = _alert(app, "checkout", "CheckoutFailing", 4)
    assert len({db, unrelated, payments, checkout}) == 4
    msgs = _latest(app)
    assert set(msgs) == {db, unrelated, payments, checkout}
    assert f"probable origin:* #{db} `postgres-main`, 1 hop upstream, started 2 min earlier" in msgs[payments]
    assert (
        f"probable origin:* #{db} `postgres-main`, 2 hops upstream, started 4 min earlier" in msgs[checkout]
    )
    assert "checkout depends on postgres-main" in msgs[checkout]  # the reasons, like similarity reasons
    assert "probably affecting:* " in msgs[db]
    assert f"#{payments} `payments`, 1 hop downstream, started 2 min later" in msgs[db]
    assert f"#{checkout} `checkout`, 2 hops downstream, started 4 min later" in msgs[db]
    assert "probable origin" not in msgs[db]
    for incident_id, text in msgs.items():
        assert f"#{unrelated} " not in text and "recommendations" not in text or incident_id == unrelated
    assert "probable origin" not in msgs[unrelated] and "probably affecting" not in msgs[unrelated]
    # the header carries the priority: critical on a tier-1 service is P1; warning on tier 3 experimental P4
    assert "P1 · critical" in msgs[checkout] and "P4 · warning" in msgs[unrelated]
    assert "&lt;!channel&gt; &amp;" in msgs[unrelated]  # untrusted alert text escaped


def test_the_origin_message_is_re_rendered_when_a_related_incident_opens(catalog_app: App) -> None:
    app = catalog_app
    db = _alert(app, "postgres-main", "ConnectionsExhausted", 0)
    assert "probably affecting" not in _latest(app)[db]
    updates = len(app.stub.of("chat.update"))
    _alert(app, "inventory", "StockSyncFailing", 3)
    assert len(app.stub.of("chat.update")) > updates  # an outbox UPDATE of the origin's message
    assert "`inventory`, 1 hop downstream, started 3 min later" in _latest(app)[db]
