"""Wire-format parsers: real third-party examples (read in place, skipped when absent) and
the project's own fixtures in tests/fixtures/payloads/."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.intake.alerts import Alert, AlertKind, AlertStatus, ModelInfo, Severity
from handlers.parsers import SOURCES
from handlers.parsers._common import MAX_ENTRIES, MAX_TEXT
from handlers.parsers.alertmanager import parse_alertmanager
from handlers.parsers.datadog import parse_datadog
from handlers.parsers.errors import PayloadError
from handlers.parsers.evidently import parse_evidently
from handlers.parsers.generic import parse_generic
from handlers.parsers.grafana import parse_grafana
from handlers.parsers.model import parse_model
from handlers.parsers.opsgenie import parse_opsgenie
from handlers.parsers.pagerduty import parse_pagerduty

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "payloads"
OWN = Path(__file__).resolve().parent / "fixtures" / "payloads"

AM_FIRING = "alertmanager_v4_firing__prometheus-msteams_pkg-card-testdata.json"
AM_RESOLVED = "alertmanager_v4_resolved_k8s__liamkelly15-maker_pythonwebhook_testcurl7.json"
GRAFANA_DOCS = "grafana_unified_webhook_firing2__grafana-docs_webhook-notifier.json"
GRAFANA_12 = (
    "grafana12_test_contact_point__keephq-keep_tests-providers-grafana_provider-test_grafana_v12_webhook.json"
)
DD_TEMPLATE = "datadog_webhook_DEFAULT_TEMPLATE_unrendered__docs.datadoghq.com_integrations_webhooks.json"
DD_DEFAULT = (
    "datadog_webhook_default_rendered__relay-integrations_relay-datadog_triggers-event-fired_README.json"
)
DD_CUSTOM = "datadog_webhook_custom_rendered_query_alert.json"
PD_PRIORITY = "pagerduty_v3_incident.priority_updated__PagerDuty-developer-docs.json"
OPSGENIE = "opsgenie_outgoing_webhook_Create__docs.opsgenie.com_marid-alert-action-data.json"


def shared(name: str) -> Any:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared example payload not available: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def own(name: str) -> Any:
    return json.loads((OWN / name).read_text(encoding="utf-8"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def only(alerts: list[Alert]) -> Alert:
    assert len(alerts) == 1
    return alerts[0]


# --- Alertmanager ---------------------------------------------------------------------------
def test_alertmanager_real_firing_without_per_alert_status_or_fingerprint() -> None:
    alert = only(parse_alertmanager(shared(AM_FIRING)))
    assert alert.source == "alertmanager"
    assert alert.name == "high_memory_load"
    assert alert.status is AlertStatus.FIRING  # from the group: old Alertmanager, no per-alert status
    assert alert.severity is Severity.WARNING
    assert alert.service == "docker_nodes"  # job: no service/app label
    assert alert.summary == "Server High Memory usage"
    assert alert.description == "10.80.40.11 reported high memory usage with 23.28%."
    assert alert.labels["instance"] == "instance-with-hyphen_and_underscore"
    # nanoseconds truncated to microseconds, -05:00 normalised to UTC
    assert alert.starts_at == utc(2018, 3, 7, 11, 33, 21, 873077)
    assert alert.starts_at.tzinfo is not None
    assert alert.ends_at is None  # Go zero time
    assert alert.group_key == '{}:{alertname="high_memory_load"}'
    assert alert.source_fingerprint is None
    assert alert.url is None
    assert alert.kind is AlertKind.INFRA


def test_alertmanager_real_resolved() -> None:
    alert = only(parse_alertmanager(shared(AM_RESOLVED)))
    assert alert.name == "Deployment"
    assert alert.status is AlertStatus.RESOLVED
    assert alert.severity is Severity.WARNING  # "Warning"
    assert alert.service == "eric-pm-kube-state-metrics"  # job wins over namespace
    assert alert.summary == "Kubernetes Deployment Replicas Mismatch"
    assert alert.starts_at == utc(2022, 7, 29, 11, 13, 27, 300000)
    assert alert.ends_at == utc(2022, 7, 29, 11, 17, 27, 300000)
    assert alert.source_fingerprint == "fbab788ec4c1018b"
    assert alert.group_key == '{}:{alertname="Deployment"}'
    assert alert.url is not None and alert.url.startswith("/metrics/viewer/graph?g0.expr=")


def test_alertmanager_own_two_alerts() -> None:
    first, second = parse_alertmanager(own("alertmanager_two_alerts.json"))
    assert (first.name, second.name) == ("CheckoutErrorRateHigh", "CheckoutLatencyHigh")
    assert first.status is AlertStatus.FIRING
    assert second.status is AlertStatus.RESOLVED  # per-alert status wins over the group's
    assert (first.severity, second.severity) == (Severity.CRITICAL, Severity.CRITICAL)
    assert first.service == "checkout-api"  # service > app > job > namespace
    assert second.service == "checkout"  # app > job
    assert first.starts_at == utc(2024, 11, 5, 12, 2, 11, 123456)
    assert second.ends_at == utc(2024, 11, 5, 12, 20, 30, 500000)
    assert second.summary == "Checkout is degraded"  # commonAnnotations fallback
    assert second.description == "p99 latency back under 800ms"  # "message" annotation
    assert first.source_fingerprint == "a1b2c3d4e5f60718"
    assert first.group_key == second.group_key
    assert first.url == "https://prometheus.example.internal/graph?g0.expr=checkout_5xx_ratio"
    assert first.fingerprint != second.fingerprint


# --- Grafana ---------------------------------------------------------------------------------
def test_grafana_real_docs_example() -> None:
    first, second = parse_grafana(shared(GRAFANA_DOCS))
    assert (first.source, first.name, second.name) == ("grafana", "High memory usage", "High CPU usage")
    assert first.status is second.status is AlertStatus.FIRING
    assert first.severity is Severity.WARNING
    assert first.service is None
    assert first.summary == "This alert was triggered for zone us-1"
    assert first.description == "The system has high memory usage"
    assert first.starts_at == utc(2021, 10, 12, 7, 51, 3, 157076)
    assert second.starts_at == utc(2021, 10, 12, 7, 56, 3, 157076)
    assert first.ends_at is None
    assert (first.source_fingerprint, second.source_fingerprint) == ("c6eadffa33fcdf37", "bc97ff14869b13e3")
    assert first.group_key == "{}:{}"
    assert first.url == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert first.annotations["silence_url"].startswith("https://play.grafana.org/alerting/silence/new")
    assert first.annotations["values"] == "B=44.2394, C=1"
    assert "dashboard_url" not in first.annotations  # empty in the payload
    assert first.fingerprint != second.fingerprint


def test_grafana_real_v12_test_notification() -> None:
    alert = only(parse_grafana(shared(GRAFANA_12)))
    assert alert.name == "TestAlert"
    assert alert.summary == "TEST"
    assert alert.starts_at == utc(2026, 5, 5, 13, 4, 57, 622813)  # 8 fraction digits
    assert alert.source_fingerprint == "c4edaaf9f9f839b0"
    assert alert.group_key == "webhook-c4edaaf9f9f839b0-1777986297"
    assert alert.url == "https://grafana.example.com/?orgId=1"  # relative, joined to externalURL
    assert alert.annotations["values"] == "[ var='B' value=22 ]"
    assert alert.annotations["panel_url"] == "https://grafana.example.com/d/dashboard_uid?viewPanel=1"


# --- Datadog ---------------------------------------------------------------------------------
def test_datadog_real_custom_query_alert() -> None:
    alert = only(parse_datadog(shared(DD_CUSTOM)))
    assert alert.source == "datadog"
    assert alert.name == "High tracking"  # "[Triggered] " stripped
    assert alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.CRITICAL  # alert_priority P1
    assert alert.starts_at == utc(2025, 10, 1, 18, 37, 4)
    assert alert.source_fingerprint == "06ade3da0286048d242ea8e46f521c93"  # aggregate
    assert alert.group_key == "06ade3da0286048d242ea8e46f521c93"
    assert alert.description.startswith("We get high datadog.event.tracking")
    assert "%%%" not in alert.description


def test_datadog_real_default_template_rendered() -> None:
    alert = only(parse_datadog(shared(DD_DEFAULT)))
    assert alert.name == "[TEST] Host Cluster Alert"
    assert alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.HIGH  # Triggered (alert threshold), no priority
    assert alert.starts_at == utc(2020, 6, 3, 20, 43, 5)
    assert alert.source_fingerprint is None
    assert alert.annotations["event_type"] == "service_check"
    assert alert.annotations["org"] == "Puppet"


def test_datadog_real_unrendered_template_is_rejected() -> None:
    with pytest.raises(PayloadError, match=r"^title: unrendered Datadog template variable '\$EVENT_TITLE'"):
        parse_datadog(shared(DD_TEMPLATE))


def test_datadog_own_custom_recovered() -> None:
    alert = only(parse_datadog(own("datadog_custom_recovered.json")))
    assert alert.name == "Checkout p95 latency"
    assert alert.status is AlertStatus.RESOLVED
    assert alert.severity is Severity.HIGH  # P2
    assert alert.service == "checkout"
    assert alert.labels == {
        "env": "prod",
        "service": "checkout",
        "team": "payments",
        "canary": "",
        "host": "web-3",
    }
    assert alert.source_fingerprint == "98765432:host:web-3"
    assert alert.group_key == "4f2b9d0c7e1a"
    assert alert.ends_at == utc(2024, 11, 5, 14, 0, 0) and alert.starts_at is None
    assert alert.url == "https://app.datadoghq.com/event/event?id=7012345678901234567"
    assert alert.description == "Latency recovered on web-3."


# --- PagerDuty -------------------------------------------------------------------------------
def test_pagerduty_real_priority_updated() -> None:
    alert = only(parse_pagerduty(shared(PD_PRIORITY)))
    assert alert.source == "pagerduty"
    assert alert.name == alert.summary == "A little bump in the road"
    assert alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.CRITICAL  # P1
    assert alert.service == "API Service"
    assert alert.source_fingerprint == "PGR0VU2"
    assert alert.url == "https://acme.pagerduty.com/incidents/PGR0VU2"
    assert alert.starts_at == utc(2020, 4, 9, 15, 16, 27)
    assert alert.ends_at is None
    assert alert.annotations["event_type"] == "incident.priority_updated"
    assert alert.labels["team"] == "Engineering"


def test_pagerduty_own_resolved_and_ping() -> None:
    alert = only(parse_pagerduty(own("pagerduty_resolved.json")))
    assert alert.status is AlertStatus.RESOLVED
    assert alert.severity is Severity.WARNING  # no priority, urgency low
    assert alert.source_fingerprint == "PINC123"
    assert alert.ends_at == utc(2024, 3, 2, 10, 45, 0, 250000)
    assert alert.annotations["incident_number"] == "481"
    assert parse_pagerduty(own("pagerduty_ping.json")) == []


# --- Generic ---------------------------------------------------------------------------------
def test_generic_single_object() -> None:
    alert = only(parse_generic(own("generic_single.json")))
    assert (alert.source, alert.name, alert.status) == (
        "generic",
        "Nightly backup failed",
        AlertStatus.FIRING,
    )
    assert alert.severity is Severity.HIGH  # sev2
    assert alert.service == "billing-db"
    assert alert.labels == {"env": "prod", "host": "db-2", "attempt": "3", "retried": "true"}
    assert alert.source_fingerprint == "backup-billing-db"
    assert alert.starts_at == utc(2024, 6, 1, 2, 15)
    assert alert.kind is AlertKind.INFRA


def test_generic_batch_with_change_event() -> None:
    disk, deploy = parse_generic(own("generic_batch.json"))
    assert disk.status is AlertStatus.FIRING and disk.kind is AlertKind.INFRA
    assert disk.starts_at == utc(2024, 6, 1)  # epoch seconds
    assert disk.source_fingerprint is None
    assert (deploy.name, deploy.kind, deploy.severity) == ("Deploy", AlertKind.CHANGE, Severity.INFO)
    assert deploy.labels["version"] == "2.14.0"
    assert deploy.group_key == "deploys/search"


# --- Model -----------------------------------------------------------------------------------
def test_model_single() -> None:
    alert = only(parse_model(own("model_drift.json")))
    assert alert.source == "model" and alert.kind is AlertKind.MODEL
    assert alert.name == "psi_drift threshold breached"
    assert alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.HIGH  # default
    assert (
        alert.service is None and alert.model is not None and alert.model.name == "churn-classifier"
    )  # no serving service given
    assert alert.summary == "churn-classifier v3.1.0: psi_drift 0.31 over threshold 0.2"
    assert alert.model == ModelInfo(
        name="churn-classifier",
        version="3.1.0",
        metric="psi_drift",
        value=0.31,
        threshold=0.2,
        owner="ml-retention",
    )
    assert alert.starts_at == utc(2024, 9, 10, 8)


def test_model_batch() -> None:
    fraud, eta = parse_model(own("model_batch.json"))
    assert fraud.name == "Fraud model AUC degraded"
    assert fraud.summary == "fraud-scorer v12: auc 0.71 under threshold 0.8"
    assert fraud.severity is Severity.CRITICAL
    assert fraud.model is not None and fraud.model.version == "12"
    assert eta.status is AlertStatus.RESOLVED
    assert eta.summary == "eta-regressor: null_rate 12 over threshold 5"
    assert eta.model is not None and eta.model.value == 12.0


# --- Identity and change ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parser", "fixture"),
    [
        (parse_alertmanager, "alertmanager_two_alerts.json"),
        (parse_generic, "generic_batch.json"),
        (parse_model, "model_batch.json"),
    ],
)
def test_fingerprint_stable_on_repeat_and_distinct_across_alerts(parser: Any, fixture: str) -> None:
    body = own(fixture)
    once, again = parser(body), parser(copy.deepcopy(body))
    assert [a.fingerprint for a in once] == [a.fingerprint for a in again]
    assert [a.content_hash for a in once] == [a.content_hash for a in again]
    assert len({a.fingerprint for a in once}) == len(once) == 2


def test_fingerprint_from_labels_ignores_status_but_content_hash_does_not() -> None:
    firing = shared(AM_FIRING)
    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    before, after = only(parse_alertmanager(firing)), only(parse_alertmanager(resolved))
    assert before.source_fingerprint is None
    assert before.fingerprint == after.fingerprint
    assert before.content_hash != after.content_hash


@pytest.mark.parametrize(
    ("parser", "fixture"), [(parse_generic, "generic_single.json"), (parse_model, "model_drift.json")]
)
def test_content_hash_changes_with_status(parser: Any, fixture: str) -> None:
    body = own(fixture)
    resolved = {**body, "status": "resolved"}
    before, after = only(parser(body)), only(parser(resolved))
    assert before.fingerprint == after.fingerprint
    assert before.content_hash != after.content_hash


def test_model_fingerprint_ignores_value_but_content_hash_sees_it() -> None:
    body = own("model_drift.json")
    before, after = only(parse_model(body)), only(parse_model({**body, "value": 0.45}))
    assert before.fingerprint == after.fingerprint
    assert before.content_hash != after.content_hash


# --- Malformed input -------------------------------------------------------------------------
def _am(mutate: Any) -> Any:
    body = own("alertmanager_two_alerts.json")
    mutate(body)
    return body


MALFORMED: list[tuple[str, Any, Any, str]] = [
    (
        "am missing alertname",
        parse_alertmanager,
        _am(lambda b: b["alerts"][1]["labels"].pop("alertname")),
        r"^alerts\[1\]\.labels\.alertname: field required$",
    ),
    (
        "am missing labels",
        parse_alertmanager,
        _am(lambda b: b["alerts"][1].pop("labels")),
        r"^alerts\[1\]\.labels: field required$",
    ),
    (
        "am bogus group status",
        parse_alertmanager,
        _am(lambda b: b.update(status="bogus")),
        r"^status: must be 'firing' or 'resolved', got 'bogus'$",
    ),
    (
        "am bogus alert status",
        parse_alertmanager,
        _am(lambda b: b["alerts"][0].update(status="bogus")),
        r"^alerts\[0\]\.status: must be 'firing' or 'resolved'",
    ),
    (
        "am alerts not a list",
        parse_alertmanager,
        _am(lambda b: b.update(alerts={"0": {}})),
        r"^alerts: must be a list, got object$",
    ),
    (
        "am alerts empty",
        parse_alertmanager,
        _am(lambda b: b.update(alerts=[])),
        r"^alerts: must not be empty$",
    ),
    (
        "am label not a string",
        parse_alertmanager,
        _am(lambda b: b["alerts"][0]["labels"].update(port=8080)),
        r"^alerts\[0\]\.labels\.port: must be a string, got number$",
    ),
    (
        "am bad timestamp",
        parse_alertmanager,
        _am(lambda b: b["alerts"][0].update(startsAt="yesterday")),
        r"^alerts\[0\]\.startsAt: must be an RFC 3339 timestamp",
    ),
    ("am body a string", parse_alertmanager, "firing", r"^body: must be a JSON object, got string$"),
    ("am body a list", parse_alertmanager, [], r"^body: must be a JSON object, got array$"),
    (
        "grafana missing alertname",
        parse_grafana,
        _am(lambda b: b["alerts"][0]["labels"].pop("alertname")),
        r"^alerts\[0\]\.labels\.alertname: field required$",
    ),
    ("generic missing name", parse_generic, {"status": "firing"}, r"^name: field required$"),
    ("generic empty name", parse_generic, {"name": ""}, r"^name: must not be empty$"),
    (
        "generic bogus status",
        parse_generic,
        {"name": "x", "status": "bogus"},
        r"^status: must be 'firing' or 'resolved', got 'bogus'$",
    ),
    (
        "generic bogus kind",
        parse_generic,
        {"name": "x", "kind": "model"},
        r"^kind: must be 'infra' or 'change', got 'model'$",
    ),
    ("generic alerts not a list", parse_generic, {"alerts": "x"}, r"^alerts: must be a list, got string$"),
    (
        "generic batch item",
        parse_generic,
        {"alerts": [{"name": "ok"}, {"name": "x", "status": "bogus"}]},
        r"^alerts\[1\]\.status: must be 'firing' or 'resolved'",
    ),
    (
        "generic labels not an object",
        parse_generic,
        {"name": "x", "labels": ["a"]},
        r"^labels: must be an object, got array$",
    ),
    ("generic body a string", parse_generic, "oops", r"^body: must be a JSON object, got string$"),
    (
        "model value not a number",
        parse_model,
        {**own("model_drift.json"), "value": "high"},
        r"^value: must be a number, got string$",
    ),
    (
        "model value numeric string",
        parse_model,
        {**own("model_drift.json"), "value": "0.3"},
        r"^value: must be a number, got string$",
    ),
    (
        "model value boolean",
        parse_model,
        {**own("model_drift.json"), "value": True},
        r"^value: must be a number, got boolean$",
    ),
    (
        "model missing threshold and metric",
        parse_model,
        {"model": "m", "value": 1},
        r"^metric: field required; threshold: field required$",
    ),
    (
        "model batch item",
        parse_model,
        {"alerts": [{"model": "m", "metric": "x", "value": 1, "threshold": None}]},
        r"^alerts\[0\]\.threshold: must be a number, got null$",
    ),
    ("datadog no title", parse_datadog, {"id": "1", "body": "x"}, r"^title: field required"),
    ("datadog body a list", parse_datadog, [{"title": "x"}], r"^body: must be a JSON object, got array$"),
    ("pagerduty no event", parse_pagerduty, {"messages": []}, r"^event: field required$"),
    (
        "pagerduty incident without title",
        parse_pagerduty,
        {"event": {"event_type": "incident.triggered", "data": {"id": "P1", "type": "incident"}}},
        r"^event\.data\.title: field required$",
    ),
    (
        "opsgenie body to alertmanager",
        parse_alertmanager,
        None,
        r"^status: field required; alerts: field required$",
    ),
]


@pytest.mark.parametrize(
    ("parser", "body", "pattern"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_payload_names_the_field(parser: Any, body: Any, pattern: str) -> None:
    if body is None:
        body = shared(OPSGENIE)
    with pytest.raises(PayloadError, match=pattern) as info:
        parser(body)
    assert isinstance(info.value, ValueError)
    assert info.value.problems


def test_batch_errors_are_reported_for_every_item() -> None:
    with pytest.raises(PayloadError) as info:
        parse_generic({"alerts": ["x", {"name": "ok"}, {"name": "y", "status": "no"}]})
    assert info.value.problems == (
        "alerts[0]: must be an object, got string",
        "alerts[2].status: must be 'firing' or 'resolved', got 'no'",
    )


def test_error_list_is_bounded() -> None:
    body = {"alerts": [{"status": "bogus"} for _ in range(10)]}
    with pytest.raises(PayloadError) as info:
        parse_alertmanager({**body, "status": "firing"})
    assert len(info.value.problems) == 5
    assert str(info.value).endswith("(and 15 more problems)")


# --- Bounds and registry ---------------------------------------------------------------------
def test_strings_and_labels_are_capped_but_kept_verbatim() -> None:
    labels = {f"k{i:03d}": f"v{i}" for i in range(200)}
    labels.update(alertname="Big", severity="critical", service="svc")
    body = _am(
        lambda b: b.update(alerts=[{"labels": labels, "annotations": {"summary": "<!here> " + "x" * 10_000}}])
    )
    alert = only(parse_alertmanager(body))
    assert len(alert.labels) == MAX_ENTRIES
    assert alert.labels["severity"] == "critical" and alert.service == "svc"
    assert alert.severity is Severity.CRITICAL
    assert len(alert.summary) == MAX_TEXT and alert.summary.startswith("<!here> xxx")


def test_registry_maps_every_format() -> None:
    assert {s.name: s.parse for s in SOURCES if not s.reads_query} == {
        "alertmanager": parse_alertmanager,
        "generic": parse_generic,
        "model": parse_model,
        "grafana": parse_grafana,
        "datadog": parse_datadog,
        "pagerduty": parse_pagerduty,
        "opsgenie": parse_opsgenie,
    }
    assert {s.name: s.parse for s in SOURCES if s.reads_query} == {"evidently": parse_evidently}
    assert issubclass(PayloadError, ValueError)
