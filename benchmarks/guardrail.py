"""Calibrate the text threshold above which a runbook matched by text alone may offer its actions.

Real all-MiniLM-L6-v2 on the bundled runbooks. For each query we take the best semantic similarity of any
runbook *that has actions* (rules switched off: this is the text-only path the guardrail must police).

- negatives (an action must never be offered): the public postmortems (danluu, 190 texts, unrelated alert
  text for our runbooks) and one-word alert names on services no runbook covers (the issue's
  ``QueueBacklog`` on ``billing`` and similar);
- positives (reported, not tuned on): the bundled sample alerts and the sample knowledge-base incidents,
  each labelled with the runbook whose alert names its text mentions (a rule-side label, not semantic).

threshold = the highest negative similarity + a margin, rounded up to 0.05. Printed as JSON with the
distribution of both sides and the positive recall the threshold leaves to the text path (rules still offer
actions to every incident they match, whatever the text says).

    python benchmarks/guardrail.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from benchmarks.common import REPO, data_dir
from retrieval.runbook_rank import passages
from retrieval.runbooks import load_runbooks

ONE_WORD = [
    ("QueueBacklog", "billing"),
    ("PaymentRetriesHigh", "billing"),
    ("CronJobFailed", "reports"),
    ("LoginErrors", "auth"),
    ("EmailBounceRate", "mailer"),
    ("InvoiceExportLate", "billing"),
    ("HighLatency", "search"),
    ("Backlog", "billing"),
]
MARGIN = 0.03


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    from retrieval.encoder import SentenceTransformerEncoder

    sample = REPO / "bot" / "sample_data"
    runbooks, errors = load_runbooks(sample / "runbooks")
    acting = [rb for rb in runbooks if rb.actions]
    enc = SentenceTransformerEncoder()
    t0 = time.perf_counter()
    mats = {rb.id: enc.encode(passages(rb)) for rb in acting}

    def best(text: str) -> tuple[float, str]:
        v = enc.encode([text])[0]
        scores = {rid: float(np.max(m @ v)) for rid, m in mats.items()}
        rid = max(scores, key=lambda k: scores[k])
        return scores[rid], rid

    pm_path = data_dir(args.data) / "postmortems" / "danluu_postmortems.jsonl"
    postmortems = [json.loads(line)["text"] for line in pm_path.read_text().splitlines() if line.strip()]
    neg_pm = [best(t) for t in postmortems]
    neg_one = [best(f"{name}\n{name} on {svc}") for name, svc in ONE_WORD]

    positives: list[tuple[float, str, str]] = []  # (semantic to its labelled runbook, labelled, best)
    texts = []
    for p in sorted((sample / "alerts").glob("*.json")):
        body = json.loads(p.read_text())
        alerts = body.get("alerts", [body])
        texts += [
            "\n".join(
                str(a.get(k) or (a.get("labels") or {}).get("alertname") or "")
                for k in ("name", "summary", "description")
            )
            + "\n"
            + json.dumps(a.get("annotations", {}))
            for a in alerts[:1]
        ]
    texts += [
        f"{r['title']}\n{r['text']}"
        for r in map(json.loads, (sample / "knowledge_base.jsonl").read_text().splitlines())
    ]
    for text in texts:
        label = next((rb.id for rb in acting if any(n.lower() in text.lower() for n in rb.alert_names)), None)
        if label is None:
            continue
        v = enc.encode([text])[0]
        positives.append((float(np.max(mats[label] @ v)), label, best(text)[1]))

    worst_neg = max(s for s, _ in neg_pm + neg_one)
    threshold = math.ceil((worst_neg + MARGIN) * 20) / 20
    pos_scores = [s for s, _, _ in positives]

    def q(xs: list[float]) -> dict[str, float]:
        a = np.asarray(xs)
        return {
            k: round(float(np.quantile(a, p)), 3)
            for k, p in (("min", 0), ("p50", 0.5), ("p90", 0.9), ("max", 1))
        }

    print(
        json.dumps(
            {
                "model": "all-MiniLM-L6-v2",
                "runbooks_with_actions": len(acting),
                "runbook_errors": errors,
                "negatives": {
                    "postmortems": {"n": len(neg_pm), **q([s for s, _ in neg_pm])},
                    "one_word_alerts": {
                        "n": len(neg_one),
                        **q([s for s, _ in neg_one]),
                        "cases": {
                            f"{n}@{s}": round(x, 3) for (n, s), (x, _) in zip(ONE_WORD, neg_one, strict=True)
                        },
                    },
                },
                "positives": {
                    "n": len(positives),
                    **(q(pos_scores) if positives else {}),
                    "top1_is_labelled_runbook": round(
                        sum(lab == b for _, lab, b in positives) / max(len(positives), 1), 3
                    ),
                },
                "threshold": threshold,
                "margin": MARGIN,
                "negatives_offered_at_threshold": sum(s >= threshold for s, _ in neg_pm + neg_one),
                "positives_offered_by_text_alone": round(
                    sum(s >= threshold for s in pos_scores) / max(len(pos_scores), 1), 3
                ),
                "baseline_old_min_semantic_0.30": {
                    "negatives_offered": sum(s >= 0.30 for s, _ in neg_pm + neg_one),
                    "positives_offered": round(
                        sum(s >= 0.30 for s in pos_scores) / max(len(pos_scores), 1), 3
                    ),
                },
                "seconds": round(time.perf_counter() - t0, 1),
                "note": "shared 2-core machine; timings are noisy. Rules still offer actions to rule-matched incidents.",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
