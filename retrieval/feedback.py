"""Refitting the fusion weights from 👍/👎 feedback.

Each sample is the feature vector that was shown with a suggestion and whether it helped. A
logistic regression on the training split gives new linear weights; both the current and the new
weights are scored (ROC AUC: how well the score separates helpful from unhelpful) on a held-out
split the fit never saw, and the new weights are only worth applying if they do better there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from retrieval.fusion import FEATURES, Weights, guard_violations, project_to_guard

Sample = tuple[dict[str, float], bool]


@dataclass
class RefitReport:
    n_train: int
    n_test: int
    before_auc: float
    after_auc: float
    before_weights: Weights
    after_weights: Weights
    projected: bool = False  # the fit left the verified region and was projected back into it

    @property
    def improved(self) -> bool:
        """Applied only if better on held-out feedback AND inside the region where the fused
        ranker was verified never to lose to its dense or lexical half (``fusion.GUARD``)."""
        return self.after_auc > self.before_auc + 1e-9 and not guard_violations(self.after_weights)

    def summary(self) -> str:
        changes = ", ".join(
            f"{f} {getattr(self.before_weights, f):.2f}→{getattr(self.after_weights, f):.2f}"
            for f in FEATURES
        )
        verdict = "applied" if self.improved else "kept the current weights"
        note = " (projected into the verified region)" if self.projected else ""
        return (
            f"refit on {self.n_train} feedback samples, held-out {self.n_test}: AUC "
            f"{self.before_auc:.3f} → {self.after_auc:.3f} ({verdict}){note}; {changes}"
        )


def _matrix(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[float(f.get(name, 0.0)) for name in FEATURES] for f, _ in samples], dtype=np.float64)
    y = np.array([1 if h else 0 for _, h in samples], dtype=np.int64)
    return x, y


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    if len(set(y.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y, scores))


def refit(
    samples: list[Sample], current: Weights, *, test_fraction: float = 0.3, seed: int = 0, c: float = 1.0
) -> RefitReport:
    """Fit on a stratified training split, compare on the held-out split. Needs both labels."""
    x, y = _matrix(samples)
    if len(set(y.tolist())) < 2:
        raise ValueError("feedback needs both helpful and unhelpful samples to refit")
    stratify = y if min(np.bincount(y)) >= 2 else None
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    if len(set(y_tr.tolist())) < 2:
        x_tr, y_tr = x, y  # too few samples to split both classes; still report on the held-out part
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    model.fit(x_tr, y_tr)
    coef = model.coef_[0]
    cur = np.array([getattr(current, name) for name in FEATURES])
    # keep the total dense weight of the current weights so displayed scores stay comparable
    total = (current.dense + current.dense_rel) or 1.0
    fitted_dense = float(coef[FEATURES.index("dense")] + coef[FEATURES.index("dense_rel")])
    scale = float(np.abs(coef).max()) or 1.0
    norm = total / fitted_dense if fitted_dense >= 0.1 * scale else total / scale
    raw = Weights.from_dict(
        {**current.as_dict(), **{name: float(coef[i] * norm) for i, name in enumerate(FEATURES)}}
    )
    if fitted_dense < 0.1 * scale:  # the feedback says nothing usable about the dense weights
        raw = Weights.from_dict({**raw.as_dict(), "dense": current.dense, "dense_rel": current.dense_rel})
    new = project_to_guard(raw, current)
    before = _auc(y_te, x_te @ cur)
    after = _auc(y_te, x_te @ np.array([getattr(new, name) for name in FEATURES]))
    return RefitReport(
        len(y_tr), len(y_te), before, after, current, new, projected=bool(guard_violations(raw))
    )
