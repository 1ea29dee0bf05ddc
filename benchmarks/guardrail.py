"""Guardrail benchmark: which alerts get which buttons, with the example runbooks a team copies.

At least 100 alerts over at least 20 services, half *covered* (a runbook in ``examples/runbooks`` names the
alert and admits its service) and half not, with alert names from a public collection of Prometheus
alerting rules (samber/awesome-prometheus-alerts, ``<data>/prometheus_rules``; read in place). The uncovered
half are near misses: rules of the same technologies the runbooks are about (PostgreSQL, PgBouncer, Kafka,
Kubernetes, hosts, certificates, DNS), on the services the runbooks list, then on the others.

Each alert carries the labels its rule would give it: ``alertname``, ``service``, ``severity``,
``namespace`` and ``environment`` (relabelling every team does), plus every label the rule's description
reads (``{{ $labels.x }}``) or its PromQL keeps (``by (...)``, ``on (...)``), and, when the query does not
aggregate, the series' own labels (``instance``, ``job`` and the exporter's labels of the metric family,
``SERIES_LABELS``), valued after the service (``deployment`` ``<service>-api``, ``consumergroup``
``<service>-consumer``, ...). Nothing here reads the runbooks' templates.

Every alert goes through the real HTTP endpoint (``POST /alerts/alertmanager``, an Alertmanager v4 body) of a
runtime built by ``build_runtime`` (SQLite, the Slack stand-in); every "Request:" button on the posted message
is clicked with a signed Slack payload, and the request's stored parameters (what the prompt shows and the
executor would run) are read back. Reported:

- ``offered_where_no_runbook_names_the_alert``: uncovered alerts that got a button (goal 0);
- ``prompts_naming_another_service``: prompts whose parameters name one of the benchmark's services other
  than the incident's (goal 0);
- ``covered_alerts_that_lost_their_action``: covered alerts (runbook with actions) with no button, and every
  action withheld from a covered alert with its reason.

The same-run baseline is the rule before issue 16 (any of alert name, model, service or labels matching
offers every action of the best runbook, with the constant parameters the example runbooks had), applied to
the same alerts in-process. It leaves out the old text path (a runbook whose text scored >= 0.65 offered its
actions too), so its counts are a lower bound of what the old rule offered.

    python -m benchmarks.guardrail [--data DIR] [--alerts 100] [--encoder hashing|real]

Without the data folder it says so and uses ``FALLBACK_RULES`` (a short list of kube-prometheus / node
exporter alert names written here, not taken from the runbooks).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import REPO

RULES_FILE = Path("prometheus_rules") / "awesome-prometheus-alerts-rules.yml"
EXAMPLES = REPO / "examples" / "runbooks"
SERVICES = [
    "checkout", "payments", "inventory", "search", "notifications", "auth", "api-gateway", "kafka",
    "postgres-main", "reporting", "billing", "shipping", "catalog", "recommendations", "orders", "cart",
    "ledger", "identity", "mailer", "media", "analytics", "pricing", "reviews", "fulfillment",
]  # fmt: skip
NEAR = ("PostgreSQL", "PGBouncer", "Kafka", "Kubernetes", "Host and hardware", "Blackbox", "CoreDNS",
        "cert-manager", "SSL/TLS")  # fmt: skip
# Used only when the public collection is absent: alert names of kube-prometheus and node-exporter mixins,
# written from those projects (not from our runbooks), with the labels their rules carry.
FALLBACK_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("KubePodCrashLooping", "Kubernetes", ("namespace", "pod", "container")),
    ("KubePodNotReady", "Kubernetes", ("namespace", "pod")),
    ("KubeDeploymentReplicasMismatch", "Kubernetes", ("namespace", "deployment")),
    ("KubeDeploymentGenerationMismatch", "Kubernetes", ("namespace", "deployment")),
    ("KubeStatefulSetReplicasMismatch", "Kubernetes", ("namespace", "statefulset")),
    ("KubeJobFailed", "Kubernetes", ("namespace", "job_name")),
    ("KubeContainerWaiting", "Kubernetes", ("namespace", "pod", "container")),
    ("KubeHpaMaxedOut", "Kubernetes", ("namespace", "horizontalpodautoscaler")),
    ("KubePersistentVolumeFillingUp", "Kubernetes", ("namespace", "persistentvolumeclaim")),
    ("KubeCPUOvercommit", "Kubernetes", ()),
    ("NodeFilesystemSpaceFillingUp", "Host and hardware", ("instance", "mountpoint", "device")),
    ("NodeFilesystemAlmostOutOfFiles", "Host and hardware", ("instance", "mountpoint")),
    ("NodeNetworkReceiveErrs", "Host and hardware", ("instance", "device")),
    ("NodeClockNotSynchronising", "Host and hardware", ("instance",)),
    ("NodeHighNumberConntrackEntriesUsed", "Host and hardware", ("instance",)),
    ("KafkaConsumerLagHigh", "Kafka", ("consumergroup", "topic")),
    ("KafkaUnderReplicatedPartitions", "Kafka", ("topic",)),
    ("PostgresConnectionPoolExhausted", "PostgreSQL", ("database",)),
    ("PostgresReplicationLagHigh", "PostgreSQL", ("instance",)),
    ("CertificateExpiringSoon", "cert-manager", ("name", "exported_namespace")),
    ("CoreDNSErrorsHigh", "CoreDNS", ()),
    ("TargetDown", "Prometheus", ("job", "namespace")),
    ("Watchdog", "Prometheus", ()),
    ("AlertmanagerFailedToSendAlerts", "Prometheus", ("integration",)),
]
# The parameters the example runbooks had before issue 16 (the baseline runs them as they were).
OLD_PARAMS: dict[str, dict[str, Any]] = {
    "restart-pgbouncer": {"service": "checkout", "deployment": "pgbouncer"},
    "terminate-idle-transactions": {"database": "checkout", "min_idle_seconds": 300},
    "expand-volume": {"host": "inv-db-2", "mount": "/var/lib/postgresql", "grow_percent": 50},
    "trigger-materialization": {"mode": "incremental"},
    "scale-consumers": {
        "service": "notifications",
        "deployment": "notifications-email-consumer",
        "replicas": 12,
    },
    "rollback-model-alias": {"alias": "champion"},
    "rollback-deployment": {"service": "notifications", "deployment": "notifications-worker"},
    "renew-certificate": {"namespace": "auth", "certificate": "auth-internal"},
}


# The labels an exporter puts on the series of a metric family (kube-state-metrics, node/kafka/pgbouncer
# exporters, cert-manager), which a non-aggregating rule's alert keeps.
SERIES_LABELS = {
    "node_filesystem_": ("device", "fstype", "mountpoint"),
    "kube_pod_container_": ("namespace", "pod", "container"),
    "kube_pod_": ("namespace", "pod"),
    "kube_deployment_": ("namespace", "deployment"),
    "kube_job_": ("namespace", "job_name"),
    "kafka_consumergroup_": ("consumergroup", "topic", "partition"),
    "pgbouncer_pools_": ("database", "user"),
    "certmanager_certificate_": ("name", "exported_namespace"),
}
_AGGREGATES = re.compile(
    r"\b(sum|avg|min|max|count|topk|bottomk|quantile|stddev|stdvar|group|count_values)\s*(by|without)?\s*\("
)


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    labels: tuple[str, ...]


@dataclass
class Case:
    rule: Rule
    service: str
    covered_by: str | None  # the runbook that names the alert and admits the service
    labels: dict[str, str] = field(default_factory=dict)


def camel(name: str) -> str:
    """The collection's alert name: "PGBouncer max connections" -> "PgbouncerMaxConnections"."""
    return "".join(w[:1].upper() + w[1:].lower() for w in re.split(r"[^A-Za-z0-9]+", name) if w)


