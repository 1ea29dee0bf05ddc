"""Runbook ranking: front-matter rules (alert name, model, service, labels) combined with the
semantic similarity of the runbook's passages (title, steps, body paragraphs) to the incident.
Every match says which rule or which passage earned it."""

from __future__ import annotations

import re
import threading

import numpy as np

from retrieval.encoder import Encoder
from retrieval.runbooks import Runbook, RunbookMatch, match_runbooks
from retrieval.text import snippet
from retrieval.types import Query

RULE_SCALE = 3.0  # an alert-name or model rule (3 points) counts as much as a perfect text match
SEMANTIC_WEIGHT = 1.0
MIN_SEMANTIC = 0.3  # below this a runbook with no rule match is not suggested...
SEMANTIC_MARGIN = 0.15  # ...nor if its text is this much further from the incident than the best runbook's


def passages(rb: Runbook) -> list[str]:
    body = re.sub(r"```.*?```", " ", rb.body, flags=re.S)  # code blocks say little in embedding space
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if len(p.strip()) > 40]
    return [rb.title, *rb.steps, *paras[:30]]


class RunbookIndex:
    """Caches passage embeddings per runbook content hash; safe to share between threads."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self._cache: dict[str, tuple[list[str], np.ndarray]] = {}
        self._lock = threading.Lock()

    def _embedded(self, runbooks: list[Runbook]) -> dict[str, tuple[list[str], np.ndarray]]:
        """Passages and their embeddings per runbook id; unseen runbooks are encoded in one batch."""
        model = self.encoder.name  # part of the key: a switched model (kb adapt) re-embeds the runbooks
        missing = {
            f"{model}:{rb.content_hash}": rb
            for rb in runbooks
            if f"{model}:{rb.content_hash}" not in self._cache
        }
        if missing:
            texts = {h: passages(rb) for h, rb in missing.items()}
            flat = [t for ts in texts.values() for t in ts]
            vecs = self.encoder.encode(flat)
            pos = 0
            with self._lock:
                for h, ts in texts.items():
                    self._cache[h] = (ts, vecs[pos : pos + len(ts)])
                    pos += len(ts)
        return {rb.id: self._cache[f"{model}:{rb.content_hash}"] for rb in runbooks}

    def rank(
        self, query: Query, runbooks: list[Runbook], *, top_k: int = 3, qvec: np.ndarray | None = None
    ) -> list[RunbookMatch]:
        rules = {m.runbook.id: m for m in match_runbooks(query, runbooks)}
        vec = self.encoder.encode([query.text])[0] if qvec is None and query.text.strip() else qvec
        embedded = self._embedded(runbooks) if vec is not None else {}
        sims: dict[str, tuple[float, str]] = {}
        if vec is not None:
            for rb in runbooks:
                texts, mat = embedded[rb.id]
                scores = mat @ np.asarray(vec, dtype=np.float32)
                i = int(np.argmax(scores))
                sims[rb.id] = (float(scores[i]), texts[i])
        floor = max(MIN_SEMANTIC, max((v[0] for v in sims.values()), default=0.0) - SEMANTIC_MARGIN)
        out: list[RunbookMatch] = []
        for rb in runbooks:
            if rb.id in query.exclude_ids:
                continue
            rule = rules.get(rb.id)
            best, passage = sims.get(rb.id, (0.0, ""))
            if rule is None and best < floor:
                continue
            why = [f"rule: {w}" for w in rule.why] if rule else []
            if passage and (best >= floor or rule):
                why.append(f'text: "{snippet(passage, 90)}" (semantic {best:.2f})')
            score = min(rule.score / RULE_SCALE, 2.0) if rule else 0.0
            out.append(
                RunbookMatch(
                    rb,
                    score + SEMANTIC_WEIGHT * max(best, 0.0),
                    why,
                    rule=rule is not None,
                    semantic=best,
                    specific=rule.specific if rule else False,
                    by_service=rule.by_service if rule else False,
                )
            )
        # a runbook that names the alert or the model comes before any general or text match
        out.sort(key=lambda m: (not m.specific, -m.score, m.runbook.id))
        return out[:top_k]


def rank_runbooks(
    query: Query, runbooks: list[Runbook], encoder: Encoder, top_k: int = 3, *, qvec: np.ndarray | None = None
) -> list[RunbookMatch]:
    """One-off ranking; keep a ``RunbookIndex`` instead to reuse passage embeddings across incidents."""
    return RunbookIndex(encoder).rank(query, runbooks, top_k=top_k, qvec=qvec)
