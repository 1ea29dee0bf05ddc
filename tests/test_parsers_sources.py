"""The newer sources: Opsgenie, Evidently reports (real ones, produced by evidently in the test),
generic JSON with a field mapping; plus each through the real HTTP endpoint."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.intake.alerts import AlertKind, AlertStatus, Severity
from bot.kernel.models import AlertRecord, DeadLetter, Incident
from handlers.parsers.errors import PayloadError
from handlers.parsers.evidently import parse_evidently
from handlers.parsers.generic import parse_generic
from handlers.parsers.mapping import FieldMap, compile_path, resolve
from handlers.parsers.opsgenie import parse_opsgenie
from incident_bot.demo.webhook_target import WebhookTarget
from retrieval.encoder import HashingEncoder
from tests.apphelpers import ALERT_TOKEN, App, running_app
from tests.test_parsers import OPSGENIE, only, own, shared, utc

AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
OWN = Path(__file__).resolve().parent / "fixtures" / "payloads"


# --- Opsgenie ---------------------------------------------------------------------------------
def test_opsgenie_real_docs_example() -> None:
    alert = only(parse_opsgenie(shared(OPSGENIE)))
    assert alert.source == "opsgenie" and alert.name == "test alert"  # message, stripped
    assert alert.status is AlertStatus.FIRING  # action Create
    assert alert.source_fingerprint == "aliastest"  # Opsgenie's alias is its dedup key
    assert alert.labels["tags"] == "tag1,tag2" and alert.labels["teams"] == "team1,team2"
    assert alert.starts_at == utc(2015, 1, 5, 10, 3, 11, 104000)  # createdAt, epoch ms
    assert alert.service is None  # entity is empty, no service tag


def test_opsgenie_own_create_then_close_is_one_alert() -> None:
    created = only(parse_opsgenie(own("opsgenie_create.json")))
    closed = only(parse_opsgenie(own("opsgenie_close.json")))
    assert created.status is AlertStatus.FIRING and closed.status is AlertStatus.RESOLVED
    assert created.fingerprint == closed.fingerprint and created.content_hash != closed.content_hash
    assert created.service == "payments"  # from the service:<name> tag
    assert created.severity is Severity.HIGH  # P2
    assert created.labels["region"] == "eu-west-1" and created.labels["lag_seconds"] == "42"
    assert created.description.startswith("Replica payments-db-2 is 42s")
    assert closed.ends_at == utc(2024, 11, 22, 13, 15, 0, 456000)  # updatedAt is epoch ns


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ({"action": "Create"}, r"^alert: field required$"),
        ({"action": "Create", "alert": {"alias": "x"}}, r"^alert\.message: field required$"),
        ({"alert": {"message": "m"}}, r"^action: field required$"),
        ([], r"^body: must be a JSON object, got array$"),
    ],
)
def test_opsgenie_malformed_names_the_field(body: Any, pattern: str) -> None:
    with pytest.raises(PayloadError, match=pattern):
        parse_opsgenie(body)


def test_opsgenie_endpoint_opens_then_resolves_one_incident(app: App) -> None:
    first = app.client.post(
        "/alerts/opsgenie", content=(OWN / "opsgenie_create.json").read_bytes(), headers=AUTH
    )
    assert first.status_code == 202 and len(first.json()["incidents_created"]) == 1
    second = app.client.post(
        "/alerts/opsgenie", content=(OWN / "opsgenie_close.json").read_bytes(), headers=AUTH
    )
    assert (
        second.status_code == 202 and second.json()["incidents_resolved"] == first.json()["incidents_created"]
    )


# --- Evidently ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evidently_reports() -> dict[str, Any]:
    """Real reports from evidently 0.7: the current Report/Snapshot and the legacy Report."""
    with warnings.catch_warnings():
        # evidently 0.7 on pandas 3 emits pandas deprecation warnings from its own code, not ours
        warnings.simplefilter("ignore")
        return _make_reports()


def _make_reports() -> dict[str, Any]:
    import pandas as pd
    import pandas.core.dtypes.common as pd_common

    if not hasattr(pd_common, "infer_dtype_from_object"):
        # evidently 0.7.23 imports a helper that pandas 3 removed (used only by a legacy column-type test)
        pd_common.infer_dtype_from_object = lambda dtype: pd.api.types.pandas_dtype(dtype).type  # type: ignore[attr-defined]
    try:
        import numpy as np
        from evidently import Report
        from evidently.legacy.metric_preset import DataDriftPreset as LegacyDataDriftPreset
        from evidently.legacy.report import Report as LegacyReport
        from evidently.metrics import DriftedColumnsCount, ValueDrift
        from evidently.presets import DataDriftPreset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"evidently cannot be imported here: {exc}")
    rng = np.random.default_rng(11)
    ref = pd.DataFrame(
        {
            "amount": rng.normal(0, 1, 400),
            "age": rng.normal(40, 5, 400),
            "country": rng.choice(list("abc"), 400),
        }
    )
    drifted = pd.DataFrame(
        {
            "amount": rng.normal(3, 1, 400),
            "age": rng.normal(46, 5, 400),
            "country": rng.choice(list("abc"), 400),
        }
    )
    same = pd.DataFrame(
        {
            "amount": rng.normal(0, 1, 400),
            "age": rng.normal(40, 5, 400),
            "country": rng.choice(list("abc"), 400),
        }
    )
    legacy = LegacyReport(metrics=[LegacyDataDriftPreset()])
    legacy.run(reference_data=ref, current_data=drifted)
    return {
        "drift": Report([DataDriftPreset()]).run(drifted, ref).dict(),
        "clean": json.loads(Report([DataDriftPreset()]).run(same, ref).json()),
        "columns_only": Report([ValueDrift(column="amount"), ValueDrift(column="age")])
        .run(drifted, ref)
        .dict(),
        "count_only": Report([DriftedColumnsCount()]).run(drifted, ref).dict(),
        "legacy": json.loads(legacy.json()),
    }


QUERY = {"model": "fraud-model", "version": "7", "serving_service": "fraud-scoring"}


def test_evidently_drift_report_becomes_a_model_drift_alert(evidently_reports: dict[str, Any]) -> None:
    alert = only(parse_evidently(evidently_reports["drift"], QUERY))
    assert (
        alert.source == "evidently" and alert.kind is AlertKind.MODEL and alert.status is AlertStatus.FIRING
    )
    assert alert.model is not None and alert.model.name == "fraud-model" and alert.model.version == "7"
    assert alert.model.metric == "drifted_columns_share"
    assert alert.model.value == pytest.approx(2 / 3) and alert.model.threshold == 0.5
    assert (
        alert.annotations["drifted_columns"] == "age,amount"
        and alert.labels["serving_service"] == "fraud-scoring"
    )
    assert "amount: K-S p_value" in alert.description and "country" not in alert.description


def test_evidently_clean_report_resolves(evidently_reports: dict[str, Any]) -> None:
    drift = only(parse_evidently(evidently_reports["drift"], QUERY))
    clean = only(parse_evidently(evidently_reports["clean"], QUERY))
    # below the report's drift_share (a column may still drift by chance in a same-distribution sample)
    assert clean.status is AlertStatus.RESOLVED and clean.model is not None and clean.model.value < 0.5
    assert clean.fingerprint == drift.fingerprint  # same model + metric: the same alert, now resolved


def test_evidently_value_drift_only_and_count_only(evidently_reports: dict[str, Any]) -> None:
    columns = only(parse_evidently(evidently_reports["columns_only"], QUERY))
    assert columns.status is AlertStatus.FIRING and columns.annotations["drifted_columns"] == "age,amount"
    assert columns.model is not None and columns.model.value == 1.0
    count = only(parse_evidently(evidently_reports["count_only"], {"model": "m"}))
    assert (
        count.status is AlertStatus.FIRING
        and count.model is not None
        and count.model.value == pytest.approx(2 / 3)
    )


def test_evidently_legacy_data_drift_table(evidently_reports: dict[str, Any]) -> None:
    alert = only(parse_evidently(evidently_reports["legacy"], QUERY))
    assert alert.status is AlertStatus.FIRING and alert.model is not None
    assert alert.model.value == pytest.approx(2 / 3) and alert.annotations["drifted_columns"] == "age,amount"


def test_evidently_own_fixture_and_model_from_labels() -> None:
    body = {**own("evidently_snapshot_drift.json"), "labels": {"model": "churn", "service": "churn-api"}}
    alert = only(parse_evidently(body, {}))
    assert alert.model is not None and alert.model.name == "churn"
    assert alert.labels["serving_service"] == "churn-api"
    assert alert.annotations["drifted_columns"] == "amount,merchant_risk"


@pytest.mark.parametrize(
    ("body", "query", "pattern"),
    [
        ({"metrics": []}, {}, r"^model: required as a query parameter"),
        ({"metrics": "x"}, {"model": "m"}, r"^metrics: must be a list"),
        (
            {"metrics": [{"metric_name": "RowCount()", "value": 3}]},
            {"model": "m"},
            r"^metrics: no data-drift result",
        ),
        (
            {
                "metrics": [
                    {"config": {"type": "evidently:metric_v2:ValueDrift", "threshold": "x"}, "value": 0.1}
                ]
            },
            {"model": "m"},
            r"^metrics\[0\]\.config\.threshold: must be a finite number, got string$",
        ),
    ],
)
def test_evidently_malformed_names_the_field(body: Any, query: dict[str, str], pattern: str) -> None:
    with pytest.raises(PayloadError, match=pattern):
        parse_evidently(body, query)


def test_evidently_endpoint_takes_the_model_from_the_query(
    app: App, evidently_reports: dict[str, Any]
) -> None:
    body = json.dumps(evidently_reports["drift"])
    missing = app.client.post("/alerts/evidently", content=body, headers=AUTH)
    assert missing.status_code == 400 and "model" in missing.json()["error"]
    resp = app.client.post(
        "/alerts/evidently?model=fraud-model&version=7&serving_service=fraud-scoring",
        content=body,
        headers=AUTH,
    )
    assert resp.status_code == 202 and len(resp.json()["incidents_created"]) == 1
    with app.rt.sessions() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.model_name == "fraud-model"
        record = s.scalars(select(AlertRecord)).one()
        assert record.source == "evidently"


# --- generic with a field mapping ---------------------------------------------------------------
MAP = {
    "name": "$.rule.title",
    "service": "$.tags.service",
    "status": "$.state",
    "severity": "$.level",
    "labels": "$.tags",
    "summary": "$.message",
    "url": "$.link",
    "fingerprint": "$.rule.id",
}


def test_jsonpath_like_paths() -> None:
    assert compile_path("$.a['b c'][0].d") == ["a", "b c", 0, "d"]
    assert compile_path('$["x"][-1]') == ["x", -1]
    assert resolve({"a": {"b c": [{"d": 5}]}}, compile_path("$.a['b c'][0].d")) == 5
    with pytest.raises(ValueError, match="must start with"):
        compile_path("a.b")
    with pytest.raises(ValueError, match="cannot read"):
        compile_path("$.a..b")


def test_generic_field_map_reads_a_foreign_body() -> None:
    alert = only(parse_generic(FieldMap(MAP).apply(own("generic_mapped_foreign.json"))))
    assert alert.name == "Queue backlog growing" and alert.service == "billing-worker"
    assert alert.status is AlertStatus.FIRING and alert.severity is Severity.CRITICAL
    assert alert.labels == {"service": "billing-worker", "env": "prod"}
    assert alert.source_fingerprint == "rule-77" and alert.url == "https://monitor.example.internal/rules/77"
    resolved = only(parse_generic(FieldMap(MAP).apply({**own("generic_mapped_foreign.json"), "state": "OK"})))
    assert resolved.status is AlertStatus.RESOLVED and resolved.fingerprint == alert.fingerprint


def test_generic_field_map_batch_and_errors() -> None:
    fmap = FieldMap({"alerts": "$.items", "name": "$.t"})
    alerts = parse_generic(fmap.apply({"items": [{"t": "a"}, {"t": "b"}]}))
    assert [a.name for a in alerts] == ["a", "b"]
    with pytest.raises(PayloadError, match=r"^alerts\[1\]\.name: field required$"):
        parse_generic(fmap.apply({"items": [{"t": "a"}, {"x": "b"}]}))
    with pytest.raises(PayloadError, match="found no list"):
        fmap.apply({"items": {}})
    with pytest.raises(ValueError, match="unknown field"):
        FieldMap({"title": "$.x"})


def test_bad_generic_field_map_is_a_config_error(sqlite_url: str, fake_encoder: HashingEncoder) -> None:
    from bot.kernel.config import Settings
    from bot.kernel.errors import ConfigError
    from incident_bot.runtime import build_runtime

    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        slack_bot_token="xoxb-t",  # noqa: S106
        slack_signing_secret="s",
        generic_field_map={"name": "rule.title"},
    )  # noqa: S106
    with pytest.raises(ConfigError, match=r"GENERIC_FIELD_MAP: path 'rule.title' must start with '\$'"):
        build_runtime(settings, encoder=fake_encoder)


@pytest.fixture
def mapped_app(sqlite_url: str, fake_encoder: HashingEncoder) -> Iterator[App]:
    with (
        WebhookTarget(secret="h") as target,
        running_app(sqlite_url, fake_encoder, target, generic_field_map={**MAP, "alerts": "$.alerts"}) as a,
    ):
        yield a


def test_generic_endpoint_with_field_map_keeps_valid_items(mapped_app: App) -> None:
    good = own("generic_mapped_foreign.json")
    body = {"alerts": [good, {"state": "alerting"}]}
    resp = mapped_app.client.post("/alerts/generic", content=json.dumps(body), headers=AUTH)
    assert resp.status_code == 202, resp.text
    assert resp.json()["alerts"] == 1
    assert [(r["index"], r["error"]) for r in resp.json()["rejected"]] == [
        (1, "alerts[1].name: field required")
    ]
    with mapped_app.rt.sessions() as s:
        assert s.scalars(select(Incident)).one().service == "billing-worker"
        assert len(s.scalars(select(DeadLetter)).all()) == 1


# --- Alertmanager truncatedAlerts --------------------------------------------------------------
def test_alertmanager_truncated_alerts_is_carried_but_not_identity() -> None:
    from handlers.parsers.alertmanager import parse_alertmanager

    body = own("alertmanager_two_alerts.json")
    plain = parse_alertmanager(body)
    cut = parse_alertmanager({**body, "truncatedAlerts": 3})
    assert [a.truncated_alerts for a in plain] == [0, 0] and [a.truncated_alerts for a in cut] == [3, 3]
    assert [a.fingerprint for a in plain] == [a.fingerprint for a in cut]
    assert [a.content_hash for a in plain] == [a.content_hash for a in cut]