def load_rules(path: Path) -> list[Rule]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, Rule] = {}
    for group in data["groups"]:
        for svc in group.get("services") or []:
            for exporter in svc.get("exporters") or []:
                for r in exporter.get("rules") or []:
                    desc, query = str(r.get("description") or ""), str(r.get("query") or "")
                    labels = set(re.findall(r"\$labels\.([A-Za-z_]\w*)", desc))
                    for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", query):
                        labels |= {x.strip() for x in clause.split(",") if x.strip()}
                    if not _AGGREGATES.search(query):  # the alert keeps the series' labels
                        labels |= {"instance", "job"}
                        for prefix, names in SERIES_LABELS.items():
                            if prefix in query:
                                labels |= set(names)
                    name = camel(str(r["name"]))
                    out.setdefault(name, Rule(name, str(svc["name"]), tuple(sorted(labels - {"le"}))))
    return list(out.values())


def label_value(label: str, service: str) -> str:
    special = {
        "namespace": service,
        "exported_namespace": service,
        "instance": f"{service}-0:9100",
        "pod": f"{service}-7d9f6c-x2k4q",
        "container": service,
        "deployment": f"{service}-api",
        "statefulset": f"{service}-db",
        "job_name": f"{service}-nightly",
        "consumergroup": f"{service}-consumer",
        "topic": f"{service}.events",
        "database": service,
        "datname": service,
        "name": f"{service}-tls",
        "mountpoint": "/var/lib/data",
        "device": "nvme0n1",
    }
    return special.get(label, f"{service}-{label}")


