"""Fusion of the ranking signals into one score, and the reasons shown next to every match.

The score is a linear model over features that each live in [0, 1]: it is what a logistic
regression fitted on 👍/👎 feedback produces (``retrieval.feedback.refit``), and the defaults below
were tuned on half of the Hadoop duplicate pairs (``benchmarks/quality.py --tune``: dense, lexical
and title; the metadata weights are set by hand: a matching service is worth a third of the gap
between the best and a missing lexical match, a matching alert name or model half of it; the
public data has no such metadata to tune them on, the feedback refit does). All weights live here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from retrieval.text import snippet
from retrieval.types import Document, Query

FEATURES = ("dense", "lexical", "title", "service", "alert", "labels", "model", "recency", "has_rca")


@dataclass(frozen=True)
class Weights:
    dense: float = 1.0
    lexical: float = 3.0
    title: float = 0.75
    service: float = 1.0
    alert: float = 1.5
    labels: float = 0.5
    model: float = 1.5
    recency: float = 0.1
    has_rca: float = 0.1
    recency_half_life_days: float = 180.0
    candidates: int = 50  # per retriever, before fusion

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Weights:
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: (int(v) if k == "candidates" else float(v)) for k, v in data.items() if k in names}
        return cls(**kwargs)

    def score(self, feats: dict[str, float]) -> float:
        return sum(getattr(self, name) * feats.get(name, 0.0) for name in FEATURES)


def _norm(value: str | None) -> str:
    return (value or "").strip().lower()


def metadata_features(query: Query, doc_service: str | None, meta: dict[str, object],
                      created_at: datetime | None, has_rca: bool, half_life_days: float) -> dict[str, float]:
    feats = {name: 0.0 for name in ("service", "alert", "labels", "model", "recency", "has_rca")}
    if query.service and _norm(query.service) == _norm(doc_service):
        feats["service"] = 1.0
    if query.alert_name and _norm(query.alert_name) == _norm(str(meta.get("alert_name") or "")):
        feats["alert"] = 1.0
    if query.model and _norm(query.model) == _norm(str(meta.get("model") or "")):
        feats["model"] = 1.0
    doc_labels = meta.get("labels")
    if query.labels and isinstance(doc_labels, dict) and doc_labels:
        same = sum(1 for k, v in query.labels.items() if str(doc_labels.get(k, "")) == str(v))
        feats["labels"] = same / len(query.labels)
    if created_at is not None:
        now = query.now or datetime.now(UTC)
        age_days = max((now - created_at).total_seconds() / 86400.0, 0.0)
        feats["recency"] = math.exp(-math.log(2) * age_days / max(half_life_days, 1e-6))
    feats["has_rca"] = 1.0 if has_rca else 0.0
    return feats


def confidence(feats: dict[str, float]) -> str:
    """A plain-words verdict, so a reader can tell a good match from a lucky one."""
    dense, lex = feats.get("dense", 0.0), feats.get("lexical", 0.0)
    meta = feats.get("service", 0.0) + feats.get("alert", 0.0) + feats.get("model", 0.0)
    if dense >= 0.6 or (dense >= 0.45 and lex >= 0.5) or (meta >= 1 and dense >= 0.45):
        return "strong match"
    if dense >= 0.4 or lex >= 0.5:
        return "possible match"
    return "weak match: little in common, treat with care"


def explain(query: Query, doc: Document, feats: dict[str, float], shared: list[str]) -> list[str]:
    """Reasons, strongest evidence first; every feature that added to the score is named."""
    why = [confidence(feats)]
    if feats.get("alert"):
        why.append(f"same alert {doc.meta.get('alert_name')}")
    if feats.get("service"):
        why.append(f"same service {doc.service}")
    if feats.get("model"):
        why.append(f"same model {doc.meta.get('model')}")
    if feats.get("labels"):
        labels = doc.meta.get("labels") or {}
        same = [f"{k}={v}" for k, v in query.labels.items() if isinstance(labels, dict) and str(labels.get(k)) == str(v)]
        why.append("same labels " + ", ".join(same))
    why.append(f"semantic {feats.get('dense', 0.0):.2f}")
    if feats.get("title", 0.0) >= 0.75:
        why.append("similar title")
    if shared:
        why.append("shared terms: " + ", ".join(shared))
    if doc.root_cause:
        why.append(f"root cause: {snippet(doc.root_cause, 90)}")
    if doc.resolution:
        why.append(f"resolved by: {snippet(doc.resolution, 90)}")
    if doc.created_at is not None:
        now = query.now or datetime.now(UTC)
        days = max(int((now - doc.created_at).total_seconds() // 86400), 0)
        why.append(f"from {doc.created_at.date().isoformat()} ({days} days ago)")
    return why
