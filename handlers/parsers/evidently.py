"""An Evidently data-drift report posted as JSON -> one model alert (``kind=model``).

Two shapes are read, both as Evidently writes them:

* Evidently >= 0.7 ``Snapshot.dict()`` / ``.json()`` / ``save_json``: ``{"metrics": [{"metric_name",
  "config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share"}, "value": {"count",
  "share"}}, {"config": {"type": "...:ValueDrift", "column", "method", "threshold"}, "value": 0.03},
  ...]}``.
* The legacy ``Report.as_dict()`` / ``.json()`` (<= 0.6, ``evidently.legacy``): ``{"metrics":
  [{"metric": "DataDriftTable" | "DatasetDriftMetric", "result": {"drift_share",
  "share_of_drifted_columns", "number_of_drifted_columns", "drift_by_columns": {col:
  {"drift_score", "stattest_threshold", "stattest_name", "drift_detected"}}}}]}``.

A report does not name the model, so the model comes from the request: query parameters
``model`` (required), ``version``, ``serving_service`` (or ``service``), ``owner``,
``severity``, ``alert_name``, or the same keys in a top-level ``labels`` object of the body.
The alert fires when the share of drifted columns reaches the report's ``drift_share`` (or, with
no dataset-level metric, when any column drifted) and is ``resolved`` otherwise, so a clean
report closes the drift incident. Metric ``drifted_columns_share``, value = share, threshold =
``drift_share``; the drifted columns are listed in the annotations (``drifted_columns``) and the description.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.intake.alerts import Alert
from handlers.parsers._common import require_object, scalar_to_str
from handlers.parsers.errors import PayloadError, json_type
from handlers.parsers.model import parse_model
from handlers.parsers.source import Source

CONTEXT_KEYS = ("model", "version", "serving_service", "service", "owner", "severity", "alert_name", "url")
DEFAULT_DRIFT_SHARE = 0.5


@dataclass
class Drift:
    share: float | None = None  # share of drifted columns, when the report has it
    drift_share: float = DEFAULT_DRIFT_SHARE
    columns: dict[str, tuple[float, float, str, bool]] = field(default_factory=dict)
    """column -> (score, threshold, method, drifted)"""

    @property
    def drifted(self) -> list[str]:
        return sorted(c for c, (_s, _t, _m, d) in self.columns.items() if d)


def parse_evidently(body: Any, query: Mapping[str, str] | None = None) -> list[Alert]:
    obj = require_object(body)
    context = _context(obj, query or {})
    if not context.get("model"):
        raise PayloadError(
            "model: required as a query parameter (?model=<name>) or in labels.model: "
            "an Evidently report does not name the model"
        )
    metrics = obj.get("metrics")
    if not isinstance(metrics, list):
        raise PayloadError(
            f"metrics: must be a list (an Evidently Report/Snapshot), got {json_type(metrics)}"
        )
    drift = Drift()
    for i, entry in enumerate(metrics):
        if isinstance(entry, dict):
            _read_metric(drift, entry, i)
    if drift.share is None and not drift.columns:
        raise PayloadError(
            "metrics: no data-drift result (DriftedColumnsCount, ValueDrift, DataDriftTable "
            "or DatasetDriftMetric) in the report"
        )
    share = drift.share if drift.share is not None else len(drift.drifted) / len(drift.columns)
    firing = share >= drift.drift_share if drift.share is not None else bool(drift.drifted)
    if drift.share is not None and share == 0:
        firing = False
    drifted = drift.drifted
    labels = {k: v for k, v in context.items() if k in ("serving_service", "service") and v}
    # the drifted columns are content (they change between reports), never identity
    annotations = {"drifted_columns": ",".join(drifted)} if drifted else {}
    description = "; ".join(
        f"{c}: {drift.columns[c][2]} {_num(drift.columns[c][0])} (threshold {_num(drift.columns[c][1])})"
        for c in drifted
    )
    model_body: dict[str, Any] = {
        "model": context["model"],
        "metric": "drifted_columns_share",
        "value": share,
        "threshold": drift.drift_share,
        "status": "firing" if firing else "resolved",
        "alert_name": context.get("alert_name") or "Data drift",
        "severity": context.get("severity") or "warning",
        "description": f"Drifted columns: {description}" if description else "",
        "labels": labels,
        "annotations": annotations,
    }
    for key in ("version", "owner", "url"):
        if context.get(key):
            model_body[key] = context[key]
    return [_as_evidently(a) for a in parse_model(model_body)]


def _as_evidently(alert: Alert) -> Alert:
    return replace(alert, source="evidently")


def _context(obj: dict[str, Any], query: Mapping[str, str]) -> dict[str, str]:
    labels: dict[str, Any] = obj["labels"] if isinstance(obj.get("labels"), dict) else {}
    out: dict[str, str] = {}
    for key in CONTEXT_KEYS:
        value = query.get(key) or scalar_to_str(labels.get(key))
        if value:
            out[key] = value
    if "serving_service" not in out and out.get("service"):
        out["serving_service"] = out["service"]
    return out


def _read_metric(drift: Drift, entry: dict[str, Any], i: int) -> None:
    config: dict[str, Any] = entry["config"] if isinstance(entry.get("config"), dict) else {}
    kind = str(config.get("type") or entry.get("metric") or entry.get("metric_name") or "")
    kind = kind.rsplit(":", 1)[-1].split("(", 1)[0]
    value, result = entry.get("value"), entry.get("result")
    if kind == "DriftedColumnsCount" and isinstance(value, dict):
        drift.share = _number(value.get("share"), f"metrics[{i}].value.share")
        drift.drift_share = _number(
            config.get("drift_share", DEFAULT_DRIFT_SHARE), f"metrics[{i}].config.drift_share"
        )
    elif kind == "ValueDrift" and value is not None:
        score = _number(value, f"metrics[{i}].value")
        threshold = _number(config.get("threshold"), f"metrics[{i}].config.threshold")
        method = str(config.get("method") or "")
        column = str(config.get("column") or f"column_{i}")
        drift.columns[column] = (score, threshold, method, _breached(score, threshold, method))
    elif kind in ("DataDriftTable", "DatasetDriftMetric") and isinstance(result, dict):
        if result.get("share_of_drifted_columns") is not None:
            drift.share = _number(
                result["share_of_drifted_columns"], f"metrics[{i}].result.share_of_drifted_columns"
            )
        if result.get("drift_share") is not None:
            drift.drift_share = _number(result["drift_share"], f"metrics[{i}].result.drift_share")
        columns = result.get("drift_by_columns")
        if isinstance(columns, dict):
            for name, col in columns.items():
                if isinstance(col, dict) and col.get("drift_score") is not None:
                    where = f"metrics[{i}].result.drift_by_columns.{name}"
                    score = _number(col["drift_score"], f"{where}.drift_score")
                    threshold = _number(col.get("stattest_threshold", 0), f"{where}.stattest_threshold")
                    method = str(col.get("stattest_name") or "")
                    detected = col.get("drift_detected")
                    flag = detected if isinstance(detected, bool) else _breached(score, threshold, method)
                    drift.columns[str(name)] = (score, threshold, method, flag)


def _breached(score: float, threshold: float, method: str) -> bool:
    """p-value tests drift below their threshold; distances (PSI, Wasserstein, ...) at or above it."""
    return score < threshold if "p_value" in method.replace("-", "_").lower() else score >= threshold


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"{where}: must be a finite number, got {json_type(value)}")
    return float(value)


def _num(value: float) -> str:
    return f"{value:.3g}"


SOURCE = Source("evidently", parse_evidently, reads_query=True)  # the model is named in the query
