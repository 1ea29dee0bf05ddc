"""Prometheus metrics of the bot itself, registered once in prometheus_client's default REGISTRY
(which ``/metrics`` serves; other modules, e.g. a KPI collector, register there too)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ALERTS_RECEIVED = Counter(
    "incident_bot_alerts_received", "Alerts received, by source and outcome", ["source", "outcome"]
)  # outcome: accepted|duplicate|rejected
INCIDENTS_OPENED = Counter("incident_bot_incidents_opened", "Incidents opened", ["source"])
SLACK_CALLS = Counter(
    "incident_bot_slack_calls", "Slack Web API calls, by method and outcome", ["method", "outcome"]
)  # outcome: ok|error|ratelimited
OUTBOX_DELIVERIES = Counter(
    "incident_bot_outbox_deliveries", "Outbox delivery attempts, by kind and outcome", ["kind", "outcome"]
)  # outcome: sent|retry|failed
SEARCH_SECONDS = Histogram(
    "incident_bot_search_seconds",
    "Similar-incident search latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ACTION_RUNS = Counter("incident_bot_action_runs", "Remediation action runs, by outcome", ["outcome"])
OUTBOX_DEPTH = Gauge("incident_bot_outbox_depth", "Chat messages waiting in the outbox (all replicas)")
