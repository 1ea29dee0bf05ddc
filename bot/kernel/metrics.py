"""Prometheus metrics of the bot itself, registered once in prometheus_client's default REGISTRY
(which ``/metrics`` serves; other modules, e.g. a KPI collector, register there too).

Every label has a bounded set of values (`promtool check metrics` runs on real output in the tests):
sources come from the parser registry (an unknown one is ``unknown``), reasons and outcomes from the
lists beside each metric, Slack methods and outbox kinds from the code."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ALERTS_RECEIVED = Counter(
    "incident_bot_alerts_received", "Alerts received, by source and outcome", ["source", "outcome"]
)  # outcome: accepted|duplicate (refusals: ALERTS_REJECTED)
# A refused delivery (the whole request) by reason, or a refused item of an accepted batch (invalid_alert).
# reason: unauthorized|unknown_source|body_timeout|too_large|unsupported_content_type|invalid_payload|
# unstorable|unavailable|invalid_alert|other; source: a registered alert source, "changes" or "unknown".
ALERTS_REJECTED = Counter(
    "incident_bot_alerts_rejected",
    "Alert and change deliveries refused, by source and reason",
    ["source", "reason"],
)
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
# A whole-database figure read by every replica at scrape time: aggregate it with max(), never sum().
OUTBOX_DEPTH = Gauge("incident_bot_outbox_depth", "Chat messages waiting in the outbox (all replicas)")
# Only mode="socket" today, and only when SLACK_APP_TOKEN is set (HTTP mode has no connection to watch).
SLACK_CONNECTED = Gauge(
    "incident_bot_slack_connected",
    "1 while the Slack connection is open, by mode (socket: Socket Mode)",
    ["mode"],
)
