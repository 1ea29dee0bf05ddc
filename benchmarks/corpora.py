"""The evaluation datasets of ``benchmarks/quality.py``: documents, queries and what is relevant.

- ``hadoop`` / ``seamonkey``: duplicate bug reports (public Jira / Bugzilla exports). Query = one
  report (summary + description), relevant = its labelled duplicate among all other reports. Long
  queries that share exact phrases (stack traces, class names) with their target.
- ``pm_category``: the categorised danluu postmortems; query = one postmortem, relevant = the other
  postmortems of the same category (precision@5). A loose, topical notion of similarity.
- ``pm_alerts``: short alert / on-call messages written for this benchmark
  (``benchmarks/queries/postmortem_alerts.jsonl``) over all 190 postmortems; relevant = the
  postmortem(s) describing that failure. ``dev`` split for tuning, ``heldout`` sealed; a third,
  ``blind`` set (``postmortem_alerts_blind.jsonl``) was written later by someone who never ran the
  ranker or saw its code, in the symptom-only style of the reviewers' check. It was sealed at first;
  since 2026-12-02 (second session) it is a tuning dataset of its own (``pm_alerts_blind``): fusion
  variants had been tried against half of it, so it was no longer clean as a held-out set, and the
  leave-one-dataset-out protocol still gives it a figure from a round that did not tune on it.
- ``pm_symptoms``: 90 more symptom-only alert / on-call messages over the same postmortems, written
  by two authors who never ran the ranker, read its code or saw the other query sets
  (``postmortem_alerts_symptoms.jsonl``); a tuning dataset.
- ``sample_kb``: the bundled knowledge base (``bot/sample_data/knowledge_base.jsonl``) with alert
  text from the demo alerts and the tests (``benchmarks/queries/sample_kb_alerts.jsonl``), some
  carrying service / alert / model metadata as real alerts do.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.importers import iter_documents
from retrieval.types import Document, Query

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass
class Dataset:
    name: str
    kind: str  # "known_item" (rank of the first relevant) or "category" (precision@5)
    docs: list[Document]
    queries: list[Query]
    relevant: list[set[str]]
    splits: list[str] = field(default_factory=list)  # per query: "dev" / "heldout" / "all"
    self_ids: list[str | None] = field(default_factory=list)  # the document a query was made from

    def subset(self, split: str) -> Dataset:
        keep = [i for i, s in enumerate(self.splits) if s == split]
        return Dataset(
            f"{self.name}" if split in ("all", "dev") else f"{self.name}_{split}",
            self.kind,
            self.docs,
            [self.queries[i] for i in keep],
            [self.relevant[i] for i in keep],
            [self.splits[i] for i in keep],
            [self.self_ids[i] for i in keep],
        )


def doc_text(d: Document) -> str:
    return f"{d.title}\n{d.text}"


def _duplicates(data: Path, stem: str, name: str) -> Dataset:
    folder = data / "dup_tickets"
    docs = [d for _, d, _ in iter_documents(folder / f"{stem}.csv", fmt="jira") if d is not None]
    index = {d.id: i for i, d in enumerate(docs)}
    with (folder / f"{stem}-combined.csv").open(encoding="utf-8") as fh:
        pairs = [(r["Issue id"].strip(), r["Duplicate id"].strip()) for r in csv.DictReader(fh)]
    seen: set[tuple[str, str]] = set()
    kept = []
    for a, b in pairs:
        if a in index and b in index and a != b and (a, b) not in seen:
            seen.add((a, b))
            kept.append((a, b))
    queries = [Query(text=doc_text(docs[index[a]]), exclude_ids=frozenset({a})) for a, _ in kept]
    return Dataset(
        name, "known_item", docs, queries, [{b} for _, b in kept], ["all"] * len(kept), [a for a, _ in kept]
    )


def hadoop(data: Path) -> Dataset:
    return _duplicates(data, "hadoop_bugs", "hadoop")


def seamonkey(data: Path) -> Dataset:
    return _duplicates(data, "seamonkey_bugs", "seamonkey")


def _postmortem_docs(data: Path) -> tuple[list[Document], dict[str, str]]:
    lines = (data / "postmortems" / "danluu_postmortems.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    # the entries have no title: like the importers, use the first sentence
    docs = [Document(id=str(r["id"]), title=r["text"].split(". ")[0][:160], text=r["text"]) for r in rows]
    return docs, {str(r["id"]): r.get("category") or "" for r in rows}


def pm_category(data: Path) -> Dataset:
    docs, cat = _postmortem_docs(data)
    docs = [d for d in docs if cat[d.id] and cat[d.id] != "Uncategorized"]
    queries = [Query(text=doc_text(d), exclude_ids=frozenset({d.id})) for d in docs]
    relevant = [{e.id for e in docs if cat[e.id] == cat[d.id] and e.id != d.id} for d in docs]
    return Dataset(
        "pm_category", "category", docs, queries, relevant, ["all"] * len(docs), [d.id for d in docs]
    )


def _query(rec: dict[str, object]) -> Query:
    return Query(
        text=str(rec["query"]),
        service=rec.get("service") or None,  # type: ignore[arg-type]
        alert_name=rec.get("alert_name") or None,
        model=rec.get("model") or None,
    )  # type: ignore[arg-type]


def _read_queries(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pm_alerts(data: Path) -> Dataset:
    docs, _ = _postmortem_docs(data)
    recs = _read_queries(HERE / "queries" / "postmortem_alerts.jsonl")
    blind = HERE / "queries" / "postmortem_alerts_blind.jsonl"
    if blind.exists():
        recs += _read_queries(blind)
    return Dataset(
        "pm_alerts",
        "known_item",
        docs,
        [_query(r) for r in recs],
        [set(map(str, r["relevant"])) for r in recs],  # type: ignore[call-overload]
        [str(r["split"]) for r in recs],
        [None] * len(recs),
    )


def pm_symptoms(data: Path) -> Dataset:
    """Symptom-only alert / on-call messages over all 190 postmortems, written (2026-12-02) by two
    authors who never ran the ranker, read its code or saw the other query sets: a tuning dataset in
    the style of the reviewers' check."""
    docs, _ = _postmortem_docs(data)
    recs = _read_queries(HERE / "queries" / "postmortem_alerts_symptoms.jsonl")
    return Dataset(
        "pm_symptoms",
        "known_item",
        docs,
        [_query(r) for r in recs],
        [set(map(str, r["relevant"])) for r in recs],  # type: ignore[call-overload]
        ["all"] * len(recs),
        [None] * len(recs),
    )


def sample_kb(_data: Path | None = None) -> Dataset:
    docs = [
        d
        for _, d, _ in iter_documents(REPO / "bot" / "sample_data" / "knowledge_base.jsonl")
        if d is not None
    ]
    recs = _read_queries(HERE / "queries" / "sample_kb_alerts.jsonl")
    return Dataset(
        "sample_kb",
        "known_item",
        docs,
        [_query(r) for r in recs],
        [set(map(str, r["relevant"])) for r in recs],  # type: ignore[call-overload]
        ["all"] * len(recs),
        [None] * len(recs),
    )
