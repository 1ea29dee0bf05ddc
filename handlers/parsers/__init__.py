"""Alert wire-format parsers: one JSON-decoded webhook body in, ``list[Alert]`` out.

Each parser raises ``PayloadError`` (a ``ValueError``) with an operator-readable message such
as ``alerts[1].labels: field required`` when the body is not valid for its format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.intake.alerts import Alert
from handlers.parsers.alertmanager import parse_alertmanager
from handlers.parsers.datadog import parse_datadog
from handlers.parsers.errors import PayloadError, from_validation_error
from handlers.parsers.evidently import parse_evidently
from handlers.parsers.generic import parse_generic
from handlers.parsers.grafana import parse_grafana
from handlers.parsers.mapping import FieldMap
from handlers.parsers.model import parse_model
from handlers.parsers.opsgenie import parse_opsgenie
from handlers.parsers.pagerduty import parse_pagerduty

Parser = Callable[[Any], list[Alert]]

PARSERS: dict[str, Parser] = {
    "alertmanager": parse_alertmanager,
    "generic": parse_generic,
    "model": parse_model,
    "grafana": parse_grafana,
    "datadog": parse_datadog,
    "pagerduty": parse_pagerduty,
    "opsgenie": parse_opsgenie,
}
# Sources whose parser also reads the request's query parameters (Evidently: the model's name).
QUERY_PARSERS: dict[str, Callable[[Any, Mapping[str, str]], list[Alert]]] = {
    "evidently": parse_evidently,
}


@dataclass(frozen=True)
class SourceParser:
    """What the edge runs for one request: ``prepare`` (body -> body, e.g. a field mapping), then ``parse``."""

    parse: Parser
    prepare: Callable[[Any], Any] | None = None


def known_sources() -> list[str]:
    return sorted({*PARSERS, *QUERY_PARSERS})


def parser_registry(settings: Any) -> Callable[[str, Mapping[str, str]], SourceParser | None]:
    """The parser for a source name and query, with settings applied (``GENERIC_FIELD_MAP``)."""
    field_map = FieldMap(settings.generic_field_map) if settings.generic_field_map else None

    def lookup(source: str, query: Mapping[str, str]) -> SourceParser | None:
        if source in QUERY_PARSERS:
            fn = QUERY_PARSERS[source]
            return SourceParser(parse=lambda body: fn(body, query))
        parser = PARSERS.get(source)
        if parser is None:
            return None
        if source == "generic" and field_map is not None:
            return SourceParser(parse=parser, prepare=field_map.apply)
        return SourceParser(parse=parser)

    return lookup


def source_signature_secrets(settings: Any) -> dict[str, str]:
    """Sources that may authenticate with their own signature instead of the bearer token."""
    secret = settings.pagerduty_webhook_secret
    return {"pagerduty": secret.get_secret_value()} if secret is not None else {}

__all__ = [
    "PARSERS",
    "QUERY_PARSERS",
    "SourceParser",
    "known_sources",
    "parse_evidently",
    "parse_opsgenie",
    "parser_registry",
    "source_signature_secrets",
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
