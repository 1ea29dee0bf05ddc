"""Vendor exports mapped onto our document fields: Jira CSV, ServiceNow (CSV/JSON), PagerDuty JSON."""

from __future__ import annotations

import re
from typing import Any

from retrieval.importers.records import RecordError, _clean


def _first(rec: dict[str, Any], *names: str) -> Any:
    for n in names:
        v = rec.get(n)
        if isinstance(v, list):
            v = next((x for x in v if x not in (None, "")), None)
        if v not in (None, ""):
            return v
    return None


def _comment_body(comment: str) -> str:
    # Jira CSV comments look like "30/Sep/21 17:20;jdoe;the text"
    parts = comment.split(";", 2)
    return parts[2] if len(parts) == 3 and re.match(r"\d", parts[0]) else comment


def jira(rec: dict[str, Any]) -> dict[str, Any]:
    key = _first(rec, "Issue key", "Key", "Issue id")
    comments = rec.get("Comment") or []
    comments = [comments] if isinstance(comments, str) else comments
    text = "\n\n".join(
        p for p in [_clean(rec.get("Description")) or "", *(_comment_body(c) for c in comments)] if p
    )
    labels = rec.get("Labels")
    out: dict[str, Any] = {
        "id": key,
        "title": _first(rec, "Summary"),
        "text": text,
        "service": _first(rec, "Component/s", "Components", "Project name"),
        "root_cause": _first(rec, "Custom field (Root Cause)", "Root Cause", "Custom field (Root cause)"),
        "resolution": _first(
            rec, "Custom field (Resolution Notes)", "Resolution Notes", "Custom field (Fix)"
        ),
        "created_at": _first(rec, "Created"),
        "url": _first(rec, "URL", "Issue URL"),
    }
    meta: dict[str, Any] = {}
    if _first(rec, "Resolution"):
        meta["jira_resolution"] = _first(rec, "Resolution")
    if labels:
        meta["jira_labels"] = labels if isinstance(labels, list) else [labels]
    out["__meta__"] = meta
    return out


def servicenow(rec: dict[str, Any]) -> dict[str, Any]:
    notes = [_clean(rec.get(k)) for k in ("description", "work_notes", "comments")]
    return {
        "id": _first(rec, "number", "sys_id"),
        "title": _first(rec, "short_description"),
        "text": "\n\n".join(n for n in notes if n),
        "service": _first(rec, "business_service", "u_service", "cmdb_ci", "assignment_group"),
        "root_cause": _first(rec, "u_root_cause", "cause_notes", "u_rca", "rfc"),
        "resolution": _first(rec, "close_notes", "fix_notes", "u_resolution"),
        "created_at": _first(rec, "opened_at", "sys_created_on"),
        "url": _first(rec, "url", "u_url"),
        "__meta__": {k: _clean(rec[k]) for k in ("close_code", "priority", "category") if _clean(rec.get(k))},
    }


_RC = re.compile(r"^\s*(root cause|rca|cause)\s*[:\-]\s*", re.I)
_RES = re.compile(r"^\s*(resolution|resolved|fix(ed)?|mitigation|remediation)\s*[:\-]?\s*", re.I)


def pagerduty(rec: dict[str, Any]) -> dict[str, Any]:
    if isinstance(rec.get("incident"), dict):
        rec = {**rec["incident"], "notes": rec.get("notes", rec["incident"].get("notes"))}
    if rec.get("type") not in (None, "incident", "incident_reference"):
        raise RecordError(f"not a PagerDuty incident (type {rec.get('type')!r})")
    notes = rec.get("notes") or []
    if not isinstance(notes, list):
        raise RecordError("'notes' must be a list")
    bodies = [str(n.get("content", "")).strip() if isinstance(n, dict) else str(n).strip() for n in notes]
    root = next((_RC.sub("", b) for b in bodies if _RC.match(b)), None)
    res = next((_RES.sub("", b, count=1) for b in bodies if _RES.match(b) and not _RC.match(b)), None)
    raw_body = rec.get("body")
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    text_parts = [_clean(rec.get("description")), _clean(body.get("details")), *bodies]
    title = _first(rec, "title", "summary", "description")
    ext = rec.get("id") or (f"PD-{rec['incident_number']}" if rec.get("incident_number") else None)
    return {
        "id": ext,
        "title": title,
        "text": "\n\n".join(p for p in text_parts if p and p != title),
        "service": rec.get("service"),
        "root_cause": root,
        "resolution": res,
        "created_at": _first(rec, "created_at", "created_on"),
        "url": _first(rec, "html_url", "self"),
        "__meta__": {
            k: _clean(rec[k]) for k in ("urgency", "status", "incident_number") if _clean(rec.get(k))
        },
    }


ADAPTERS = {"jira": jira, "servicenow": servicenow, "pagerduty": pagerduty}
