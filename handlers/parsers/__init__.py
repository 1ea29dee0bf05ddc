"""Alert wire-format parsers: one JSON-decoded webhook body in, ``list[Alert]`` out.

Each parser raises ``PayloadError`` (a ``ValueError``) with an operator-readable message such
as ``alerts[1].labels: field required`` when the body is not valid for its format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.alerts import Alert
from handlers.parsers.alertmanager import parse_alertmanager
from handlers.parsers.datadog import parse_datadog
from handlers.parsers.errors import PayloadError, from_validation_error
from handlers.parsers.generic import parse_generic
from handlers.parsers.grafana import parse_grafana
from handlers.parsers.model import parse_model
from handlers.parsers.pagerduty import parse_pagerduty

Parser = Callable[[Any], list[Alert]]

PARSERS: dict[str, Parser] = {
    "alertmanager": parse_alertmanager,
    "generic": parse_generic,
    "model": parse_model,
    "grafana": parse_grafana,
    "datadog": parse_datadog,
    "pagerduty": parse_pagerduty,
}

__all__ = [
    "PARSERS",
    "Parser",
    "PayloadError",
    "from_validation_error",
    "parse_alertmanager",
    "parse_datadog",
    "parse_generic",
    "parse_grafana",
    "parse_model",
    "parse_pagerduty",
]
