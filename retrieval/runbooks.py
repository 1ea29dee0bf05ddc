"""Runbooks: Markdown files with YAML front matter, and matching them to an incident.

Front matter fields: ``id``, ``title``, ``services``, ``alert_names``, ``labels`` (exact-value matchers),
``models``, ``steps``, optional ``actions``.

How the selectors combine: ``alert_names`` and ``models`` *decide* (a runbook naming the alert or the model
is a specific match), ``services`` and ``labels`` *narrow* (when given, they must match too). A runbook that
matches by ``services``/``labels`` alone (it names neither the alert nor the model, or names others) is a
general match: shown for reading; the caller decides what a general match may offer. Actions are kept as the raw mappings from the file: retrieval only
ranks runbooks; ``bot.remediation.actions`` validates them (typed, per executor) when a runbook is imported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retrieval.errors import RetrievalError
from retrieval.types import Query

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)(.*)\Z", re.S)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class RunbookError(RetrievalError):
    """A runbook file that cannot be used; the message names the file and the field."""


@dataclass
class Runbook:
    id: str
    title: str
    services: list[str] = field(default_factory=list)
    alert_names: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # raw; validated by bot.remediation
    body: str = ""
    path: str | None = None

    def to_spec(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Runbook:
        data = dict(spec)
        data["actions"] = [dict(a) for a in data.get("actions", [])]
        return cls(**data)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(repr(self.to_spec()).encode()).hexdigest()

    def search_text(self) -> str:
        return "\n".join([self.title, *self.alert_names, *self.steps, self.body[:2000]])


@dataclass
class RunbookMatch:
    runbook: Runbook
    score: float
    why: list[str]
    rule: bool = False  # matched a front-matter rule (alert name, model, service, labels)
    semantic: float = 0.0  # best passage's cosine similarity to the incident text
    specific: bool = False  # named the alert or the model, and its services/labels (if any) agree
    by_service: bool = False  # a general match in which the incident's service is among ``services``


def _str_list(value: Any, name: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise RunbookError(f"{where}: '{name}' must be a list of strings")
    return [str(v) for v in value]


def parse_runbook(text: str, path: str | None = None) -> Runbook:
    where = path or "<runbook>"
    m = _FRONT.match(text.lstrip("\ufeff"))
    if not m:
        raise RunbookError(f"{where}: no YAML front matter (a '---' block at the top)")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise RunbookError(f"{where}: invalid YAML front matter: {exc}") from exc
    if not isinstance(meta, dict):
        raise RunbookError(f"{where}: front matter must be a mapping")
    rb_id = str(meta.get("id") or (Path(path).stem if path else ""))
    if not _ID.match(rb_id):
        raise RunbookError(f"{where}: 'id' must be lowercase letters, digits, '.', '_' or '-'")
    if not meta.get("title"):
        raise RunbookError(f"{where}: 'title' is required")
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        raise RunbookError(f"{where}: 'labels' must be a mapping of label name to value")
    actions = meta.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise RunbookError(f"{where}: 'actions' must be a list of mappings")
    return Runbook(
        id=rb_id,
        title=str(meta["title"]),
        services=_str_list(meta.get("services"), "services", where),
        alert_names=_str_list(meta.get("alert_names"), "alert_names", where),
        labels={str(k): str(v) for k, v in labels.items()},
        models=_str_list(meta.get("models"), "models", where),
        steps=_str_list(meta.get("steps"), "steps", where),
        actions=actions,
        body=m.group(2).strip(),
        path=path,
    )


def load_runbooks(directory: Path) -> tuple[list[Runbook], list[str]]:
    """Parse every ``*.md`` under ``directory``; returns (runbooks, errors). A bad file never hides the rest."""
    runbooks: list[Runbook] = []
    errors: list[str] = []
    for p in sorted(Path(directory).rglob("*.md")):
        if p.name.lower() == "readme.md":
            continue
        try:
            runbooks.append(parse_runbook(p.read_text(encoding="utf-8"), str(p)))
        except (RunbookError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
    return runbooks, errors


def match_runbooks(query: Query, runbooks: list[Runbook]) -> list[RunbookMatch]:
    """Rule matching on front matter; every point of score comes with the rule that earned it.

    Specific (alert name or model named, narrowed by services/labels): 3 points each, +1 for an agreeing
    service, +1 for agreeing labels. General (services
    and/or labels only, all given ones agreeing): 2 for the service, 1 for the labels. A runbook naming the
    alert whose services or labels disagree with the incident does not match by rule at all.
    """
    out: list[RunbookMatch] = []
    for rb in runbooks:
        why: list[str] = []
        score = 0.0
        if query.alert_name and query.alert_name.lower() in {a.lower() for a in rb.alert_names}:
            score += 3.0
            why.append(f"alert name {query.alert_name}")
        if query.model and query.model.lower() in {m.lower() for m in rb.models}:
            score += 3.0
            why.append(f"model {query.model}")
        service_ok = bool(query.service) and (query.service or "").lower() in {s.lower() for s in rb.services}
        labels_ok = all(query.labels.get(k) == v for k, v in rb.labels.items())
        narrowed = (not rb.services or service_ok) and labels_ok
        if not narrowed:
            continue  # services/labels given and not all agreeing: no rule match
        if service_ok:
            why.append(f"service {query.service}")
        if rb.labels:
            why.append("labels " + ", ".join(f"{k}={v}" for k, v in rb.labels.items()))
        if score > 0:
            score += (1.0 if service_ok else 0.0) + (1.0 if rb.labels else 0.0)
            out.append(RunbookMatch(rb, score, why, rule=True, specific=True))
        elif service_ok or rb.labels:
            general = (2.0 if service_ok else 0.0) + (1.0 if rb.labels else 0.0)
            why = [*why, "for reading: the runbook names neither this alert nor this model"]
            out.append(RunbookMatch(rb, general, why, rule=True, by_service=service_ok))
    out.sort(key=lambda m: (-m.score, m.runbook.id))
    return out
