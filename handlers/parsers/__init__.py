"""Alert wire-format parsers: one JSON-decoded webhook body in, ``list[Alert]`` out.

Each parser raises ``PayloadError`` (a ``ValueError``) with an operator-readable message such
as ``alerts[1].labels: field required`` when the body is not valid for its format.

``SOURCES`` is the registry: each parser module declares its ``SOURCE`` (handlers/parsers/source.py:
name, parser, query, settings, signature), and one line here serves it at ``POST /alerts/<name>``.
"""

from __future__ import annotations

from bot.kernel.config import Settings
from handlers.parsers import (
    alertmanager,
    datadog,
    evidently,
    generic,
    grafana,
    model,
    opsgenie,
    pagerduty,
)
from handlers.parsers.source import ConfiguredSource, Source

SOURCES: tuple[Source, ...] = (
    alertmanager.SOURCE,
    generic.SOURCE,
    model.SOURCE,
    grafana.SOURCE,
    datadog.SOURCE,
    pagerduty.SOURCE,
    opsgenie.SOURCE,
    evidently.SOURCE,
)


def known_sources() -> list[str]:
    return sorted(s.name for s in SOURCES)


def configure_sources(settings: Settings) -> dict[str, ConfiguredSource]:
    """Every registered source by name, with ``settings`` applied (``ValueError`` for one it cannot use)."""
    names = [s.name for s in SOURCES]
    if len(set(names)) != len(names):
        raise ValueError(
            f"two alert sources share a name: {sorted({n for n in names if names.count(n) > 1})}"
        )
    return {s.name: s.configure(settings) for s in SOURCES}
