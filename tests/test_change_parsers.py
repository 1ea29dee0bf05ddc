"""Change-event parsing (our shape, MLflow's webhook) and the serving service of model alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.kernel.models import ChangeKind
from handlers.parsers.changes import parse_changes
from handlers.parsers.errors import PayloadError
from handlers.parsers.model import parse_model

MODEL = {"model": "fraud-model", "metric": "psi", "value": 0.3, "threshold": 0.2}


def test_own_shape_with_aliases() -> None:
    (c,) = parse_changes(
        {
            "kind": "feature_flag",
            "service": "checkout",
            "who": "ana",
            "when": 1795000000,
            "link": "https://flags.example.com/1",
            "version": 42,
        }
    )
    assert (c.kind, c.service, c.actor, c.url, c.version) == (
        ChangeKind.FEATURE_FLAG,
        "checkout",
        "ana",
        "https://flags.example.com/1",
        "42",
    )
    assert c.occurred_at == datetime.fromtimestamp(1795000000, UTC) and c.title == "feature flag checkout 42"


def test_batch_and_errors_name_the_field() -> None:
    assert len(parse_changes({"changes": [{"kind": "deploy"}, {"kind": "config"}]})) == 2
    with pytest.raises(PayloadError, match=r"alerts\[1\]\.kind"):
        parse_changes({"changes": [{"kind": "deploy"}, {"kind": "nope"}]})
    with pytest.raises(PayloadError, match="data"):
        parse_changes({"entity": "model_version", "action": "created"})


def test_mlflow_serving_service_tag() -> None:
    (c,) = parse_changes(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": "2026-11-22T03:00:00Z",
            "data": {"name": "fraud-model", "version": "7", "tags": {"serving_service": "fraud-scoring"}},
        }
    )
    assert (c.kind, c.model_name, c.version, c.service) == (
        ChangeKind.MODEL_REGISTRATION,  # a version registered is not serving yet: not a promotion
        "fraud-model",
        "7",
        "fraud-scoring",
    )
    assert c.registered_at == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("extra", "service"),
    [
        ({}, None),
        ({"serving_service": "fraud-scoring"}, "fraud-scoring"),
        ({"service": "fraud-api"}, "fraud-api"),
        ({"labels": {"serving_service": "fraud-lbl"}}, "fraud-lbl"),
    ],
)
def test_model_alert_keeps_model_and_serving_service(extra: dict[str, object], service: str | None) -> None:
    (a,) = parse_model({**MODEL, **extra})
    assert a.model is not None and a.model.name == "fraud-model" and a.service == service