def _runbooks() -> list[Any]:
    from retrieval.runbooks import load_runbooks

    runbooks, errors = load_runbooks(EXAMPLES)
    if errors:
        raise SystemExit(f"example runbooks do not load: {errors}")
    return runbooks


def covering(runbooks: list[Any], alert: str, service: str) -> str | None:
    for rb in runbooks:
        names = {a.lower() for a in rb.alert_names}
        if alert.lower() in names and (not rb.services or service in rb.services) and not rb.labels:
            return str(rb.id)
    return None


def make_cases(rules: list[Rule], n: int) -> list[Case]:
    """n/2 covered and n/2 uncovered alerts, deterministic, over at least 20 services."""
    runbooks = _runbooks()
    named = {a.lower(): rb for rb in runbooks for a in rb.alert_names}
    covered_rules = [r for r in rules if r.name.lower() in named and named[r.name.lower()].actions]
    if not covered_rules:
        raise SystemExit("no alert of the collection is named by a runbook with actions")
    pairs = [
        (r, s) for r in covered_rules for s in (named[r.name.lower()].services or SERVICES) if s in SERVICES
    ]
    cases = [Case(r, s, covering(runbooks, r.name, s)) for r, s in pairs]
    cases = [c for c in cases if c.covered_by]
    covered = [cases[i % len(cases)] for i in range(n // 2)]
    runbook_services = [s for rb in runbooks for s in rb.services if s in SERVICES]
    near = sorted(
        (r for r in rules if r.name.lower() not in named and r.family in NEAR), key=lambda r: r.name
    )
    far = sorted(
        (r for r in rules if r.name.lower() not in named and r.family not in NEAR), key=lambda r: r.name
    )
    pool = near + far
    services = list(dict.fromkeys(runbook_services + SERVICES))
    uncovered = [Case(pool[i % len(pool)], services[i % len(services)], None) for i in range(n - n // 2)]
    out = []
    for i, c in enumerate(covered + uncovered):
        labels = {"alertname": c.rule.name, "service": c.service, "severity": "warning"}
        labels |= {"namespace": c.service, "environment": "production"}
        labels |= {k: label_value(k, c.service) for k in c.rule.labels if k not in labels}
        out.append(Case(c.rule, c.service, c.covered_by, labels | {"bench_case": str(i)}))
    return out


# ---- the old rule (before issue 16), in-process ---------------------------------------------------------
def old_offer(case: Case, runbooks: list[Any]) -> list[dict[str, Any]]:
    """Any of alert name, model, service or labels matching (3/3/2/1 points) offered every webhook action of the
    best runbook, with the runbooks' constant parameters."""
    best, best_score = None, 0.0
    for rb in runbooks:
        score = 3.0 if case.rule.name.lower() in {a.lower() for a in rb.alert_names} else 0.0
        score += 2.0 if case.service in rb.services else 0.0
        if rb.labels and all(case.labels.get(k) == v for k, v in rb.labels.items()):
            score += 1.0
        if score > best_score:
            best, best_score = rb, score
    if best is None:
        return []
    return [OLD_PARAMS.get(str(a["id"]), {}) for a in best.actions if a.get("type", "webhook") == "webhook"]


def names_other_service(params: dict[str, Any], service: str) -> str | None:
    """The longest benchmark service a parameter value names as a whole word, when it is not ``service``."""
    for value in params.values():
        if not isinstance(value, str):
            continue
        hits = [
            s
            for s in SERVICES
            if value == s or re.search(rf"(?:^|[-_.:/]){re.escape(s)}(?:[-_.:/]|$)", value)
        ]
        if hits:
            top = max(hits, key=len)
            if top != service:
                return f"{value} names {top}"
    return None


# ---- through HTTP ---------------------------------------------------------------------------------------
class _Inline(Executor):
    """Bolt's lazy listeners on the calling thread, so a click's effects are there when the call returns."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the Future like a real executor would
            fut.set_exception(exc)
        return fut


@contextmanager
def _app(db_url: str, encoder: Any) -> Iterator[tuple[Any, Any, Any]]:
    from fastapi.testclient import TestClient

    from bot.kernel.config import Settings
    from incident_bot.demo.slack_stub import SlackStub
    from incident_bot.runtime import build_runtime

    with SlackStub() as stub:
        settings = Settings(
            _env_file=None,
            database_url=db_url,
            slack_bot_token="xoxb-bench",
            slack_signing_secret="bench-signing-secret",  # noqa: S106
            slack_api_url=stub.base_url,
            incident_channel="#incidents",
            alert_webhook_token="bench-token",  # noqa: S106
            runbooks_dir=EXAMPLES,
            action_base_url="http://127.0.0.1:9",  # never called: nothing is approved here
            executor_hmac_secret="bench-hmac",  # noqa: S106
        )
        rt = build_runtime(settings, encoder=encoder, listener_executor=_Inline())
        try:
            with TestClient(rt.http) as client:
                yield rt, client, stub
        finally:
            rt.close()


def _am_body(case: Case, status: str) -> bytes:
    alert = {
        "status": status,
        "labels": case.labels,
        "annotations": {"summary": f"{case.rule.name} on {case.service}"},
        "startsAt": "2026-12-06T03:00:00Z",
        "endsAt": "2026-12-06T03:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": f"bench{int(case.labels['bench_case']):011x}",
    }
    return json.dumps(
        {
            "version": "4",
            "groupKey": f"bench:{case.labels['bench_case']}",
            "status": status,
            "receiver": "incident-bot",
            "groupLabels": {"alertname": case.rule.name},
            "commonLabels": case.labels,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example.com",
            "alerts": [alert],
        }
    ).encode()


def run(cases: list[Case], *, db_url: str, encoder: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from bot.kernel.models import RemediationRequest
    from incident_bot.demo.slack_stub import block_action_body, signed_headers

    offered_unnamed: list[str] = []
    naming_other: list[str] = []
    covered_lost: list[str] = []
    withheld: Counter[str] = Counter()
    prompts = buttons_total = 0
    t0 = time.perf_counter()
    with _app(db_url, encoder) as (rt, client, stub):
        auth = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
        for case in cases:
            top_level = len([c for c in stub.of("chat.postMessage") if not c.params.get("thread_ts")])
            resp = client.post("/alerts/alertmanager", content=_am_body(case, "firing"), headers=auth)
            if resp.status_code != 202:
                raise SystemExit(f"{case.rule.name}: HTTP {resp.status_code} {resp.text}")
            rt.service.outbox.drain()
            posts = [c for c in stub.of("chat.postMessage") if not c.params.get("thread_ts")]
            if len(posts) != top_level + 1:
                raise SystemExit(f"{case.rule.name} on {case.service}: no new incident message")
            message = posts[-1]
            blocks = message.params["blocks"]
            labels = [
                el
                for b in blocks
                if b.get("type") == "actions"
                for el in b["elements"]
                if el["text"]["text"].startswith("Request:")
            ]
            buttons_total += len(labels)
            reasons = [
                line.split("not offered: ", 1)[1]
                for b in blocks
                if b.get("type") == "context"
                for el in b.get("elements", [])
                for line in str(el.get("text", "")).splitlines()
                if "not offered: " in line
            ]
            where = f"{case.rule.name}@{case.service}"
            if case.covered_by is None and labels:
                offered_unnamed.append(where)
            if case.covered_by is not None:
                withheld.update(re.sub(r"\(`\w+`\)", "", r).strip() for r in reasons)
                if not labels:
                    covered_lost.append(where)
            for button in labels:
                body = block_action_body(
                    user="U0ONCALL1", button=button, channel="C0INCIDENTS", message_ts=message.response["ts"]
                )
                client.post(
                    "/slack/events", content=body, headers=signed_headers("bench-signing-secret", body)
                )
                rt.service.outbox.drain()
            with rt.sessions() as s:
                rows = list(
                    s.scalars(
                        select(RemediationRequest).where(RemediationRequest.requested_by == "U0ONCALL1")
                    )
                )
            for row in rows[prompts:]:
                params = {k: v for k, v in (row.action.get("params") or {}).items() if k != "url"}
                why = names_other_service(params, case.service)
                if why:
                    naming_other.append(f"{where}: {why}")
            prompts = len(rows)
            client.post("/alerts/alertmanager", content=_am_body(case, "resolved"), headers=auth)
            rt.service.outbox.drain()
    seconds = time.perf_counter() - t0

    runbooks = _runbooks()
    base_unnamed = base_other = base_prompts = 0
    for case in cases:
        old = old_offer(case, runbooks)
        base_prompts += len(old)
        if case.covered_by is None and old:
            base_unnamed += 1
        base_other += sum(1 for p in old if names_other_service(p, case.service))
    acting = {rb.id for rb in runbooks if rb.actions}
    covered_acting = [c for c in cases if c.covered_by in acting]
    return {
        "alerts": len(cases),
        "services": len({c.service for c in cases}),
        "covered": sum(c.covered_by is not None for c in cases),
        "uncovered": sum(c.covered_by is None for c in cases),
        "distinct_alert_names": len({c.rule.name for c in cases}),
        "offered_where_no_runbook_names_the_alert": len(offered_unnamed),
        "prompts": prompts,
        "prompts_naming_another_service": len(naming_other),
        "covered_alerts_with_actions": len(covered_acting),
        "covered_alerts_that_lost_their_action": len(covered_lost),
        "buttons": buttons_total,
        "withheld_from_covered_alerts_by_reason": dict(withheld.most_common()),
        "examples": {
            "offered_unnamed": offered_unnamed[:5],
            "naming_another_service": naming_other[:5],
            "covered_lost": covered_lost[:8],
        },
        "baseline_old_rule": {
            "offered_where_no_runbook_names_the_alert": base_unnamed,
            "prompts": base_prompts,
            "prompts_naming_another_service": base_other,
            "note": "rule matches only (the old text path is not replayed): a lower bound",
        },
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--encoder", choices=("hashing", "real"), default="hashing")
    args = ap.parse_args()
    import os

    data = Path(args.data or os.environ.get("INCIDENT_BOT_DATA") or REPO.parent / "shared" / "data")
    if (data / RULES_FILE).is_file():
        rules, source = load_rules(data / RULES_FILE), f"awesome-prometheus-alerts ({data / RULES_FILE})"
    else:
        print(
            f"public rule collection not found at {data / RULES_FILE}: using FALLBACK_RULES", file=sys.stderr
        )
        rules, source = [Rule(*r) for r in FALLBACK_RULES], "FALLBACK_RULES (kube-prometheus mixin names)"
    if args.encoder == "real":
        from retrieval.encoder import SentenceTransformerEncoder

        encoder: Any = SentenceTransformerEncoder()
    else:
        from retrieval.encoder import HashingEncoder

        encoder = HashingEncoder()
    cases = make_cases(rules, args.alerts)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(cases, db_url=f"sqlite:///{Path(tmp) / 'guardrail.db'}", encoder=encoder)
    print(json.dumps({"rules": source, "encoder": args.encoder, **result}, indent=2))


if __name__ == "__main__":
    main()
