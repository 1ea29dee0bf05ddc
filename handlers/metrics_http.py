"""``GET /metrics``: the Prometheus text exposition of a prometheus-client registry (KPI gauges included)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


def add_metrics_route(app: FastAPI, registry: CollectorRegistry = REGISTRY) -> None:
    if any(getattr(r, "path", None) == "/metrics" for r in app.routes):
        return  # another module already serves it from the same registry

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
