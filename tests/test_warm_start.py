"""Warm start (issue 17): runbook passage embeddings are computed when the runtime starts, so the first
incident's advice encodes only its own query (its post no longer waits 3.7-11 s for them); and a burst of
new incidents has its queries embedded together, one model call per claimed batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select

from bot.kernel.models import Incident, Runbook
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import running_app


class CountingEncoder(HashingEncoder):
    """The test encoder, counting the texts it is asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.calls: list[int] = []  # texts per call

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return super().encode(texts, **kw)


def test_runbook_embeddings_are_computed_at_start_not_at_the_first_incident(
    sqlite_url: str, target: WebhookTarget
) -> None:
    encoder = CountingEncoder()
    with running_app(sqlite_url, encoder, target) as app:
        with app.rt.sessions() as s:
            runbooks = int(s.scalar(select(func.count()).select_from(Runbook)) or 0)
        assert runbooks >= 3
        encoder.texts.clear()  # the sample knowledge base's import
        app.rt.warm()
        warmed = len(encoder.texts)
        assert warmed > runbooks  # every runbook's title, steps and paragraphs
        encoder.texts.clear()
        resp = app.alert("generic", {"name": "DiskFull", "service": "db", "fingerprint": "f"})
        assert resp.status_code == 202 and len(app.posts()) == 1
        # the first incident's advice encoded its query, nothing of the runbooks
        assert len(encoder.texts) == 1 and "DiskFull" in encoder.texts[0]


def test_a_burst_of_new_incidents_embeds_its_queries_in_one_call(
    sqlite_url: str, target: WebhookTarget
) -> None:
    encoder = CountingEncoder()
    with running_app(sqlite_url, encoder, target) as app:
        app.rt.warm()
        for name, service in (("DiskFull", "db-1"), ("HighLatency", "api"), ("OOMKilled", "worker")):
            body = {"name": name, "service": service, "fingerprint": service}
            resp = app.client.post(
                "/alerts/generic", json=body, headers={"Authorization": "Bearer test-alert-token"}
            )
            assert resp.status_code == 202
        encoder.calls.clear()
        encoder.texts.clear()
        app.drain()  # the three advise rows are claimed together (a worker claims up to 4)
        assert len(app.posts()) == 3
        assert encoder.calls == [3], encoder.calls  # one model call for the three queries, none per advice
        with app.rt.sessions() as s:
            incidents = s.scalars(select(Incident).order_by(Incident.id)).all()
        assert [i.slack_ts for i in incidents] == [p.response["ts"] for p in app.posts()]
