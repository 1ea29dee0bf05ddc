"""Fusion that cannot lose to its own halves: per-query features, the verified weight region, and
the feedback refit's acceptance staying inside it."""

from __future__ import annotations

import random

import pytest

from retrieval.feedback import refit
from retrieval.fusion import (
    FEATURES,
    GUARD,
    Weights,
    add_query_relative,
    guard_violations,
    project_to_guard,
    shortness,
)


def test_shipped_weights_are_inside_the_verified_region() -> None:
    assert guard_violations(Weights()) == []


def test_query_relative_features_normalise_dense_per_query_and_scale_lexical_by_shortness() -> None:
    w = Weights()
    cands = {
        1: {"dense": 0.30, "lexical": 1.0},
        2: {"dense": 0.50, "lexical": 0.2},
        3: {"dense": 0.40, "lexical": 0.0},
    }
    add_query_relative(cands, 3, w)  # a short, alert-like query
    assert [cands[k]["dense_rel"] for k in (1, 2, 3)] == pytest.approx([0.0, 1.0, 0.5])
    assert cands[1]["lexical_short"] == pytest.approx(1.0) and cands[3]["lexical_short"] == 0.0
    add_query_relative(cands, 200, w)  # a whole ticket as the query
    assert all(c["lexical_short"] == 0.0 for c in cands.values())
    mid = (w.short_query_terms + w.long_query_terms) / 2
    assert shortness(int(mid), w) == pytest.approx(0.5, abs=0.05)


def test_projection_brings_any_weights_into_the_region() -> None:
    wild = Weights(
        dense=0.1, dense_rel=0.0, lexical=5.0, lexical_short=3.0, title=2.0, service=-1.0, recency=1.0
    )
    assert guard_violations(wild)
    fixed = project_to_guard(wild, Weights())
    assert guard_violations(fixed) == []
    assert fixed.service == 0.0  # metadata may never penalise agreement
    assert fixed.lexical == pytest.approx(GUARD["lexical"][1] * 0.1)
    broken = project_to_guard(Weights(dense=-1.0, dense_rel=0.0), Weights())
    assert (broken.dense, broken.dense_rel) == pytest.approx((Weights().dense, Weights().dense_rel))


def _samples(n: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    """Feedback where only exact-term overlap predicts a 👍 (dense is noise): an unconstrained
    logistic regression would put nearly all weight on lexical and none on dense."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        helpful = i % 2 == 0
        feats = {name: rng.random() * 0.2 for name in FEATURES}
        feats["lexical"] = 0.7 + 0.3 * rng.random() if helpful else 0.3 * rng.random()
        out.append((feats, helpful))
    return out


def test_refit_never_accepts_weights_outside_the_verified_region() -> None:
    report = refit(_samples(200, 3), Weights())
    assert report.projected  # the raw fit left the region...
    assert guard_violations(report.after_weights) == []  # ...and what it proposes is back inside
    lo, hi = GUARD["lexical"]
    total = report.after_weights.dense + report.after_weights.dense_rel
    assert report.after_weights.lexical == pytest.approx(hi * total)  # pushed to the edge, not beyond
    assert report.improved == (report.after_auc > report.before_auc)
    assert ("applied" in report.summary()) == report.improved and "projected" in report.summary()


def test_refit_acceptance_rejects_weights_outside_the_region() -> None:
    report = refit(_samples(120, 5), Weights())
    outside = Weights(dense=1.0, lexical=10.0)
    report.after_weights = outside
    report.after_auc = report.before_auc + 0.5
    assert not report.improved  # better AUC alone is not enough
