"""Grafana unified-alerting webhook -> ``Alert`` list.

The body is Alertmanager-shaped (``alerts[]`` with status, labels, annotations, startsAt,
endsAt, generatorURL, fingerprint) plus Grafana extras: per alert ``silenceURL``,
``dashboardURL``, ``panelURL``, ``values``/``valueString``; top level ``orgId`` and the
deprecated ``title``/``state``/``message``. The extras that help an on-call engineer land in
the alert's annotations (``silence_url``, ``dashboard_url``, ``panel_url``, ``values``).
Relative ``generatorURL``s (Grafana 12 test notifications) are resolved against ``externalURL``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from bot.intake.alerts import Alert
from handlers.parsers._common import (
    LooseText,
    Text,
    cap_text,
    or_none,
    require_object,
    scalar_to_str,
    validate,
)
from handlers.parsers.alertmanager import AlertmanagerAlert, AlertmanagerPayload, build_alerts
from handlers.parsers.source import Source


class GrafanaAlert(AlertmanagerAlert):
    silenceURL: Text | None = None
    dashboardURL: Text | None = None
    panelURL: Text | None = None
    values: dict[str, Any] | None = None
    valueString: Text | None = None


class GrafanaPayload(AlertmanagerPayload):
    alerts: list[GrafanaAlert] = Field(min_length=1)  # type: ignore[assignment]
    orgId: LooseText = None
    title: Text | None = None
    state: Text | None = None
    message: Text | None = None


def parse_grafana(body: Any) -> list[Alert]:
    """Parse a Grafana (8+) unified-alerting webhook body (already JSON-decoded)."""
    payload = validate(GrafanaPayload, require_object(body))
    base = payload.externalURL or ""

    def link(item: GrafanaAlert) -> str | None:
        target = item.generatorURL
        if not target:
            return None
        if base and not urlsplit(target).scheme:
            return cap_text(urljoin(base, target))
        return target

    return build_alerts(payload, source="grafana", url=link, extra_annotations=_extras)


def _extras(item: GrafanaAlert) -> dict[str, str]:
    extras = {
        "silence_url": item.silenceURL,
        "dashboard_url": item.dashboardURL,
        "panel_url": item.panelURL,
        "values": item.valueString or _format_values(item.values),
    }
    return {key: value for key, value in extras.items() if value}


def _format_values(values: dict[str, Any] | None) -> str | None:
    """``{"B": 44.2394, "C": 1}`` -> ``B=44.2394, C=1`` (sorted, for a stable content hash)."""
    if not values:
        return None
    parts = []
    for key in sorted(values):
        value = values[key]
        shown = f"{value:.6g}" if isinstance(value, float) else scalar_to_str(value)
        parts.append(f"{key}={shown}")
    return or_none(cap_text(", ".join(parts)))


SOURCE = Source("grafana", parse_grafana)
