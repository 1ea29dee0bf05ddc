"""Advice for an incident: similar past incidents and the best runbook, stored as suggestions.

Suggestions are stored so a message update (ack, resolve, new alert) re-renders the same advice
without searching again, and so 👍/👎 feedback can be tied to the features that ranked each match.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.advice.chat import IncidentView
from bot.advice.context import ContextFinder, IncidentContext
from bot.advice.knowledge import KnowledgeBase, to_document
from bot.kernel.models import Incident, KnowledgeDocument, Suggestion
from bot.remediation.guardrails import Offer, Verdict
from bot.remediation.runbook_store import all_runbooks, get_runbook
from retrieval.runbook_rank import RunbookIndex
from retrieval.runbooks import RunbookMatch
from retrieval.types import Match, Query


def query_for(incident: Incident, context: IncidentContext | None = None) -> Query:
    alerts = incident.alerts
    texts = [incident.title]
    if context is not None and context.query_text():
        texts.append(context.query_text())  # "started 4 min after deploy checkout v1.42" helps find the cause
    labels: dict[str, str] = {}
    for a in alerts[:10]:
        texts.extend([a.name, a.summary, a.description])
        labels.update(a.labels or {})
    return Query(
        text="\n".join(dict.fromkeys(t for t in texts if t)),
        service=incident.service,
        alert_name=alerts[0].name if alerts else None,
        labels=labels,
        model=incident.model_name,
    )


class Advisor:
    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        runbooks: RunbookIndex,
        offer: Offer,
        top_k: int = 3,
        context: ContextFinder | None = None,
    ) -> None:
        self._context = context
        self._kb = kb
        self._runbooks = runbooks
        self._offer = offer
        self._top_k = top_k
        self._prepared: dict[str, np.ndarray] = {}  # query text -> its embedding, from ``prepare``
        self._lock = threading.Lock()

    def prepare(self, session: Session, incidents: list[Incident]) -> None:
        """Embed the queries of several incidents about to be advised in one model call (a batch costs
        little more than one query); ``advise`` takes its vector from here when its query is the same."""
        texts = [query_for(i, self._context(session, i) if self._context else None).text for i in incidents]
        texts = [t for t in dict.fromkeys(texts) if t.strip()]
        if not texts:
            return
        vectors = self._kb.encoder.encode(texts)
        with self._lock:
            if len(self._prepared) > 256:  # bounded: older bursts' vectors are not needed any more
                self._prepared.clear()
            self._prepared.update(zip(texts, (np.asarray(v) for v in vectors), strict=True))

    def _query_vector(self, query: Query) -> np.ndarray:
        with self._lock:  # kept, not popped: incidents of a burst often share their query text
            prepared = self._prepared.get(query.text)
        return prepared if prepared is not None else self._kb.embed_query(query)

    def warm(self, session: Session) -> int:
        """Do at start what the first incident would otherwise pay for (issue 17: its post came 3.7-11 s
        after a start, 0.1 s later on): the model's first encode, every stored runbook's passage
        embeddings and the knowledge index's first search. Writes nothing; returns the runbooks embedded."""
        runbooks = all_runbooks(session)
        query = Query(text="warm up: service latency errors")
        qvec = self._kb.embed_query(query)
        self._kb.search(query, top_k=1, qvec=qvec)
        self._runbooks.rank(query, runbooks, top_k=1, qvec=qvec)
        return len(runbooks)

    def advise(self, session: Session, incident: Incident) -> IncidentView:
        """Search, pick a runbook, store both as the incident's suggestions (replacing earlier ones)."""
        context = self._context(session, incident) if self._context else None
        query = query_for(incident, context)
        qvec = self._query_vector(query)  # encoded once, used for past incidents and runbooks
        docs_query = replace(query, exclude_ids=frozenset(self._kb.excluded_for(incident.id, "document")))
        matches = self._kb.search(docs_query, top_k=self._top_k, qvec=qvec)
        rb_query = replace(query, exclude_ids=frozenset(self._kb.excluded_for(incident.id, "runbook")))
        rb_matches = self._runbooks.rank(rb_query, all_runbooks(session), top_k=1, qvec=qvec)
        best = rb_matches[0] if rb_matches else None
        incident.runbook_id = best.runbook.id if best else None
        session.execute(delete(Suggestion).where(Suggestion.incident_id == incident.id))
        for rank, m in enumerate(matches):
            session.add(
                Suggestion(
                    incident_id=incident.id,
                    target_kind="document",
                    target_id=m.id,
                    rank=rank,
                    score=float(m.score),
                    why=list(m.why),
                    features=dict(m.features),
                )
            )
        verdict = Verdict.of(best)
        if best is not None:
            # the guardrail verdict: does the runbook name the alert or model ("specific"; "offerable" for the
            # KPI report), or did it match by service alone ("by_service")
            session.add(
                Suggestion(
                    incident_id=incident.id,
                    target_kind="runbook",
                    target_id=best.runbook.id,
                    rank=0,
                    score=float(best.score),
                    why=list(best.why),
                    features={
                        **verdict.features(),
                        "rule": 1.0 if best.rule else 0.0,
                        "semantic": float(best.semantic),
                    },
                )
            )
        review = self._offer.review(incident, best, verdict)
        return IncidentView(
            incident,
            list(incident.alerts),
            matches,
            best,
            review.offered,
            context=context,
            withheld=review.withheld,
        )

    def stored_view(self, session: Session, incident: Incident) -> IncidentView:
        """The advice as stored for this incident (no new search)."""
        rows = list(
            session.scalars(
                select(Suggestion).where(Suggestion.incident_id == incident.id).order_by(Suggestion.rank)
            )
        )
        doc_rows = [r for r in rows if r.target_kind == "document"]
        docs = {
            d.external_id: d
            for d in session.scalars(
                select(KnowledgeDocument).where(
                    KnowledgeDocument.external_id.in_([r.target_id for r in doc_rows])
                )
            )
        }
        matches = [
            Match(
                id=r.target_id,
                title=docs[r.target_id].title,
                score=r.score,
                why=list(r.why),
                document=to_document(docs[r.target_id]),
                features=dict(r.features),
            )
            for r in doc_rows
            if r.target_id in docs
        ]
        runbook, verdict = None, Verdict()
        rb_row = next((r for r in rows if r.target_kind == "runbook"), None)
        if rb_row is not None:
            rb = get_runbook(session, rb_row.target_id)
            if rb is not None:
                feats = rb_row.features or {}
                verdict = Verdict.from_features(feats)
                runbook = RunbookMatch(
                    rb,
                    rb_row.score,
                    list(rb_row.why),
                    rule=bool(feats.get("rule")),
                    semantic=float(feats.get("semantic", 0.0)),
                    specific=verdict.specific,
                    by_service=verdict.by_service,
                )
        context = self._context(session, incident) if self._context else None
        review = self._offer.review(incident, runbook, verdict)
        return IncidentView(
            incident,
            list(incident.alerts),
            matches,
            runbook,
            review.offered,
            context=context,
            withheld=review.withheld,
        )
